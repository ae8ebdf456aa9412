using System.Runtime.CompilerServices;
using FastOverlay.Pipeline;
using FastOverlay.Ports.Native;

namespace FastOverlay.Ports;

/// <summary>Stands in for sendmmsg(2) in tests; errno goes through Marshal.SetLastPInvokeError.</summary>
internal unsafe delegate int SendMmsgCall(int fd, MMsgHdr* messages, uint count);

/// <summary>
/// The transmit half of <see cref="UdpUnderlayPort"/>: groups a window of VXLAN frames into sendmmsg messages,
/// several datagrams per message with UDP GSO (UDP_SEGMENT, Linux 4.18), over one or several transmit sockets.
///
/// Grouping (as wireguard-go's coalesceMessages): a frame's socket is its outer UDP source port modulo the socket
/// count, so a flow keeps one socket and one source port. Per socket the frames join the message still open there
/// while they go to the same destination address and port with a payload of the message's segment size; a shorter
/// payload joins as the tail and closes it (udp_send_skb cuts the super-datagram into gso_size pieces, so only the
/// last may be short). A message holds at most 64 datagrams (UDP_MAX_SEGMENTS before 6.9 raised it to 128) and
/// 65507 payload bytes (the IPv4 datagram limit). Each datagram is one iovec pointing into its packet buffer: the
/// kernel's copy is the only one. Messages are laid out socket by socket in the batch (a counting sort), so each
/// socket takes one sendmmsg for its part.
///
/// Errors (net/ipv4/udp.c udp_send_skb): EIO on a GSO message means the kernel will not segment on this route (an
/// egress device without checksum offload before 6.11, whose 10154dbded6d checksums in software instead; an IPsec
/// xfrm route on any kernel): GSO goes off for good (kill switch, logged once) and the message goes datagram by datagram. EINVAL or EMSGSIZE
/// on a GSO message (gso_size over the path MTU, too many segments) splits it into single datagrams, tried once
/// each; one the kernel refuses is dropped (TxError) and the burst goes on. EAGAIN/ENOBUFS ends the burst: the
/// caller owns every frame from the first unsent one on. With several sockets another socket may already have sent
/// frames behind that one; they cannot go back, so the unsent frames before the last sent one are dropped here
/// (<see cref="PortCounters.TxBusyDropped"/>) and the count returned covers them. Every buffer is freed exactly once.
/// </summary>
internal sealed unsafe partial class UdpGsoSender : IDisposable
{
    /// <summary>UDP_MAX_SEGMENTS: 64 on every kernel (128 only since 6.9).</summary>
    public const int MaxSegments = 64;
    /// <summary>65535 - IPv4 20 - UDP 8: the most one IPv4 UDP (super-)datagram carries.</summary>
    public const int MaxBytes = 65507;
    private const int PayloadOffset = UdpUnderlayPort.PayloadOffset;

    private readonly PacketPool _pool;
    private readonly PortCounters _counters;
    private readonly int[] _fds;
    private readonly MessageBatch _batch;
    private readonly MessageBatch _single;
    private readonly int[] _singleIndex = new int[MaxSegments];

    private readonly Member[] _members;
    private readonly Message[] _msgs;
    private readonly int[] _slotMessage;
    // Per socket: the message still taking datagrams (then the next free slot), where its messages start in the
    // batch, how many it has; and the sockets in first-use order.
    private readonly int[] _open;
    private readonly int[] _socketStart;
    private readonly int[] _socketCount;
    private readonly int[] _order;
    private int _messages;
    private int _sockets;
    // The first frame a full socket left unsent (int.MaxValue while none), and one past the last frame done.
    private int _cutoff;
    private int _high;
    private long _sent;
    private long _sentBytes;
    private long _gsoSent;

