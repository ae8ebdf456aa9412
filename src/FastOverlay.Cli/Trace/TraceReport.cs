using FastOverlay.Control;
using FastOverlay.Pipeline;

namespace FastOverlay.Cli.Trace;

/// <summary>One traced packet: the lines of its hops, in the demo's form.</summary>
internal sealed record TracedPacket(int Number, IReadOnlyList<TracedHop> Hops);

internal sealed record TracedHop(string Node, string Text);

/// <summary>
/// Turns a live trace's records into packets. Stages record a whole burst at a time (every receive, then every
/// lookup...), so records are regrouped per packet buffer: a receive starts a packet, and later records on the same
/// buffer belong to it until the buffer is received again. Records of packets the node made itself (ARP requests,
/// echo replies) join the packet whose buffer they are on, or stand alone.
/// </summary>
internal static class TraceReport
{
    public static List<TracedPacket> Packets(LiveTrace trace)
    {
        var state = trace.State;
        var hops = new HopDescriber(_ => state, trace.Tracer);
        var groups = new List<List<TracedHop>>();
        var open = new Dictionary<int, List<TracedHop>>();
        var received = 0;
        foreach (ref readonly var r in trace.Tracer.Records)
        {
            if (r.Event == TraceEvent.Receive)
            {
                if (received++ >= trace.Packets) break;
                open[r.Packet] = [];
                groups.Add(open[r.Packet]);
            }
            if (hops.Describe(r) is not { } text) continue;
            if (!open.TryGetValue(r.Packet, out var group))
            {
                group = open[r.Packet] = [];
                groups.Add(group);
            }
            group.Add(new TracedHop(r.Node, text));
        }
        return [.. groups.Where(g => g.Count > 0).Select((g, i) => new TracedPacket(i + 1, g))];
    }
}
