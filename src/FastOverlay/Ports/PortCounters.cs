namespace FastOverlay.Ports;

/// <summary>
/// What a socket port saw that the pipeline cannot: frames it dropped before they became packets, system call
/// errors, and the kernel's own drops. The forwarder thread is the only writer and adds once per call, not per
/// packet; readers on other threads see whole 64-bit values (the same scheme as NodeCounters).
/// </summary>
public sealed class PortCounters
{
    private long _rxFrames;
    private long _rxBytes;
    private long _rxTooLong;
    private long _rxNoBuffer;
    private long _rxErrors;
    private long _txFrames;
    private long _txBytes;
    private long _txErrors;
    private long _txBusy;
    private long _kernelDrops;
    private long _txGsoMessages;
    private long _rxGroMessages;
    private long _txBusyDropped;
    private int _lastErrno;
    private long _rxSuperFrames;
    private long _rxSegments;
    private long _txSuperFrames;
    private long _txSegmentsMerged;
    private readonly long[] _drops = new long[DropReasons.Count];
    // Failed frames by errno (asm-generic/errno.h ends at 133): one operator cause each (EMSGSIZE: the route's
    // MTU; ENETUNREACH: no route; EPERM: a netfilter rule), which one last-errno value cannot tell apart.
    private const int ErrnoSlots = 134;
    private readonly long[] _errnos = new long[ErrnoSlots];

    public long RxFrames => Volatile.Read(ref _rxFrames);
    public long RxBytes => Volatile.Read(ref _rxBytes);
    /// <summary>Frames longer than a packet buffer holds (a GSO super-frame, jumbo or truncated frame), dropped.</summary>
    public long RxTooLong => Volatile.Read(ref _rxTooLong);
    /// <summary>Receive calls that stopped early because the pool had no free buffer (frames stay queued).</summary>
    public long RxNoBuffer => Volatile.Read(ref _rxNoBuffer);
    public long RxErrors => Volatile.Read(ref _rxErrors);
    public long TxFrames => Volatile.Read(ref _txFrames);
    public long TxBytes => Volatile.Read(ref _txBytes);
    /// <summary>Frames the kernel refused (EMSGSIZE, ENETDOWN, ...), dropped by the port.</summary>
    public long TxErrors => Volatile.Read(ref _txErrors);
    /// <summary>Transmit calls cut short by a full socket buffer (EAGAIN/ENOBUFS); the rest went back unaccepted.</summary>
    public long TxBusy => Volatile.Read(ref _txBusy);
    /// <summary>Frames the kernel dropped because the receive ring or socket buffer was full.</summary>
    public long KernelDrops => Volatile.Read(ref _kernelDrops);
    /// <summary>UDP GSO sends: messages that carried several datagrams under one UDP_SEGMENT cmsg (counted in <see cref="TxFrames"/> per datagram).</summary>
    public long TxGsoMessages => Volatile.Read(ref _txGsoMessages);
    /// <summary>UDP GRO reads: received messages that held several datagrams coalesced by the kernel (counted in <see cref="RxFrames"/> per datagram).</summary>
    public long RxGroMessages => Volatile.Read(ref _rxGroMessages);
    /// <summary>
    /// Frames a port with several transmit sockets dropped itself because one socket was full while another
    /// had already sent frames behind them in the burst (so they could not go back to the caller).
    /// </summary>
    public long TxBusyDropped => Volatile.Read(ref _txBusyDropped);
    /// <summary>errno of the most recent failed call (0 if none), for the operator.</summary>
    public int LastErrno => Volatile.Read(ref _lastErrno);
    /// <summary>GSO super-frames read from the pod (TSO/USO) and cut into segments here.</summary>
    public long RxSuperFrames => Volatile.Read(ref _rxSuperFrames);
    /// <summary>Segments those super-frames became (each one packet in the pipeline and in <see cref="RxFrames"/>).</summary>
    public long RxSegments => Volatile.Read(ref _rxSegments);
    /// <summary>Super-frames written to the pod, each merged from several segments (userspace GRO).</summary>
    public long TxSuperFrames => Volatile.Read(ref _txSuperFrames);
    /// <summary>Segments that went out inside those super-frames.</summary>
    public long TxSegmentsMerged => Volatile.Read(ref _txSegmentsMerged);

    /// <summary>Frames the port dropped before they became packets, by reason (truncated, unsupported offload, ...).</summary>
    public long Drops(DropReason reason) => Volatile.Read(ref _drops[(int)reason]);

    /// <summary>Frames (transmit) or calls (receive) that failed with <paramref name="errno"/>.</summary>
    public long Errors(int errno) => (uint)errno < ErrnoSlots ? Volatile.Read(ref _errnos[errno]) : 0;

