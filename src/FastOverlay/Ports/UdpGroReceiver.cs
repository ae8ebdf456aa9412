using System.Runtime.InteropServices;
using FastOverlay.Offload;
using FastOverlay.Pipeline;
using FastOverlay.Wire;
using FastOverlay.Ports.Native;

namespace FastOverlay.Ports;

/// <summary>
/// The receive half of <see cref="UdpUnderlayPort"/> with UDP GRO (UDP_GRO, Linux 5.0) on: the kernel may hand
/// over up to 64 datagrams of one 4-tuple in one message (UDP_GRO_CNT_MAX), concatenated, with a SOL_UDP/UDP_GRO
/// cmsg carrying their size (udp_cmsg_recv, include/linux/udp.h). That fits no packet buffer, so recvmmsg reads
/// into a fixed set of 64 KiB native buffers, allocated once, and each datagram is copied behind a synthetic
/// outer header into its own pool buffer. Datagrams are cut at the cmsg's gso_size, never by parsing the inner
/// frame (Ethernet padding of small inner frames would break that); the last one may be shorter.
///
/// A burst or the pool can fill up in the middle of a coalesced message: the rest stays here (message index and
/// offset) and goes out first on the next call, before any new recvmmsg, so nothing is lost or reordered. A call
/// makes at most one system call. Pending datagrams wait for the next Receive, which the run loop makes within
/// its idle poll timeout even when the socket has nothing new.
/// </summary>
internal sealed unsafe class UdpGroReceiver : IDisposable
{
    /// <summary>The largest UDP payload over IPv4 (65507) fits, so a coalesced message is never truncated.</summary>
    public const int BufferBytes = 64 * 1024;
    private const int PayloadOffset = UdpUnderlayPort.PayloadOffset;
    private const int Room = PacketPool.MaxFrameLength - PayloadOffset;

    private readonly MessageBatch _batch;
    private readonly int[] _segment;
    private readonly bool _dropCounter;
    private readonly int _innerMtu;
    private byte* _buffers;
    private int _received;
    private int _message;
    private int _offset;

    public UdpGroReceiver(int messages, bool dropCounter, int innerMtu)
    {
        _dropCounter = dropCounter;
        _innerMtu = innerMtu;
        // Room for both cmsgs a message can carry: SO_RXQ_OVFL (uint) and UDP_GRO (int), CMSG_SPACE(4) = 24 each.
        _batch = new MessageBatch(messages, sizeof(SockAddrIn), 2 * Linux.CmsgSpaceInt32);
        _segment = new int[messages];
        _buffers = (byte*)NativeMemory.AlignedAlloc((nuint)messages * BufferBytes, 64);
    }

    public int Messages => _batch.Capacity;

    /// <summary>Datagrams of an earlier recvmmsg not handed out yet.</summary>
    public bool Pending => _message < _received;

    public int Receive(int fd, Span<int> handles, PacketPool pool, PortCounters counters, UdpOuterHeader outer)
    {
        var n = 0;
        long bytes = 0;
        long tooLong = 0;
        long coalesced = 0;
        var read = false;
        while (true)
        {
            // Hand out what the last recvmmsg brought, from where the previous call stopped.
            for (; _message < _received; _message++, _offset = 0)
            {
                if (!Split(_message, handles, ref n, ref bytes, ref tooLong, pool, counters, outer)) goto done;
            }
            if (read || n == handles.Length) break;
            var want = Math.Min(Math.Min(handles.Length - n, _batch.Capacity), pool.Available);
            if (want == 0)
            {
                if (handles.Length > n) counters.RxNoBufferOnce();
                break;
            }
            for (var i = 0; i < want; i++) _batch.Set(i, _buffers + (long)i * BufferBytes, BufferBytes);
            var received = LibC.RecvMmsg(fd, _batch.Messages, (uint)want, Linux.MsgDontWait, null);
            read = true;
            if (received <= 0)
            {
                var errno = Errno.Last;
                if (received < 0 && errno is not (Errno.EAgain or Errno.EIntr)) counters.RxError(errno);
                break;
            }
            _received = received;
            _message = 0;
            _offset = 0;
            coalesced += Classify(received, ref tooLong, counters);
        }
    done:
        counters.AddReceive(n, bytes, tooLong);
        counters.AddOffloads(0, coalesced);
        return n;
    }

