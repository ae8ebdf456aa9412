using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

/// <summary>
/// The routing decision: packets for the node itself go to the local handler; the rest are looked up in the route
/// table in one batch call for the whole burst, then sent on to neighbour rewrite (local pods), VXLAN encap
/// (remote nodes) or a drop with its ICMP error. TTL is checked here, decremented where the packet is rewritten.
/// </summary>
internal sealed class Ip4Input(NodeContext ctx, IcmpResponder icmp)
{
    private readonly int[] _index = new int[PacketBurst.DefaultCapacity * 4];
    private readonly uint[] _keys = new uint[PacketBurst.DefaultCapacity * 4];
    private readonly uint[] _values = new uint[PacketBurst.DefaultCapacity * 4];

    public void Run(PacketBurst burst)
    {
        var pool = ctx.Pool;
        var node = ctx.Node;
        var n = 0;
        for (var i = 0; i < burst.Count; i++)
        {
            if (burst.Next[i] != NextStage.Ip4Input) continue;
            var h = burst.Handles[i];
            var ip = pool.Frame(h)[Ethernet.HeaderLength..];
            var source = Ipv4Header.Source(ip);
            if (Ipv4Header.IsMartianSource(source))
            {
                burst.SetDrop(i, DropReason.Ipv4BadSource);
                continue;
            }
            _index[n] = i;
            _keys[n++] = burst.Address[i];
        }
        if (n == 0) return;

        var routes = ctx.State.Routes;
        routes.Lookup(_keys.AsSpan(0, n), _values.AsSpan(0, n));

        var tracer = ctx.Tracer;
        for (var k = 0; k < n; k++)
        {
            var i = _index[k];
            var h = burst.Handles[i];
            var value = _values[k];
            tracer?.Record(ctx.Name, TraceEvent.RouteLookup, h, -1, _keys[k], value);
            if (value == RouteTable.NoRoute)
            {
                icmp.SendError(h, Icmpv4.TypeDestinationUnreachable, Icmpv4.CodeNetUnreachable, 0);
                burst.SetDrop(i, DropReason.NoRoute);
                continue;
            }
            var kind = RouteTarget.Kind(value);
            if (kind == RouteKind.Local)
            {
                icmp.DeliverLocal(burst, i);
                continue;
            }
            var ip = pool.Frame(h)[Ethernet.HeaderLength..];
            // A packet this node built starts with a fresh TTL and is not forwarded, so it is not decremented.
            if (Ipv4Header.Ttl(ip) <= 1 && (pool.Meta(h).Flags & PacketFlags.Generated) == 0)
            {
                icmp.SendError(h, Icmpv4.TypeTimeExceeded, 0, 0);
                burst.SetDrop(i, DropReason.TtlExpired);
                continue;
            }
            switch (kind)
            {
                case RouteKind.LocalPod:
                    burst.Next[i] = NextStage.Ip4Rewrite;
                    burst.OutPort[i] = (ushort)RouteTarget.Index(value);
                    break;
                case RouteKind.LocalSubnet:
                    burst.Next[i] = NextStage.Ip4Rewrite;
                    burst.OutPort[i] = ushort.MaxValue;
                    break;
                case RouteKind.Peer:
                    burst.Next[i] = NextStage.VxlanEncap;
                    burst.Value[i] = (uint)RouteTarget.Index(value);
                    break;
                // Not back out of the port it came in by (a loop through the node's stack), except our own ICMP errors.
                case RouteKind.Host when ctx.State.HostPort >= 0 && (pool.Meta(h).InPort != ctx.State.HostPort || (pool.Meta(h).Flags & PacketFlags.Generated) != 0):
                    // Resolved like a pod, at the node's overlay address (the kernel answers ARP for it there).
                    burst.Next[i] = NextStage.Ip4Rewrite;
                    burst.OutPort[i] = (ushort)ctx.State.HostPort;
                    burst.Address[i] = ctx.State.HostAddress;
                    break;
                default:
                    icmp.SendError(h, Icmpv4.TypeDestinationUnreachable, Icmpv4.CodeHostUnreachable, 0);
                    burst.SetDrop(i, DropReason.NoRoute);
                    break;
            }
        }
    }
}
