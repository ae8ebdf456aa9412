using System.Runtime.InteropServices;
using FastOverlay.Pipeline;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;

namespace FastOverlay.Ports;

/// <summary>Batch sizes, buffers and the fanout group of an <see cref="ExternalPort"/>.</summary>
public sealed record ExternalPortOptions
{
    /// <summary>Frames per recvmmsg call. Each message also gets a 64 KiB overflow area for GRO frames (virtual memory, touched only by them).</summary>
    public int ReceiveBatch { get; init; } = 64;
    /// <summary>Packets per sendmmsg call.</summary>
    public int TransmitBatch { get; init; } = 256;
    public int ReceiveBufferBytes { get; init; } = 4 * 1024 * 1024;
    public int SendBufferBytes { get; init; } = 4 * 1024 * 1024;
    /// <summary>Join a PACKET_FANOUT_HASH group: one port per worker, each flow to one of them by its flow hash.</summary>
    public bool Fanout { get; init; }
    /// <summary>
    /// The group to join; null asks the kernel for a fresh one (PACKET_FANOUT_FLAG_UNIQUEID), whose id (0 is a
    /// valid one) the first port then reports in <see cref="ExternalPort.FanoutGroupId"/> for the other workers' ports.
    /// </summary>
    public int? GroupId { get; init; }
}

/// <summary>
/// The node's door for traffic from outside the cluster to its Services (NodePorts on the public IP,
/// LoadBalancer and external IPs), which the UDP underlay socket never sees.
///
/// Receive: an AF_PACKET socket on the underlay interface, bound to ETH_P_IP rather than ETH_P_ALL, so it sits
/// among the IPv4 receive handlers (beside ip_rcv) and the kernel never offers it outgoing frames or non-IPv4
/// ones; PACKET_IGNORE_OUTGOING is set anyway. A classic BPF filter (<see cref="ExternalFilter"/>) passes only
/// the Services' frames, so VXLAN on the same interface is never copied. It is attached before bind, so no
/// unfiltered frame is ever queued (the socket is created with protocol 0 and receives nothing until then).
/// Frames are whole Ethernet frames, read with recvmmsg straight into pool buffers. The kernel's copy of
/// these frames still goes on to ip_rcv; Control.ExternalGuard drops it there so the node does not answer.
///
/// GRO runs before any packet tap: a TCP stream through a NIC arrives as super-frames of up to 64 KiB. With
/// PACKET_VNET_HDR each frame carries its virtio_net_hdr; a super-frame spills from its pool buffer into the
/// message's overflow area and is cut into MTU-sized segments here, as the pod ports do (GsoSegmenter).
///
/// Transmit: the IPv4 packet behind each frame's Ethernet header goes out of an AF_INET SOCK_RAW IPPROTO_RAW
/// socket (the header is ours, IP_HDRINCL), so the kernel routes it and resolves the next hop; the source may
/// be a LoadBalancer IP the node does not hold (raw sockets do not check it). sendmmsg, one address per packet.
/// </summary>
public sealed unsafe partial class ExternalPort : ISocketPort
{
    private readonly PacketPool _pool;
    private readonly MessageBatch _rx;
    private readonly MessageBatch _tx;
    private readonly int[] _armed;
    private readonly bool _vnet;
    // Statistics and filter updates come from the control thread; this keeps them off a closed (or reused) fd.
    private readonly object _gate = new();
    private VirtioNetHeader* _headers;
    private byte* _overflow;
    private byte* _scratch;
    private int _fd;
    private int _txFd;
    private ExternalFilterProgram _filter;
    /// <summary>Bumped after each new filter is in place (see <see cref="_quietVersion"/>).</summary>
    private int _filterVersion;

    public ExternalPort(string interfaceName, PacketPool pool, ExternalTraffic traffic, ExternalPortOptions? options = null)
        : this(interfaceName, pool, ExternalFilter.Compile(traffic), options)
    {
    }