    public UdpGsoSender(PacketPool pool, PortCounters counters, int[] fds, int window, bool enabled)
    {
        _pool = pool;
        _counters = counters;
        _fds = fds;
        Enabled = enabled;
        _batch = new MessageBatch(window, sizeof(SockAddrIn), Linux.CmsgSpaceUInt16, enabled ? MaxSegments : 1);
        _single = new MessageBatch(MaxSegments, sizeof(SockAddrIn));
        for (var i = 0; i < window; i++) _batch.Address<SockAddrIn>(i).Family = Linux.AfInet;
        for (var i = 0; i < MaxSegments; i++) _single.Address<SockAddrIn>(i).Family = Linux.AfInet;
        _members = new Member[window];
        _msgs = new Message[window];
        _slotMessage = new int[window];
        _open = new int[fds.Length];
        _socketStart = new int[fds.Length];
        _socketCount = new int[fds.Length];
        _order = new int[fds.Length];
    }

    /// <summary>Whether datagrams are still grouped under UDP_SEGMENT (false from the start, or after an EIO).</summary>
    public bool Enabled { get; private set; }
    /// <summary>Why GSO went off at run time, once it has.</summary>
    public string? Note { get; private set; }
    public Action<string>? Log { get; set; }
    public int Window => _batch.Capacity;

