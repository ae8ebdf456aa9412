using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
public sealed unsafe class AfPacketPort : ISocketPort
{
    private const byte PacketOutgoing = 4;

    private readonly PacketPool _pool;
    private readonly TpacketV2Ring? _ringV2;
    private readonly TpacketV3Ring? _ringV3;
    private readonly MessageBatch _tx;
    private readonly bool _filterOutgoing;
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
            // Skipping the qdisc saves a lock per frame; a veth has no queue to skip anyway. Optional.
            Fd.TrySetOption(_fd, Linux.SolPacket, Linux.PacketQdiscBypass, 1);
            Fd.SetBuffer(_fd, receive: false, options.SendBufferBytes);
            if (v2) _ringV2 = TpacketV2Ring.Create(_fd, options.BlockSize, options.BlockCount, target);
            else _ringV3 = TpacketV3Ring.Create(_fd, options.BlockSize, options.BlockCount, options.BlockTimeoutMilliseconds, target);

            var address = new SockAddrLl { Family = Linux.AfPacket, ProtocolBigEndian = Fd.Htons(Linux.EthPAll), IfIndex = InterfaceIndex };
            if (LibC.Bind(_fd, &address, (uint)sizeof(SockAddrLl)) != 0) throw Errno.Error("bind(AF_PACKET)", target);
            var membership = new PacketMreq { IfIndex = InterfaceIndex, Type = Linux.PacketMrPromisc };
            Fd.SetOption(_fd, Linux.SolPacket, Linux.PacketAddMembership, membership, "setsockopt(PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC)", target);
            _tx = new MessageBatch(options.TransmitBatch, 0);
        }
        catch
        {
            _ringV2?.Dispose();
            _ringV3?.Dispose();
            Fd.Close(ref _fd);
            throw;
        }
    }

    public string Name { get; }
    public int InterfaceIndex { get; }
    public int FileDescriptor => _fd;
    public PortCounters Counters { get; } = new();

    public int Receive(Span<int> handles)
    {
        if (_fd < 0) return 0;
        var pool = _pool;
        var v2 = _ringV2;
        var v3 = _ringV3;
        var n = 0;
        long bytes = 0;
        long tooLong = 0;
        while (n < handles.Length)
        {
            // One predictable branch per frame rather than an interface call: the port's ring never changes.
            RxFrame f;
            if (!(v2 is not null ? v2.TryPeek(out f) : v3!.TryPeek(out f))) break;
            var snap = f.Snap;
            // The kernel never hands over an Ethernet frame shorter than its header (eth_type_trans pulls 14 bytes).
            var vlan = (f.Status & Linux.TpStatusVlanValid) != 0 && snap >= Ethernet.HeaderLength;
            var length = vlan ? snap + Ethernet.VlanTagLength : snap;
            if (_filterOutgoing && f.PacketType == PacketOutgoing)
            {
                Advance(v2, v3);
                continue;
            }
            // A snapshot shorter than the wire length means the frame did not fit its ring slot (a GSO
            // super-frame from a pod with TSO on); a frame longer than a buffer cannot be forwarded either.
            if (snap < f.Length || length > PacketPool.MaxFrameLength)
            {
                tooLong++;
                Advance(v2, v3);
                continue;
            }
            var h = pool.Allocate();
            if (h < 0)
            {
                // Leave the frame in the ring: it is still there on the next poll, when buffers are back.
                Counters.RxNoBufferOnce();
                break;
            }
            var source = new ReadOnlySpan<byte>(f.Mac, snap);
            var frame = pool.WritableFrame(h)[..length];
            if (vlan) CopyWithVlanTag(source, frame, f);
            else source.CopyTo(frame);
            pool.SetLength(h, length);
            if ((f.Status & Linux.TpStatusCsumNotReady) != 0) PartialChecksum.Complete(frame);
            handles[n++] = h;
            bytes += length;
            Advance(v2, v3);
        }
        Counters.AddReceive(n, bytes, tooLong);
        return n;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Advance(TpacketV2Ring? v2, TpacketV3Ring? v3)
    {
        if (v2 is not null) v2.Advance();
        else v3!.Advance();
    }

    /// <summary>
    /// A VLAN tag the driver took off into skb metadata (tp_vlan_tci) goes back in front of the EtherType, so the
    /// pipeline sees the frame as it was on the wire.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void CopyWithVlanTag(ReadOnlySpan<byte> source, Span<byte> frame, in RxFrame f)
    {
        source[..12].CopyTo(frame);
        var tpid = (f.Status & Linux.TpStatusVlanTpidValid) != 0 ? f.VlanTpid : Ethernet.TypeVlan;
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], tpid);
        BinaryPrimitives.WriteUInt16BigEndian(frame[14..], f.VlanTci);
        source[12..].CopyTo(frame[16..]);
    }

    public int Transmit(ReadOnlySpan<int> handles)
    {
        if (_fd < 0) return 0;
        var pool = _pool;
        var batch = _tx;
        var accepted = 0;
        long bytes = 0;
        while (accepted < handles.Length)
        {
            var count = Math.Min(handles.Length - accepted, batch.Capacity);
            for (var i = 0; i < count; i++)
            {
                var frame = pool.Frame(handles[accepted + i]);
                // The pool's slab is on the pinned object heap: a frame's address is stable for the kernel.
                batch.Set(i, (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(frame)), frame.Length);
            }
            // The socket is bound, so no per-message address: every frame leaves by the bound interface.
            var sent = LibC.SendMmsg(_fd, batch.Messages, (uint)count, Linux.MsgDontWait);
            if (sent > 0)
            {
                for (var i = 0; i < sent; i++)
                {
                    var h = handles[accepted + i];
                    bytes += pool.Meta(h).Length;
                    pool.Free(h);
                }
                accepted += sent;
                continue;
            }
            if (!SendFailed(handles, ref accepted)) break;
        }
        Counters.AddTransmit(accepted, bytes);
        return accepted;
    }

    /// <summary>
    /// sendmmsg stops at the first message that fails; the retry starting there reports why. A full socket buffer
    /// ends the burst (the caller keeps the rest); a frame the kernel refuses is dropped here and the burst goes on;
    /// a vanished interface drops the rest of the burst. Returns whether to keep sending.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool SendFailed(ReadOnlySpan<int> handles, ref int accepted)
    {
        var errno = Errno.Last;
        if (errno is Errno.EAgain or Errno.ENoBufs or Errno.EIntr)
        {
            Counters.TxBusyOnce();
            return false;
        }
        var drop = errno is Errno.ENetDown or Errno.ENxio or Errno.ENoDev ? handles.Length - accepted : 1;
        for (var i = 0; i < drop; i++) _pool.Free(handles[accepted + i]);
        accepted += drop;
        Counters.TxError(errno, drop);
        return true;
    }

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
        }
    }

    public override string ToString() => $"af_packet:{Name}";
}
