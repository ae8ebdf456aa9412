using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

/// <summary>
/// Delivery to a pod of this node: resolve the destination's MAC and port in the ARP cache, decrement TTL, write
/// the Ethernet header (gateway MAC → pod MAC). On a miss the packet is parked and one ARP request goes out
/// (rate-limited per address), as the kernel's neighbour code does.
/// </summary>
internal sealed class Ip4Rewrite(NodeContext ctx)
{
    public void Run(PacketBurst burst)
    {
        var pool = ctx.Pool;
        var header = new EthernetHeaderWriter(ctx.Node.GatewayMac, Ethernet.TypeIpv4);
        var now = ctx.Now;
        var tracer = ctx.Tracer;
        for (var i = 0; i < burst.Count; i++)
        {
            if (burst.Next[i] != NextStage.Ip4Rewrite) continue;
            var h = burst.Handles[i];
            var nextHop = burst.Address[i];
            if (ctx.Arp.Lookup(nextHop, now, out var mac, out var port) == ArpState.Miss)
            {
                Park(burst, i, h, nextHop);
                continue;
            }
            var frame = pool.Frame(h);
            ref var meta = ref pool.Meta(h);
            if ((meta.Flags & PacketFlags.Generated) == 0)
            {
                Ipv4Header.DecrementTtl(frame[Ethernet.HeaderLength..]);
                tracer?.Record(ctx.Name, TraceEvent.TtlDecremented, h, port, frame[Ethernet.HeaderLength + Ipv4Header.OffsetTtl]);
            }
            header.Write(frame, mac);
            burst.Next[i] = NextStage.Transmit;
            burst.OutPort[i] = (ushort)port;
            ctx.Tally.Add(Counter.DeliveredToPods);
            tracer?.Record(ctx.Name, TraceEvent.NeighborResolved, h, port, nextHop, mac: mac.Value);
        }
    }

    private void Park(PacketBurst burst, int i, int h, uint nextHop)
    {
        var probePort = burst.OutPort[i] == ushort.MaxValue ? -1 : burst.OutPort[i];
        var result = ctx.Pending.Park(nextHop, h, probePort, ctx.Now, out var probe, out var displaced);
        if (result == ArpPendingQueue.ParkResult.Refused)
        {
            burst.SetDrop(i, DropReason.ArpQueueFull);
            return;
        }
        burst.Next[i] = NextStage.Consumed;
        ctx.Tally.Add(Counter.ArpParked);
        ctx.Tracer?.Record(ctx.Name, TraceEvent.ArpParked, h, probePort, nextHop);
        if (displaced >= 0) ctx.Drop(displaced, DropReason.ArpQueueFull);
        if (probe) ctx.SendArpRequest(nextHop, probePort);
    }
}
