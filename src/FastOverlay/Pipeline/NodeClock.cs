using System.Diagnostics;

namespace FastOverlay.Pipeline;

/// <summary>Time in <see cref="Stopwatch"/> ticks, read once per poll. Tests substitute a manual clock.</summary>
public class NodeClock
{
    public static readonly NodeClock System = new();

    public virtual long Now => Stopwatch.GetTimestamp();
}

public sealed class ManualClock : NodeClock
{
    private long _now = 1;

    public override long Now => Volatile.Read(ref _now);

    public void Advance(TimeSpan span) => Interlocked.Add(ref _now, NodeOptions.Ticks(span));
}