    /// <summary>
    /// Tests only: replaces sendmmsg, to return what a kernel here will not (EIO: since 6.11, 10154dbded6d, udp_send_skb
    /// checksums a GSO skb in software when the device cannot; EAGAIN on one socket of several).
    /// </summary>
    internal SendMmsgCall? SendOverride { get; set; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int SendMmsg(int fd, MMsgHdr* messages, int count) =>
        SendOverride is { } call ? call(fd, messages, (uint)count) : LibC.SendMmsg(fd, messages, (uint)count, Linux.MsgDontWait);

    /// <summary>
    /// Sends up to <see cref="Window"/> frames. Returns how many the port consumed from the front (sent, or dropped
    /// and freed); <paramref name="blocked"/> says a socket buffer was full, so the caller keeps the rest.
    /// </summary>
    public int Send(ReadOnlySpan<int> window, out bool blocked)
    {
        _cutoff = int.MaxValue;
        _high = 0;
        Plan(window);
        Fill();
        for (var o = 0; o < _sockets; o++) SendSocket(_order[o], window);
        var consumed = window.Length;
        blocked = _cutoff != int.MaxValue;
        if (blocked)
        {
            // The caller takes back a suffix: everything up to the last frame that left is consumed here.
            consumed = _high;
            var dropped = 0;
            for (var j = 0; j < consumed; j++)
            {
                if (_members[j].Done) continue;
                _pool.Free(window[j]);
                dropped++;
            }
            if (dropped > 0) _counters.TxBusyDrop(dropped);
        }
        _counters.AddTransmit(_sent, _sentBytes);
        _counters.AddOffloads(_gsoSent, 0);
        _sent = _sentBytes = _gsoSent = 0;
        return consumed;
    }

    /// <summary>
    /// One sendmmsg per run of this socket's messages. Stops at the <see cref="Limit"/> once a socket is full: a
    /// message reaching past it waits for the caller, with all this socket's later ones, so a flow never goes out
    /// of order.
    /// </summary>
    private void SendSocket(int s, ReadOnlySpan<int> window)
    {
        var fd = _fds[s];
        var slot = _socketStart[s];
        var end = slot + _socketCount[s];
        while (slot < end)
        {
            var run = slot;
            while (run < end && Batchable(_slotMessage[run])) run++;
            var m = _slotMessage[slot];
            if (run == slot)
            {
                if (_msgs[m].Last >= Limit) return;
                // GSO went off earlier in this burst: this message goes datagram by datagram.
                if (!SendSingles(fd, m, window)) return;
                slot++;
                continue;
            }
            var sent = SendMmsg(fd, _batch.Messages + slot, run - slot);
            if (sent > 0)
            {
                for (var i = 0; i < sent; i++) Sent(_slotMessage[slot + i], window);
                slot += sent;
                continue;
            }
            if (!Failed(fd, m, Errno.Last, window)) return;
            slot++;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Batchable(int m) => _msgs[m].Last < Limit && (_msgs[m].Count == 1 || Enabled);

    /// <summary>
    /// Frames from here on wait for the caller. Once a socket is full that is its first unsent frame, unless
    /// another socket already sent frames past it: everything before the last sent frame is consumed anyway, so
    /// it had better leave than be dropped.
    /// </summary>
    private int Limit => _cutoff == int.MaxValue ? int.MaxValue : Math.Max(_cutoff, _high);

    /// <summary>Handles the error of message <paramref name="m"/>, the first of a sendmmsg. False when the socket is full.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool Failed(int fd, int m, int errno, ReadOnlySpan<int> window)
    {
        if (errno is Errno.EAgain or Errno.ENoBufs or Errno.EIntr)
        {
            _counters.TxBusyOnce();
            _cutoff = Math.Min(_cutoff, _msgs[m].First);
            return false;
        }
        if (_msgs[m].Count > 1)
        {
            if (errno == Errno.EIo) Disable();
            if (errno is Errno.EIo or Errno.EInval or Errno.EMsgSize) return SendSingles(fd, m, window);
        }
        for (var j = _msgs[m].First; j >= 0; j = _members[j].Next) Drop(j, window);
        _counters.TxError(errno, _msgs[m].Count);
        return true;
    }

    /// <summary>Sends message <paramref name="m"/>'s datagrams one per message, once each. False when the socket is full.</summary>
    private bool SendSingles(int fd, int m, ReadOnlySpan<int> window)
    {
        var k = 0;
        for (var j = _msgs[m].First; j >= 0; j = _members[j].Next)
        {
            _single.Set(k, (byte*)_members[j].Payload, _members[j].Length);
            ref var to = ref _single.Address<SockAddrIn>(k);
            to.AddressBigEndian = _msgs[m].Address;
            to.PortBigEndian = _msgs[m].Port;
            _singleIndex[k++] = j;
        }
        var i = 0;
        while (i < k)
        {
            var sent = SendMmsg(fd, _single.Messages + i, k - i);
            if (sent > 0)
            {
                for (var x = 0; x < sent; x++) SentOne(_singleIndex[i + x], window);
                _sent += sent;
                i += sent;
                continue;
            }
            var errno = Errno.Last;
            if (errno is Errno.EAgain or Errno.ENoBufs or Errno.EIntr)
            {
                _counters.TxBusyOnce();
                _cutoff = Math.Min(_cutoff, _singleIndex[i]);
                return false;
            }
            // As without GSO: a datagram the kernel refuses (EMSGSIZE over the path MTU, ENETUNREACH) is dropped.
            Drop(_singleIndex[i++], window);
            _counters.TxError(errno);
        }
        return true;
    }

    private void Sent(int m, ReadOnlySpan<int> window)
    {
        for (var j = _msgs[m].First; j >= 0; j = _members[j].Next) SentOne(j, window);
        _sent += _msgs[m].Count;
        if (_msgs[m].Count > 1) _gsoSent++;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SentOne(int j, ReadOnlySpan<int> window)
    {
        _sentBytes += _members[j].Length;
        Drop(j, window);
    }

    private void Drop(int j, ReadOnlySpan<int> window)
    {
        _pool.Free(window[j]);
        _members[j].Done = true;
        if (j >= _high) _high = j + 1;
    }

    private void Disable()
    {
        if (!Enabled) return;
        Enabled = false;
        Note = "udp gso off: sendmmsg with UDP_SEGMENT failed with EIO (udp_send_skb will not segment on this route: an egress " +
            "device without checksum offload before Linux 6.11, or an IPsec route); sending datagram by datagram from now on";
        Log?.Invoke(Note);
    }

    public void Dispose()
    {
        _batch.Dispose();
        _single.Dispose();
    }
}
