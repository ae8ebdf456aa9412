using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastOverlay.Offload;
using FastOverlay.Pipeline;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;

namespace FastOverlay.Ports;

/// <summary>Which PACKET_MMAP receive ring layout a port uses.</summary>
public enum PacketRingVersion
{
    /// <summary>Fixed 2 KiB slots, each handed over as soon as it is filled: no added latency.</summary>
    V2,
    /// <summary>Variable-size packets in blocks handed over when full or after the block timeout.</summary>
    V3,
}

/// <summary>Ring geometry and batch size of an <see cref="AfPacketPort"/>.</summary>
public sealed record AfPacketOptions
{
    public PacketRingVersion Ring { get; init; } = PacketRingVersion.V2;
    /// <summary>Bytes per ring block: a multiple of the page size. In V3 64 KiB holds ~40 full-size or ~600 small frames; in V2, 32 slots.</summary>
    public int BlockSize { get; init; } = 64 * 1024;
    /// <summary>32 blocks of 64 KiB: 2 MiB per port, 1024 slots in V2.</summary>
    public int BlockCount { get; init; } = 32;
    /// <summary>
    /// V3 only: how long the kernel keeps a partly filled block before handing it over (the retire timer). It is
    /// the added latency of a lone packet, so it is as short as the kernel allows.
    /// </summary>
    public int BlockTimeoutMilliseconds { get; init; } = 1;
    /// <summary>Frames per sendmmsg call.</summary>
    public int TransmitBatch { get; init; } = 256;
    /// <summary>Socket send buffer; a burst of full-size frames must fit or sendmmsg stops at EAGAIN.</summary>
    public int SendBufferBytes { get; init; } = 4 * 1024 * 1024;
    /// <summary>
    /// Socket receive buffer: in V2, super-frames that do not fit a 2 KiB slot are queued here whole
    /// (PACKET_COPY_THRESH); 4 MiB holds about 60 of 64 KiB.
    /// </summary>
    public int ReceiveBufferBytes { get; init; } = 4 * 1024 * 1024;
    /// <summary>
    /// PACKET_VNET_HDR: read the pod's offload metadata (TSO/USO super-frames, partial checksums) and write
    /// merged super-frames back. Off = the pre-offload behaviour: pods then need TSO/GSO off.
    /// </summary>
    public bool VnetHeader { get; init; } = true;
    /// <summary>Merge consecutive TCP segments of a flow into one super-frame toward the pod (needs <see cref="VnetHeader"/>).</summary>
    public bool Coalesce { get; init; } = true;
    /// <summary>
    /// With several forwarding workers each opens its own socket on the interface, joined in one PACKET_FANOUT_HASH
    /// group: the kernel gives each flow to one socket (one worker), by the skb's flow hash. Off with one worker.
    /// </summary>
    public bool Fanout { get; init; }
    /// <summary>The fanout group to join (another worker's port's <see cref="AfPacketPort.FanoutGroupId"/>); null: ask the kernel for a new one.</summary>
    public int? GroupId { get; init; }
}

/// <summary>
/// An AF_PACKET socket on one interface (the host end of a pod's veth, or a NIC): whole Ethernet frames in and
/// out. Receive reads a PACKET_MMAP ring mapped into our memory (no system call while frames keep coming) and
/// copies each frame into a buffer of the forwarder's pool; transmit hands a burst to one sendmmsg call.
/// The ring is TPACKET_V2 by default: V3's block hand-over adds up to its block timeout (1 ms at least) to
/// every packet that arrives when the pod is not busy, which a ping shows at once (see AfPacketOptions).
///
/// Set up as packet(7) describes: created with protocol 0 so that nothing is queued before the ring exists, then
/// bound with ETH_P_ALL. PACKET_IGNORE_OUTGOING (Linux 4.20) keeps our own sends, and anything else the host
/// sends out of the interface, out of the ring. The interface goes promiscuous (PACKET_MR_PROMISC, undone by the
/// kernel when the socket closes) because pods address the gateway MAC, which is not the interface's own.
/// </summary>
public sealed unsafe partial class AfPacketPort : ISocketPort
{

