using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

/// <summary>
/// First stage for frames from the external port: copies of underlay packets to a NodePort or an external
/// address, taken before the node's IP layer (which the external guard keeps from answering them). They are
/// validated like pod frames, except that they are not addressed to the gateway MAC (they are the node's), and
/// marked so that the service stage only lets them through as flows of an external Service.
/// </summary>
internal sealed class ExternalInput(NodeContext ctx)
{
    public void Run(PacketBurst burst)
    {
        var pool = ctx.Pool;
        for (var i = 0; i < burst.Count; i++)
        {
            var h = burst.Handles[i];
            var frame = pool.Frame(h);
            ctx.Tracer?.RecordFrame(ctx.Name, TraceEvent.Receive, h, pool.Meta(h).InPort, frame);
            var reason = Ethernet.Parse(frame, out var etherType, out var l3);
            if (reason == DropReason.None && etherType != Ethernet.TypeIpv4) reason = DropReason.UnsupportedEtherType;
            uint destination = 0;
            if (reason == DropReason.None) reason = EthernetInput.ClassifyIpv4(pool, h, frame, l3, out destination);
            if (reason == DropReason.None && Ipv4Header.IsMartianSource(Ipv4Header.Source(pool.Frame(h)[Ethernet.HeaderLength..])))
                reason = DropReason.Ipv4BadSource;
            if (reason != DropReason.None)
            {
                burst.SetDrop(i, reason);
                continue;
            }
            pool.Meta(h).Flags |= PacketFlags.External;
            burst.Next[i] = NextStage.Ip4Input;
            burst.L3Offset[i] = Ethernet.HeaderLength;
            burst.Address[i] = destination;
        }
    }
}
