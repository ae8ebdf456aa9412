using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastOverlay.Pipeline;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;

namespace FastOverlay.Ports;

/// <summary>Batch and buffer sizes and the offloads of an <see cref="UdpUnderlayPort"/>.</summary>
public sealed record UdpUnderlayOptions
{
    /// <summary>Datagrams per recvmmsg/sendmmsg call (the kernel caps a call at UIO_MAXIOV = 1024).</summary>
    public int Batch { get; init; } = 256;
    /// <summary>Socket buffers: a burst from a fast peer must fit, or the kernel drops it (kernel-drops counter).</summary>
    public int ReceiveBufferBytes { get; init; } = 8 * 1024 * 1024;
    /// <summary>Per transmit socket.</summary>
    public int SendBufferBytes { get; init; } = 8 * 1024 * 1024;
    /// <summary>UDP GSO (UDP_SEGMENT) on transmit when the kernel has it; false is the kill switch.</summary>
    public bool Gso { get; init; } = true;
    /// <summary>UDP GRO (UDP_GRO) on receive when the kernel has it (5.12 or later); false is the kill switch.</summary>
    public bool Gro { get; init; } = true;
    /// <summary>
    /// Sockets that send, each on its own ephemeral source port; a frame takes the one its outer UDP source port
    /// (VxlanEncap's flow hash) picks, modulo this count. 1 (the default) sends everything from the VXLAN port's
    /// socket. More spread flows over a peer's NIC receive queues and the underlay's ECMP paths, at the price of
    /// smaller GSO messages when flows share a burst: see perf/underlay/README.md for the measurement behind the
    /// default, and measure 4 or 8 on the real fabric before raising it.
    /// </summary>
    public int TransmitSockets { get; init; } = DefaultTransmitSockets;
    /// <summary>64 KiB receive buffers (messages per recvmmsg) while UDP GRO is on; each can hold 64 datagrams.</summary>
    public int GroMessages { get; init; } = 16;
    /// <summary>SO_REUSEPORT on the VXLAN port, so each forwarding worker binds its own socket there.</summary>
    public bool ReusePort { get; init; }
    /// <summary>
    /// The overlay's inner MTU: a kernel peer's UDP-tunnel GSO datagram (see <see cref="Offload.VxlanSuperDatagram"/>)
    /// is cut into inner packets no bigger than this, so they fit the pods' MTU.
    /// </summary>
    public int InnerMtu { get; init; } = 1450;

    public const int DefaultTransmitSockets = 1;
}

/// <summary>
/// The default underlay: a UDP socket bound to the node's PublicIP and VXLAN port, the same socket a kernel
/// VXLAN device opens, so flannel nodes talk to it unchanged. The kernel does the outer IPv4, UDP, routing, ARP
/// and Ethernet; we move VXLAN payloads (header plus inner frame) with recvmmsg and sendmmsg.
///
/// To keep the pipeline unchanged the port speaks whole outer frames: on receive it writes a synthetic outer
/// header in front of each datagram (<see cref="UdpOuterHeader"/>), so VxlanDecap checks it as it checks a raw
/// frame. On transmit it takes the frame VxlanEncap built and sends bytes 42 onward (the VXLAN header on) to the
/// outer IPv4 destination and UDP port in it.
///
/// Offloads (probed at start, each with a kill switch, see <see cref="OffloadSummary"/>): UDP GSO groups equal
/// datagrams to one peer into one sendmsg (<see cref="UdpGsoSender"/>); UDP GRO lets the kernel hand over up to 64
/// datagrams per message (<see cref="UdpGroReceiver"/>). Without GRO, recvmmsg reads straight into pool buffers.
///
/// Source-port entropy (RFC 7348 s5; flannel #765): the kernel sends every datagram from its socket's bound port,
/// so from one socket all our flows share one outer 4-tuple and a peer's NIC hashes them to one receive queue.
/// The port can therefore send from <see cref="UdpUnderlayOptions.TransmitSockets"/> sockets on ephemeral ports,
/// picking one by the source port VxlanEncap wrote: a flow keeps one socket, so its order and its 4-tuple hold,
/// and up to K flows spread over the peer's queues. The exact per-flow port is not kept. The default stays 1:
/// measured on a veth pair (perf/underlay/gso.sh), K = 8 never helped and cost 30 % with 4 flows in a burst, whose
/// datagrams then split into 4 GSO messages instead of 1; the benefit, a peer NIC's receive queues, needs real
/// multi-queue hardware to show. Considered and rejected:
/// a raw socket with IP_HDRINCL writing the outer header ourselves would keep it exactly, but it needs
/// CAP_NET_RAW, loses UDP GSO (udp_send_skb serves only UDP sockets; raw sends are one skb per datagram), must
/// compute the outer UDP checksum in software, and bypasses the UDP socket's PMTU handling; IP_PKTINFO chooses
/// only the source address, not the port. The outer TTL and DF come from the kernel (IP_PMTUDISC_DO sets DF, so
/// oversize sends fail instead of fragmenting, RFC 7348 s4.3).
/// </summary>
public sealed unsafe class UdpUnderlayPort : ISocketPort
{
    /// <summary>Outer Ethernet 14 + IPv4 20 + UDP 8: where the VXLAN header starts in a frame.</summary>
    public const int PayloadOffset = Ethernet.HeaderLength + Ipv4Header.MinLength + UdpHeader.Length;