    private readonly PacketPool _pool;
    private readonly TpacketV2Ring? _ringV2;
    private readonly TpacketV3Ring? _ringV3;
    private readonly MessageBatch _tx;
    private readonly int[] _txFirst;
    private readonly int[] _txCount;
    private readonly bool _filterOutgoing;
    private readonly bool _vnet;
    private readonly bool _copies;
    private bool _coalesce;
    private byte* _scratch;
    private readonly MessageBatch? _scratchBatch;
    private VirtioNetHeader* _headers;
    private readonly ushort[] _txHeadTotal;
    // Statistics are read from another thread than the forwarder's; this keeps them off a closed (or reused) fd.
    private readonly object _closeGate = new();
    private int _fd;

    public AfPacketPort(string interfaceName, PacketPool pool, AfPacketOptions? options = null)
    {
        options ??= new AfPacketOptions();
        Name = interfaceName;
        _pool = pool;
        var target = interfaceName;
        var index = LibC.IfNameToIndex(interfaceName);
        if (index == 0) throw Errno.Error("if_nametoindex", target);
        InterfaceIndex = (int)index;

        _fd = LibC.Socket(Linux.AfPacket, Linux.SockRaw | Linux.SockNonBlock | Linux.SockCloExec, 0);
        if (_fd < 0) throw Errno.Error("socket(AF_PACKET)", target);
        try
        {
            var v2 = options.Ring == PacketRingVersion.V2;
            Fd.SetOption(_fd, Linux.SolPacket, Linux.PacketVersion, v2 ? Linux.TpacketV2 : Linux.TpacketV3, $"setsockopt(PACKET_VERSION, TPACKET_{options.Ring})", target);
            _filterOutgoing = !Fd.TrySetOption(_fd, Linux.SolPacket, Linux.PacketIgnoreOutgoing, 1);
            Fd.SetBuffer(_fd, receive: false, options.SendBufferBytes);
            // The vnet header must be on before the ring exists (EBUSY after, packet_setsockopt); rings with it
            // need Linux 4.6 (58d19b19cd99). Its absence is the probe: the port then works as before offloads.
            _vnet = options.VnetHeader && Fd.TrySetOption(_fd, Linux.SolPacket, Linux.PacketVnetHdr, 1);
            // Skipping the qdisc saves a lock per frame, but only without the vnet header: __dev_direct_xmit drops
            // any skb that validate_xmit_skb had to change, so a super-frame toward a veth whose TSO an operator
            // turned off would fail (ENOBUFS) instead of being segmented in software by dev_queue_xmit.
            if (!_vnet) Fd.TrySetOption(_fd, Linux.SolPacket, Linux.PacketQdiscBypass, 1);
            _coalesce = _vnet && options.Coalesce;
            var blockSize = options.BlockSize;
            if (_vnet)
            {
                Fd.SetBuffer(_fd, receive: true, options.ReceiveBufferBytes);
                // V2: a frame over its slot is truncated in the ring, and with a copy threshold also queued whole
                // on the socket (TP_STATUS_COPY, tpacket_rcv), where recvmsg reads it. V3 has no such copy: its
                // blocks must hold a 64 KiB super-frame themselves.
                if (v2) _copies = Fd.TrySetOption(_fd, Linux.SolPacket, Linux.PacketCopyThresh, 1);
                else blockSize = Math.Max(blockSize, 256 * 1024);
                _scratch = (byte*)NativeMemory.AlignedAlloc(ScratchSize, 64);
                _scratchBatch = new MessageBatch(1, 0);
                _headers = (VirtioNetHeader*)NativeMemory.AllocZeroed((nuint)options.TransmitBatch, (nuint)sizeof(VirtioNetHeader));
            }
            if (v2) _ringV2 = TpacketV2Ring.Create(_fd, blockSize, options.BlockCount, target);
            else _ringV3 = TpacketV3Ring.Create(_fd, blockSize, options.BlockCount, options.BlockTimeoutMilliseconds, target);

            var address = new SockAddrLl { Family = Linux.AfPacket, ProtocolBigEndian = Fd.Htons(Linux.EthPAll), IfIndex = InterfaceIndex };
            if (LibC.Bind(_fd, &address, (uint)sizeof(SockAddrLl)) != 0) throw Errno.Error("bind(AF_PACKET)", target);
            if (options.Fanout) FanoutGroupId = Fd.JoinFanout(_fd, options.GroupId, target);
            var membership = new PacketMreq { IfIndex = InterfaceIndex, Type = Linux.PacketMrPromisc };
            Fd.SetOption(_fd, Linux.SolPacket, Linux.PacketAddMembership, membership, "setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)", target);
            // A merged super-frame gathers its vnet header, the head segment and up to 63 more payloads.
            _tx = new MessageBatch(options.TransmitBatch, 0, 0, _vnet ? 1 + TcpCoalescer.MaxSegments : 1);
            _txFirst = new int[options.TransmitBatch];
            _txCount = new int[options.TransmitBatch];
            _txHeadTotal = new ushort[options.TransmitBatch];
        }
        catch
        {
            _ringV2?.Dispose();
            _ringV3?.Dispose();
            FreeNative();
            Fd.Close(ref _fd);
            throw;
        }
    }