    /// <summary>Finds each message's segment size; 0 marks a message that cannot be split and is dropped. Returns how many were coalesced.</summary>
    private int Classify(int received, ref long tooLong, PortCounters counters)
    {
        var coalesced = 0;
        for (var i = 0; i < received; i++)
        {
            var flags = _batch.ReceivedFlags(i);
            var length = _batch.ReceivedLength(i);
            var gso = _batch.ReceivedControlUInt32(i, Linux.SolUdp, Linux.UdpGro);
            if ((flags & Linux.MsgTrunc) != 0)
            {
                // Over 64 KiB: not an IPv4 UDP datagram, nothing to split.
                _segment[i] = 0;
                tooLong++;
            }
            else if (gso > 0)
            {
                _segment[i] = (int)gso;
                if (length > gso) coalesced++;
            }
            else if ((flags & Linux.MsgCtrunc) != 0)
            {
                // The UDP_GRO cmsg may be what did not fit: where the datagrams end is unknown.
                _segment[i] = 0;
                tooLong++;
            }
            else
            {
                _segment[i] = Math.Max(length, 1);
            }
        }
        // The running total of datagrams the socket dropped for want of buffer space rides on each message;
        // the last one's is the newest.
        if (_dropCounter)
        {
            var drops = _batch.ReceivedControlUInt32(received - 1, Linux.SolSocket, Linux.SoRxqOvfl);
            if (drops > 0) counters.SetKernelDrops(drops);
        }
        return coalesced;
    }

    /// <summary>Copies message <paramref name="i"/>'s datagrams from <see cref="_offset"/> on. False when the burst or the pool is full.</summary>
    private bool Split(int i, Span<int> handles, ref int n, ref long bytes, ref long tooLong, PacketPool pool, PortCounters counters, UdpOuterHeader outer)
    {
        var segment = _segment[i];
        if (segment == 0) return true;
        var length = _batch.ReceivedLength(i);
        var data = _buffers + (long)i * BufferBytes;
        ref var from = ref _batch.Address<SockAddrIn>(i);
        var source = Fd.Htonl(from.AddressBigEndian);
        var sourcePort = Fd.Htons(from.PortBigEndian);
        var payload = new ReadOnlySpan<byte>(data, length);
        if (VxlanSuperDatagram.IsSuperFrame(payload, Math.Min(segment, Room)))
            return SplitSuperFrame(payload, handles, ref n, ref bytes, pool, counters, outer, source, sourcePort);
        // do/while: an empty datagram is still one frame, as on the plain path.
        do
        {
            var size = Math.Min(segment, length - _offset);
            if (size > Room)
            {
                tooLong++;
                _offset += size;
                continue;
            }
            if (n == handles.Length) return false;
            var h = pool.Allocate();
            if (h < 0)
            {
                counters.RxNoBufferOnce();
                return false;
            }
            var frame = pool.WritableFrame(h);
            new ReadOnlySpan<byte>(data + _offset, size).CopyTo(frame[PayloadOffset..]);
            outer.Write(frame, source, sourcePort, PayloadOffset + size);
            pool.SetLength(h, PayloadOffset + size);
            handles[n++] = h;
            bytes += PayloadOffset + size;
            _offset += size;
        }
        while (_offset < length);
        return true;
    }

    /// <summary>
    /// One VXLAN frame with an inner super-frame (a kernel peer's tunnel GSO over a veth underlay): each inner
    /// segment becomes a datagram of its own behind a copy of the VXLAN header. <see cref="_offset"/> counts
    /// segments here, so a full burst resumes at the next one.
    /// </summary>
    private bool SplitSuperFrame(ReadOnlySpan<byte> payload, Span<int> handles, ref int n, ref long bytes, PacketPool pool, PortCounters counters, UdpOuterHeader outer, uint source, ushort sourcePort)
    {
        var inner = payload[VxlanHeader.Length..];
        var reason = VxlanSuperDatagram.Plan(inner, _innerMtu, Room - VxlanHeader.Length, out var layout);
        if (reason != DropReason.None)
        {
            counters.AddDrop(reason);
            return true;
        }
        if (_offset == 0) counters.AddSegmentation(1, layout.Segments);
        for (; _offset < layout.Segments; _offset++)
        {
            if (n == handles.Length) return false;
            var h = pool.Allocate();
            if (h < 0)
            {
                counters.RxNoBufferOnce();
                return false;
            }
            var frame = pool.WritableFrame(h);
            payload[..VxlanHeader.Length].CopyTo(frame[PayloadOffset..]);
            // Partial checksums stay partial: decap recognises and finishes them (L4Checksum.Verify).
            var written = GsoSegmenter.WriteSegment(inner, layout, _offset, frame[(PayloadOffset + VxlanHeader.Length)..], completeChecksum: false);
            var total = PayloadOffset + VxlanHeader.Length + written;
            outer.Write(frame, source, sourcePort, total);
            pool.SetLength(h, total);
            handles[n++] = h;
            bytes += total;
        }
        return true;
    }

    public void Dispose()
    {
        _batch.Dispose();
        NativeMemory.AlignedFree(_buffers);
        _buffers = null;
        _received = _message = 0;
    }
}
