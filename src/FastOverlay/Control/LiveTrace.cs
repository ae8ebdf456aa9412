using System.Diagnostics;
using FastOverlay.Pipeline;

namespace FastOverlay.Control;

/// <summary>
/// One `fastoverlay trace` request against a running node. <see cref="Service"/> runs on the forwarder thread
/// after each poll: it attaches a tracer, counts the packets received while attached, and detaches it once enough
/// have gone through (or the time is up). Because both ends happen on that thread, the tracer (not thread-safe)
/// is never read while it is written, and the data path pays for tracing only while a request is open.
/// </summary>
public sealed class LiveTrace
{
    private readonly TaskCompletionSource<LiveTrace> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly long _deadline;
    private bool _attached;

    internal LiveTrace(int packets, TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(packets, 1);
        Packets = packets;
        // Each packet takes several records (rx, lookup, rewrite, tx...); 32 per packet leaves room for ARP.
        Tracer = new PacketTracer(Math.Clamp(packets * 32, 256, 1 << 16), Math.Clamp(packets * 4096, 64 << 10, 16 << 20));
        _deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
    }

    public int Packets { get; }
    public PacketTracer Tracer { get; }
    /// <summary>The state the records' port and peer indices refer to (the one current when tracing stopped).</summary>
    public ForwardingState? State { get; private set; }
    public bool TimedOut { get; private set; }
    internal Task<LiveTrace> Completion => _done.Task;
    /// <summary>Past its deadline by more than the forwarder's longest sleep could explain: nobody is servicing it.</summary>
    internal bool Stale => Stopwatch.GetTimestamp() - _deadline > 5 * Stopwatch.Frequency;

    /// <summary>Forwarder thread only. Returns true when the trace is finished and detached.</summary>
    internal bool Service(NodeForwarder forwarder)
    {
        if (!_attached)
        {
            forwarder.Tracer = Tracer;
            _attached = true;
            return false;
        }
        var received = 0;
        foreach (ref readonly var r in Tracer.Records)
        {
            if (r.Event == TraceEvent.Receive) received++;
        }
        var late = Stopwatch.GetTimestamp() >= _deadline;
        if (received < Packets && !late && !Tracer.Overflowed) return false;
        forwarder.Tracer = null;
        State = forwarder.State;
        TimedOut = received < Packets;
        _done.TrySetResult(this);
        return true;
    }

    internal void Abandon() => _done.TrySetException(new InvalidOperationException("the forwarder stopped before the trace finished"));
}