    public string Name { get; }
    public int InterfaceIndex { get; }
    public int FileDescriptor => _fd;
    public PortCounters Counters { get; } = new();
    /// <summary>The PACKET_FANOUT group this port joined (for the other workers' ports on the interface), or null without fanout.</summary>
    public int? FanoutGroupId { get; }
    public bool IsOpen => Volatile.Read(ref _fd) >= 0;
    /// <summary>Whether the socket carries virtio_net_hdr (PACKET_VNET_HDR): pods may keep TSO and checksum offload.</summary>
    public bool VnetHeader => _vnet;
    /// <summary>Whether TCP segments toward the pod are merged into super-frames (off after the kernel refuses one).</summary>
    public bool Coalescing => _coalesce;

    /// <summary>One line on what the kernel gave this port, for the start-up log.</summary>
    public string OffloadSummary => !_vnet
        ? "vnet header off: pods need TSO/GSO off (frames over a slot are dropped)"
        : $"vnet header on (TSO/USO segmented here{(_copies || _ringV3 is not null ? "" : ", NO copy threshold: super-frames truncated")}), coalescing {(_coalesce ? "on" : "off")}";

    public void RefreshKernelStatistics()
    {
        lock (_closeGate)
        {
            if (_fd < 0) return;
            TpacketStatsV3 stats;
            var length = (uint)sizeof(TpacketStatsV3);
            if (LibC.GetSockOpt(_fd, Linux.SolPacket, Linux.PacketStatistics, &stats, &length) == 0) Counters.AddKernelDrops(stats.Drops);
        }
    }

    /// <summary>Closes the socket (the kernel drops the promiscuous membership with it) and unmaps the ring.</summary>
    public void Dispose()
    {
        RefreshKernelStatistics();
        lock (_closeGate)
        {
            if (_fd < 0) return;
            Fd.Close(ref _fd);
            _ringV2?.Dispose();
            _ringV3?.Dispose();
            _tx.Dispose();
            FreeNative();
        }
    }

    private void FreeNative()
    {
        NativeMemory.AlignedFree(_scratch);
        _scratch = null;
        _scratchBatch?.Dispose();
        NativeMemory.Free(_headers);
        _headers = null;
    }

    public override string ToString() => $"af_packet:{Name}";
}