    public ExternalPort(string interfaceName, PacketPool pool, ExternalFilterProgram filter, ExternalPortOptions? options = null)
    {
        options ??= new ExternalPortOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ReceiveBatch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.TransmitBatch, 1);
        Name = interfaceName;
        _pool = pool;
        _filter = filter;
        var target = $"external port {interfaceName}";
        var index = LibC.IfNameToIndex(interfaceName);
        if (index == 0) throw Errno.Error("if_nametoindex", interfaceName);
        InterfaceIndex = (int)index;
        _fd = LibC.Socket(Linux.AfPacket, Linux.SockRaw | Linux.SockNonBlock | Linux.SockCloExec, 0);
        if (_fd < 0) throw Errno.Error("socket(AF_PACKET)", target);
        _txFd = -1;
        try
        {
            Fd.TrySetOption(_fd, Linux.SolPacket, Linux.PacketIgnoreOutgoing, 1);
            _vnet = Fd.TrySetOption(_fd, Linux.SolPacket, Linux.PacketVnetHdr, 1);
            Fd.SetBuffer(_fd, receive: true, options.ReceiveBufferBytes);
            Attach(_fd, filter, target);
            var address = new SockAddrLl { Family = Linux.AfPacket, ProtocolBigEndian = Fd.Htons(Linux.EthPIp), IfIndex = InterfaceIndex };
            if (LibC.Bind(_fd, &address, (uint)sizeof(SockAddrLl)) != 0) throw Errno.Error("bind(AF_PACKET, ETH_P_IP)", target);
            if (options.Fanout) FanoutGroupId = Fd.JoinFanout(_fd, options.GroupId, target);

            _txFd = LibC.Socket(Linux.AfInet, Linux.SockRaw | Linux.SockNonBlock | Linux.SockCloExec, Linux.IpProtoRaw);
            if (_txFd < 0) throw Errno.Error("socket(AF_INET, SOCK_RAW, IPPROTO_RAW)", target);
            Fd.SetBuffer(_txFd, receive: false, options.SendBufferBytes);

            _rx = new MessageBatch(options.ReceiveBatch, 0, 0, 3);
            _headers = (VirtioNetHeader*)NativeMemory.AllocZeroed((nuint)options.ReceiveBatch, (nuint)sizeof(VirtioNetHeader));
            // Never touched (so never backed by memory) unless a GRO frame spills into it.
            _overflow = (byte*)NativeMemory.Alloc((nuint)options.ReceiveBatch, OverflowSize);
            _scratch = (byte*)NativeMemory.Alloc(PacketPool.MaxFrameLength + OverflowSize);
            _armed = new int[options.ReceiveBatch];
            _tx = new MessageBatch(options.TransmitBatch, sizeof(SockAddrIn));
        }
        catch
        {
            _rx?.Dispose();
            FreeNative();
            Fd.Close(ref _txFd);
            Fd.Close(ref _fd);
            throw;
        }
    }

    public string Name { get; }
    public int InterfaceIndex { get; }
    public int FileDescriptor => _fd;
    public bool IsOpen => Volatile.Read(ref _fd) >= 0;
    public PortCounters Counters { get; } = new();
    /// <summary>recvmmsg on a socket: see <see cref="ISocketPort.ReceiveIsSystemCall"/>.</summary>
    public bool ReceiveIsSystemCall => true;
    /// <summary>The PACKET_FANOUT group this port joined (pass it to the other workers' ports), or null without fanout.</summary>
    public int? FanoutGroupId { get; }
    /// <summary>Whether frames carry a virtio_net_hdr, so GRO super-frames are segmented instead of dropped as truncated.</summary>
    public bool VnetHeader => _vnet;

    /// <summary>The filter in the kernel now.</summary>
    public ExternalFilterProgram Filter => Volatile.Read(ref _filter);

    /// <summary>Compiles and attaches a new filter (any thread). Returns it, so the caller can log its <see cref="ExternalFilterProgram.Summary"/>.</summary>
    public ExternalFilterProgram UpdateFilter(ExternalTraffic traffic)
    {
        var program = ExternalFilter.Compile(traffic);
        UpdateFilter(program);
        return program;
    }

    /// <summary>
    /// Attaches <paramref name="program"/> (any thread, while the data thread receives): SO_ATTACH_FILTER swaps
    /// the socket's filter under RCU, so every frame meets either the old program or the new one. Frames the
    /// old one passed may still be queued; userspace checks them against its own tables. With fanout every
    /// worker's port needs the same program: the kernel picks the socket first, then runs that socket's filter.
    /// </summary>
    public void UpdateFilter(ExternalFilterProgram program)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_fd < 0, this);
            Attach(_fd, program, $"external port {Name}");
            Volatile.Write(ref _filter, program);
            Volatile.Write(ref _filterVersion, _filterVersion + 1);
        }
    }

    private static void Attach(int fd, ExternalFilterProgram program, string target)
    {
        fixed (SockFilter* code = program.Code)
        {
            var fprog = new SockFprog { Length = (ushort)program.Code.Length, Filter = code };
            if (LibC.SetSockOpt(fd, Linux.SolSocket, Linux.SoAttachFilter, &fprog, (uint)sizeof(SockFprog)) != 0)
                throw Errno.Error($"setsockopt(SO_ATTACH_FILTER, {program.Code.Length} instructions)", target);
        }
    }

    public void RefreshKernelStatistics()
    {
        lock (_gate)
        {
            if (_fd < 0) return;
            TpacketStatsV3 stats;
            var length = (uint)sizeof(TpacketStatsV3);
            if (LibC.GetSockOpt(_fd, Linux.SolPacket, Linux.PacketStatistics, &stats, &length) == 0) Counters.AddKernelDrops(stats.Drops);
        }
    }

    /// <summary>Closes both sockets and gives back the buffers of frames received but not yet handed over.</summary>
    public void Dispose()
    {
        RefreshKernelStatistics();
        lock (_gate)
        {
            if (_fd < 0) return;
            Fd.Close(ref _fd);
            Fd.Close(ref _txFd);
            ReleasePending();
            _rx.Dispose();
            _tx.Dispose();
            FreeNative();
        }
    }

    private void FreeNative()
    {
        NativeMemory.Free(_headers);
        NativeMemory.Free(_overflow);
        NativeMemory.Free(_scratch);
        _headers = null;
        _overflow = null;
        _scratch = null;
    }

    public override string ToString() => $"external:{Name}";
}