    private readonly PacketPool _pool;
    private readonly MessageBatch? _rx;
    private readonly UdpGroReceiver? _gro;
    private readonly UdpGsoSender _sender;
    private readonly UdpOuterHeader _outer;
    private readonly int[] _armed;
    private readonly int[] _txFds;
    private readonly bool _dropCounter;
    private readonly string _gsoStartNote;
    private readonly string _groNote;
    private int _fd;

    public UdpUnderlayPort(Ipv4Address localIp, ushort localPort, PacketPool pool, MacAddress localMac = default, UdpUnderlayOptions? options = null)
    {
        options ??= new UdpUnderlayOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.TransmitSockets, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.TransmitSockets, 64);
        _pool = pool;
        Name = $"udp:{localIp}:{localPort}";
        var target = $"underlay {localIp}:{localPort}";
        var sockets = options.TransmitSockets;
        _txFds = new int[sockets];
        Array.Fill(_txFds, -1);
        var ports = new ushort[sockets];
        _fd = UdpSockets.Open(localIp.Value, localPort, target, out _, options.ReusePort);
        try
        {
            ReceiveBufferBytes = Fd.SetBuffer(_fd, receive: true, options.ReceiveBufferBytes);
            _dropCounter = Fd.TrySetOption(_fd, Linux.SolSocket, Linux.SoRxqOvfl, 1);
            var gro = false;
            _groNote = "udp gro off (disabled by option)";
            if (options.Gro) gro = UdpSockets.ProbeGro(_fd, out _groNote);
            if (sockets == 1)
            {
                _txFds[0] = _fd;
                ports[0] = localPort;
                SendBufferBytes = Fd.SetBuffer(_fd, receive: false, options.SendBufferBytes);
            }
            else
            {
                for (var k = 0; k < sockets; k++)
                {
                    _txFds[k] = UdpSockets.Open(localIp.Value, 0, $"underlay {localIp} transmit socket {k}", out ports[k]);
                    SendBufferBytes = Fd.SetBuffer(_txFds[k], receive: false, options.SendBufferBytes);
                    // Nothing reads these sockets: a stray datagram to their port may hold only the smallest buffer.
                    Fd.TrySetOption(_txFds[k], Linux.SolSocket, Linux.SoRcvBuf, 1);
                }
            }
            var gso = false;
            _gsoStartNote = "udp gso off (disabled by option)";
            if (options.Gso) gso = UdpSockets.ProbeGso(_txFds[0], out _gsoStartNote);
            _sender = new UdpGsoSender(pool, Counters, _txFds, options.Batch, gso);
            if (gro) _gro = new UdpGroReceiver(options.GroMessages, _dropCounter, options.InnerMtu);
            else _rx = new MessageBatch(options.Batch, sizeof(SockAddrIn), _dropCounter ? Linux.CmsgSpaceUInt32 : 0);
        }
        catch
        {
            CloseAll();
            throw;
        }
        TransmitPorts = ports;
        _armed = new int[options.Batch];
        _outer = new UdpOuterHeader(localIp.Value, localPort, localMac);
    }

    public string Name { get; }
    public int FileDescriptor => _fd;
    public PortCounters Counters { get; } = new();
    /// <summary>recvmmsg on a socket: see <see cref="ISocketPort.ReceiveIsSystemCall"/>.</summary>
    public bool ReceiveIsSystemCall => true;
    /// <summary>What the kernel granted (double the request, socket(7)); the send buffer is per transmit socket.</summary>
    public int ReceiveBufferBytes { get; }
    public int SendBufferBytes { get; }
    /// <summary>The source port of each transmit socket (the VXLAN port itself with one socket).</summary>
    public IReadOnlyList<ushort> TransmitPorts { get; }
    public bool GsoEnabled => _sender.Enabled;
    internal UdpGsoSender Sender => _sender;
    internal IReadOnlyList<int> TransmitFileDescriptors => _txFds;
    public bool GroEnabled => _gro is not null;

    /// <summary>One line for the operator, e.g. "udp gso on (64 segments), udp gro on, 8 transmit sockets".</summary>
    public string OffloadSummary =>
        $"{(_sender.Enabled ? $"udp gso on ({UdpGsoSender.MaxSegments} segments)" : _sender.Note is null ? _gsoStartNote : "udp gso off (EIO at run time)")}, " +
        $"{_groNote}, {(_txFds.Length == 1 ? "1 transmit socket (the VXLAN port's)" : $"{_txFds.Length} transmit sockets")}";

    /// <summary>What changed at run time (GSO switched off after an EIO), or null; also passed to <see cref="Log"/> once.</summary>
    public string? OffloadNote => _sender.Note;

    /// <summary>Called once, on the forwarder thread, when an offload is switched off at run time.</summary>
    public Action<string>? Log
    {
        get => _sender.Log;
        set => _sender.Log = value;
    }

    public int Receive(Span<int> handles)
    {
        if (_fd < 0) return 0;
        if (_gro is not null) return _gro.Receive(_fd, handles, _pool, Counters, _outer);
        var pool = _pool;
        var batch = _rx!;
        var want = Math.Min(Math.Min(handles.Length, batch.Capacity), pool.Available);
        if (want == 0)
        {
            if (handles.Length > 0) Counters.RxNoBufferOnce();
            return 0;
        }
        // Buffers are armed per call and the unused ones go straight back: two array writes each, far below
        // the cost of the system call, and the pool never has buffers hidden inside a port.
        for (var i = 0; i < want; i++)
        {
            var h = pool.Allocate();
            _armed[i] = h;
            var payload = pool.WritableFrame(h)[PayloadOffset..];
            batch.Set(i, (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(payload)), payload.Length);
        }
        var received = LibC.RecvMmsg(_fd, batch.Messages, (uint)want, Linux.MsgDontWait, null);
        if (received < 0)
        {
            var errno = Errno.Last;
            if (errno is not (Errno.EAgain or Errno.EIntr)) Counters.RxError(errno);
            received = 0;
        }
        var n = 0;
        long bytes = 0;
        long tooLong = 0;
        for (var i = 0; i < received; i++)
        {
            var h = _armed[i];
            if ((batch.ReceivedFlags(i) & Linux.MsgTrunc) != 0)
            {
                tooLong++;
                pool.Free(h);
                continue;
            }
            var length = PayloadOffset + batch.ReceivedLength(i);
            ref var from = ref batch.Address<SockAddrIn>(i);
            _outer.Write(pool.WritableFrame(h), Fd.Htonl(from.AddressBigEndian), Fd.Htons(from.PortBigEndian), length);
            pool.SetLength(h, length);
            handles[n++] = h;
            bytes += length;
        }
        for (var i = received; i < want; i++) pool.Free(_armed[i]);
        // The running total of datagrams the socket dropped for want of buffer space rides on each datagram;
        // the last one's is the newest.
        if (_dropCounter && received > 0)
        {
            var drops = batch.ReceivedControlUInt32(received - 1, Linux.SolSocket, Linux.SoRxqOvfl);
            if (drops > 0) Counters.SetKernelDrops(drops);
        }
        Counters.AddReceive(n, bytes, tooLong);
        return n;
    }

    /// <summary>
    /// Sends in windows of <see cref="UdpUnderlayOptions.Batch"/> frames (see <see cref="UdpGsoSender"/>). A full
    /// socket buffer ends the burst; the caller owns the frames from the returned count on.
    /// </summary>
    public int Transmit(ReadOnlySpan<int> handles)
    {
        if (_fd < 0) return 0;
        var accepted = 0;
        var window = _sender.Window;
        while (accepted < handles.Length)
        {
            accepted += _sender.Send(handles.Slice(accepted, Math.Min(handles.Length - accepted, window)), out var blocked);
            if (blocked) break;
        }
        return accepted;
    }

    /// <summary>Nothing to fetch: with SO_RXQ_OVFL the drop count arrives with the datagrams.</summary>
    public void RefreshKernelStatistics()
    {
    }

    private void CloseAll()
    {
        for (var k = 0; k < _txFds.Length; k++)
        {
            if (_txFds[k] != _fd) Fd.Close(ref _txFds[k]);
        }
        Fd.Close(ref _fd);
    }

    public void Dispose()
    {
        if (_fd < 0) return;
        CloseAll();
        _rx?.Dispose();
        _gro?.Dispose();
        _sender.Dispose();
    }

    public override string ToString() => Name;
}
