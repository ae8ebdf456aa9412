using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastOverlay.Pipeline;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;

namespace FastOverlay.Ports;

/// <summary>Batch and buffer sizes of an <see cref="UdpUnderlayPort"/>.</summary>
public sealed record UdpUnderlayOptions
{
    /// <summary>Datagrams per recvmmsg/sendmmsg call (the kernel caps a call at UIO_MAXIOV = 1024).</summary>
    public int Batch { get; init; } = 256;
    /// <summary>Socket buffers: a burst from a fast peer must fit, or the kernel drops it (kernel-drops counter).</summary>
    public int ReceiveBufferBytes { get; init; } = 8 * 1024 * 1024;
    public int SendBufferBytes { get; init; } = 8 * 1024 * 1024;
}

/// <summary>
/// The default underlay: one UDP socket bound to the node's PublicIP and VXLAN port, the same socket a kernel
/// VXLAN device opens, so flannel nodes talk to it unchanged. The kernel does the outer IPv4, UDP, routing, ARP
/// and Ethernet; we move VXLAN payloads (header plus inner frame) with recvmmsg and sendmmsg.
///
/// To keep the pipeline unchanged the port speaks whole outer frames: on receive it writes a synthetic outer
/// Ethernet/IPv4/UDP header in front of each datagram (source address and port from recvmmsg's sockaddr,
/// destination our bound address, a valid IPv4 checksum, UDP checksum 0 because the kernel already verified
/// the real one), so VxlanDecap checks it as it checks a raw frame. On transmit it takes the frame VxlanEncap
/// built and sends bytes 42 onward (the VXLAN header on) to the outer IPv4 destination and UDP port in it.
///
/// Trade-off: the kernel picks the outer UDP source port, the socket's bound port, for every datagram. VxlanEncap's
/// per-flow source port (RFC 7348 s5 entropy for underlay ECMP and receive-side scaling, flannel #765) is lost,
/// so on the peer all our traffic hashes to one receive queue. Keeping it would take one socket per source port
/// or a raw IP socket (IP_HDRINCL); IP_PKTINFO chooses only the source address, not the port. The outer TTL
/// and DF come from the kernel too (IP_PMTUDISC_DO sets DF, so oversize sends fail instead of fragmenting,
/// RFC 7348 s4.3).
/// </summary>
public sealed unsafe class UdpUnderlayPort : ISocketPort
{
    /// <summary>Outer Ethernet 14 + IPv4 20 + UDP 8: where the VXLAN header starts in a frame.</summary>
    public const int PayloadOffset = Ethernet.HeaderLength + Ipv4Header.MinLength + UdpHeader.Length;
    private const int OuterTtl = 64;

    private readonly PacketPool _pool;
    private readonly MessageBatch _rx;
    private readonly MessageBatch _tx;
    private readonly int[] _armed;
    private readonly uint _localIp;
    private readonly ushort _localPort;
    private readonly MacAddress _localMac;
    private readonly ulong _ipSumConstant;
    private readonly bool _dropCounter;
    private int _fd;

    public UdpUnderlayPort(Ipv4Address localIp, ushort localPort, PacketPool pool, MacAddress localMac = default, UdpUnderlayOptions? options = null)
    {
        options ??= new UdpUnderlayOptions();
        _pool = pool;
        _localIp = localIp.Value;
        _localPort = localPort;
        _localMac = localMac;
        Name = $"udp:{localIp}:{localPort}";
        var target = $"underlay {localIp}:{localPort}";

        _fd = LibC.Socket(Linux.AfInet, Linux.SockDgram | Linux.SockNonBlock | Linux.SockCloExec, Linux.IpProtoUdp);
        if (_fd < 0) throw Errno.Error("socket(AF_INET, SOCK_DGRAM)", target);
        try
        {
            Fd.SetOption(_fd, Linux.IpProtoIp, Linux.IpMtuDiscover, Linux.IpPmtuDiscDo, "setsockopt(IP_MTU_DISCOVER, IP_PMTUDISC_DO)", target);
            ReceiveBufferBytes = Fd.SetBuffer(_fd, receive: true, options.ReceiveBufferBytes);
            SendBufferBytes = Fd.SetBuffer(_fd, receive: false, options.SendBufferBytes);
            _dropCounter = Fd.TrySetOption(_fd, Linux.SolSocket, Linux.SoRxqOvfl, 1);
            var address = new SockAddrIn { Family = Linux.AfInet, PortBigEndian = Fd.Htons(localPort), AddressBigEndian = Fd.Htonl(localIp.Value) };
            if (LibC.Bind(_fd, &address, (uint)sizeof(SockAddrIn)) != 0) throw Errno.Error("bind(UDP)", target);
        }
        catch
        {
            Fd.Close(ref _fd);
            throw;
        }
        _rx = new MessageBatch(options.Batch, sizeof(SockAddrIn), _dropCounter ? Linux.CmsgSpaceUInt32 : 0);
        _tx = new MessageBatch(options.Batch, sizeof(SockAddrIn));
        _armed = new int[options.Batch];
        for (var i = 0; i < options.Batch; i++) _tx.Address<SockAddrIn>(i).Family = Linux.AfInet;

        // The synthetic IPv4 header's words that never change, summed once (version/IHL/TOS, flags/DF,
        // TTL/protocol, destination): per packet only the length and the source are added.
        Span<byte> ip = stackalloc byte[Ipv4Header.MinLength];
        Ipv4Header.Write(ip, 0, 0, Ipv4Header.FlagDontFragment, OuterTtl, Ipv4Header.ProtocolUdp, 0, _localIp);
        ip[Ipv4Header.OffsetChecksum] = 0;
        ip[Ipv4Header.OffsetChecksum + 1] = 0;
        _ipSumConstant = InternetChecksum.Add(ip);
    }

