using FastOverlay.Offload;
using FastOverlay.Tables.Services;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

internal sealed partial class ServiceNat
{
    /// <summary>
    /// A packet of a tracked flow: client to backend (the destination becomes the backend, the source the SNAT
    /// address when the flow has one) or, for a reply, backend to client (the source becomes the service address
    /// again, the destination the client when SNATed). The packet starts a run that its flow's next packets in this
    /// burst join without a lookup.
    /// </summary>
    private void Translate(PacketBurst burst, int i, Span<byte> ip, int headerLength, in FlowKey key, in ConntrackFlow flow, bool reply)
    {
        if (ctx.Tracer is { } tracer)
        {
            if (reply) tracer.Record(ctx.Name, TraceEvent.ServiceReverseNat, burst.Handles[i], -1, flow.Reply.Source, flow.Original.Destination, ((uint)flow.Reply.SourcePort << 16) | flow.Original.DestinationPort);
            else tracer.Record(ctx.Name, TraceEvent.ServiceDnat, burst.Handles[i], -1, flow.Original.Destination, flow.Reply.Source, ((uint)flow.Original.DestinationPort << 16) | flow.Reply.SourcePort);
        }
        // A first fragment: its datagram's later fragments will be matched to this flow by its ports.
        if (Ipv4Header.IsFragment(ip)) _fragments.Record(key.Source, key.Destination, Ipv4Header.Identification(ip), key.Protocol, key.SourcePort, key.DestinationPort, ctx.Now);
        StartRun(in key, in flow, reply, RunMatch.Of(ip, headerLength));
        TranslateInRun(burst, i, burst.Handles[i], ip, headerLength);
    }

    /// <summary>
    /// A reply to a client outside the cluster leaves through the external port (a raw IP socket: the kernel routes
    /// it and resolves the next hop), not through the route table, which knows only pods and peers. It is forwarded,
    /// so TTL drops by one; a partial checksum is finished here because no NIC will.
    /// </summary>
    private void SendExternal(PacketBurst burst, int i, Span<byte> ip)
    {
        var h = burst.Handles[i];
        var port = ctx.State.ExternalPort;
        if (port < 0)
        {
            burst.SetDrop(i, DropReason.PortRemoved);
            return;
        }
        if (Ipv4Header.Ttl(ip) <= 1)
        {
            burst.SetDrop(i, DropReason.TtlExpired);
            return;
        }
        Ipv4Header.DecrementTtl(ip);
        ref var meta = ref ctx.Pool.Meta(h);
        if ((meta.Flags & PacketFlags.ChecksumPartial) != 0)
        {
            L4Checksum.Complete(ctx.Pool.Frame(h));
            meta.Flags &= ~PacketFlags.ChecksumPartial;
            ctx.Tally.Add(Counter.ChecksumsCompleted);
        }
        burst.Next[i] = NextStage.Transmit;
        burst.OutPort[i] = (ushort)port;
    }
}