    /// <summary>Non-zero per-errno failure counts, for display and metrics.</summary>
    public IEnumerable<(int Errno, long Count)> NonZeroErrors()
    {
        for (var i = 1; i < _errnos.Length; i++)
        {
            var n = Volatile.Read(ref _errnos[i]);
            if (n != 0) yield return (i, n);
        }
    }

    /// <summary>Non-zero port drop counters, for display.</summary>
    public IEnumerable<(DropReason Reason, long Count)> NonZeroDrops()
    {
        for (var i = 1; i < _drops.Length; i++)
        {
            var n = Volatile.Read(ref _drops[i]);
            if (n != 0) yield return ((DropReason)i, n);
        }
    }

    internal void AddDrop(DropReason reason, long count = 1) => Volatile.Write(ref _drops[(int)reason], _drops[(int)reason] + count);

    internal void AddSegmentation(long superFrames, long segments)
    {
        if (superFrames == 0) return;
        Volatile.Write(ref _rxSuperFrames, _rxSuperFrames + superFrames);
        Volatile.Write(ref _rxSegments, _rxSegments + segments);
    }

    internal void AddCoalescing(long superFrames, long segments)
    {
        if (superFrames == 0) return;
        Volatile.Write(ref _txSuperFrames, _txSuperFrames + superFrames);
        Volatile.Write(ref _txSegmentsMerged, _txSegmentsMerged + segments);
    }

    internal void AddReceive(long frames, long bytes, long tooLong)
    {
        if (frames != 0)
        {
            Volatile.Write(ref _rxFrames, _rxFrames + frames);
            Volatile.Write(ref _rxBytes, _rxBytes + bytes);
        }
        if (tooLong != 0) Volatile.Write(ref _rxTooLong, _rxTooLong + tooLong);
    }

    internal void AddTransmit(long frames, long bytes)
    {
        if (frames == 0) return;
        Volatile.Write(ref _txFrames, _txFrames + frames);
        Volatile.Write(ref _txBytes, _txBytes + bytes);
    }

    internal void AddOffloads(long gsoMessages, long groMessages)
    {
        if (gsoMessages != 0) Volatile.Write(ref _txGsoMessages, _txGsoMessages + gsoMessages);
        if (groMessages != 0) Volatile.Write(ref _rxGroMessages, _rxGroMessages + groMessages);
    }

    internal void TxBusyDrop(long frames) => Volatile.Write(ref _txBusyDropped, _txBusyDropped + frames);

    internal void RxNoBufferOnce() => Volatile.Write(ref _rxNoBuffer, _rxNoBuffer + 1);

    internal void RxError(int errno)
    {
        Volatile.Write(ref _rxErrors, _rxErrors + 1);
        Volatile.Write(ref _lastErrno, errno);
        CountErrno(errno, 1);
    }

    internal void TxError(int errno, long frames = 1)
    {
        Volatile.Write(ref _txErrors, _txErrors + frames);
        Volatile.Write(ref _lastErrno, errno);
        CountErrno(errno, frames);
    }

    private void CountErrno(int errno, long count)
    {
        if ((uint)errno < ErrnoSlots && count != 0) Volatile.Write(ref _errnos[errno], _errnos[errno] + count);
    }

    internal void TxBusyOnce() => Volatile.Write(ref _txBusy, _txBusy + 1);

    /// <summary>For a kernel counter that arrives as a running total (SO_RXQ_OVFL), on the forwarder thread.</summary>
    internal void SetKernelDrops(long total)
    {
        if (total > _kernelDrops) Volatile.Write(ref _kernelDrops, total);
    }

    /// <summary>Kernel drop counts are read from another thread (statistics), so this one adds atomically.</summary>
    internal void AddKernelDrops(long drops)
    {
        if (drops != 0) Interlocked.Add(ref _kernelDrops, drops);
    }

    public override string ToString()
    {
        var text = $"rx {RxFrames} tx {TxFrames} rx-too-long {RxTooLong} rx-no-buffer {RxNoBuffer} rx-errors {RxErrors} tx-errors {TxErrors} tx-busy {TxBusy} tx-busy-dropped {TxBusyDropped} kernel-drops {KernelDrops}";
        if (TxGsoMessages != 0 || RxGroMessages != 0) text += $" tx-gso {TxGsoMessages} rx-gro {RxGroMessages}";
        if (RxSuperFrames != 0 || TxSuperFrames != 0)
            text += $" rx-gso {RxSuperFrames}->{RxSegments} tx-gro {TxSegmentsMerged}->{TxSuperFrames}";
        foreach (var (reason, count) in NonZeroDrops()) text += $" {reason} {count}";
        return text;
    }
}