    public string Name { get; }
    public int FileDescriptor => _fd;
    public PortCounters Counters { get; } = new();
    /// <summary>What the kernel granted (double the request, socket(7)).</summary>
    public int ReceiveBufferBytes { get; }
    public int SendBufferBytes { get; }

    public int Receive(Span<int> handles)
    {
        if (_fd < 0) return 0;
        var pool = _pool;
        var batch = _rx;
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
            WriteOuter(pool.WritableFrame(h), Fd.Htonl(from.AddressBigEndian), Fd.Htons(from.PortBigEndian), length);
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

    /// <summary>The outer header a raw socket would have shown, rebuilt from what recvmmsg reports.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteOuter(Span<byte> frame, uint source, ushort sourcePort, int length)
    {
        Ethernet.Write(frame, _localMac, MacAddress.Zero, Ethernet.TypeIpv4);
        var ip = frame[Ethernet.HeaderLength..];
        var totalLength = (ushort)(length - Ethernet.HeaderLength);
        Ipv4Header.Write(ip, totalLength, 0, Ipv4Header.FlagDontFragment, OuterTtl, Ipv4Header.ProtocolUdp, source, _localIp);
        // Checksum from the constant part's sum plus the two fields that vary (RFC 1071 sums commute).
        var sum = _ipSumConstant + Swap(totalLength) + Swap((ushort)(source >> 16)) + Swap((ushort)source);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Header.OffsetChecksum..], InternetChecksum.Finish(sum));
        UdpHeader.Write(ip[Ipv4Header.MinLength..], sourcePort, _localPort, (ushort)(totalLength - Ipv4Header.MinLength));
    }

    /// <summary>A big-endian field as the native-order checksum accumulator sees it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Swap(ushort value) => BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(value) : value;

    public int Transmit(ReadOnlySpan<int> handles)
    {
        if (_fd < 0) return 0;
        var pool = _pool;
        var batch = _tx;
        var accepted = 0;
        long bytes = 0;
        while (accepted < handles.Length)
        {
            var count = 0;
            var limit = Math.Min(handles.Length - accepted, batch.Capacity);
            while (count < limit)
            {
                var frame = pool.Frame(handles[accepted + count]);
                if (!Sendable(frame)) break;
                ref var to = ref batch.Address<SockAddrIn>(count);
                // Both fields are already in network byte order in the frame, as sockaddr_in wants them.
                to.AddressBigEndian = MemoryMarshal.Read<uint>(frame[(Ethernet.HeaderLength + Ipv4Header.OffsetDestination)..]);
                to.PortBigEndian = MemoryMarshal.Read<ushort>(frame[(Ethernet.HeaderLength + Ipv4Header.MinLength + 2)..]);
                var payload = frame[PayloadOffset..];
                batch.Set(count, (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(payload)), payload.Length);
                count++;
            }
            if (count == 0)
            {
                // Not a frame VxlanEncap built: dropped here rather than sent somewhere odd.
                pool.Free(handles[accepted++]);
                Counters.TxError(Errno.EInval);
                continue;
            }
            var sent = LibC.SendMmsg(_fd, batch.Messages, (uint)count, Linux.MsgDontWait);
            if (sent > 0)
            {
                for (var i = 0; i < sent; i++)
                {
                    var h = handles[accepted + i];
                    bytes += pool.Meta(h).Length - PayloadOffset;
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

    /// <summary>An outer frame with a plain 20-byte IPv4 header and at least a VXLAN header after the UDP one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Sendable(ReadOnlySpan<byte> frame) =>
        frame.Length >= PayloadOffset + VxlanHeader.Length && frame[Ethernet.HeaderLength] == 0x45;

    /// <summary>
    /// As for <see cref="AfPacketPort"/>: a full buffer ends the burst, a datagram the kernel refuses (EMSGSIZE
    /// over the path MTU, ENETUNREACH with no route to that peer) is dropped and the burst goes on.
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
        _pool.Free(handles[accepted]);
        accepted++;
        Counters.TxError(errno);
        return true;
    }

    /// <summary>Nothing to fetch: with SO_RXQ_OVFL the drop count arrives with the datagrams.</summary>
    public void RefreshKernelStatistics()
    {
    }

    public void Dispose()
    {
        if (_fd < 0) return;
        Fd.Close(ref _fd);
        _rx.Dispose();
        _tx.Dispose();
    }

    public override string ToString() => Name;
}
