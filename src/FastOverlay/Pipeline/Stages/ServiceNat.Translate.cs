using FastOverlay.Offload;
using FastOverlay.Tables.Services;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

internal sealed partial class ServiceNat
{
    /// <summary>Client to backend: the destination becomes the backend, the source the SNAT address when the flow has one.</summary>
    private void TranslateForward(PacketBurst burst, int i, Span<byte> ip, in ConntrackFlow flow, ServiceTable services)
    {
        var h = burst.Handles[i];
        var partial = (ctx.Pool.Meta(h).Flags & PacketFlags.ChecksumPartial) != 0;
        ctx.Tracer?.Record(ctx.Name, TraceEvent.ServiceDnat, h, -1, flow.Original.Destination, flow.Reply.Source, ((uint)flow.Original.DestinationPort << 16) | flow.Reply.SourcePort);
        NatRewrite.Destination(ip, flow.Reply.Source, flow.Reply.SourcePort, partial);
        if ((flow.Flags & ConntrackFlags.Snat) != 0) NatRewrite.Source(ip, flow.Reply.Destination, flow.Reply.DestinationPort, partial);
        burst.Address[i] = flow.Reply.Source;
        ctx.Tally.Add(Counter.ServiceTranslated);
        if (services.FindById(flow.ServicePortId) is { } port)
        {
            port.Counters.Add(ctx.Worker, ServiceCounter.Packets);
            port.Counters.Add(ctx.Worker, ServiceCounter.Bytes, Ipv4Header.TotalLength(ip));
        }
    }

    /// <summary>Backend to client: the source becomes the service address again, the destination the client when SNATed.</summary>
    private void TranslateReply(PacketBurst burst, int i, Span<byte> ip, in ConntrackFlow flow, ServiceTable services)
    {
        var h = burst.Handles[i];
        var partial = (ctx.Pool.Meta(h).Flags & PacketFlags.ChecksumPartial) != 0;
        ctx.Tracer?.Record(ctx.Name, TraceEvent.ServiceReverseNat, h, -1, flow.Reply.Source, flow.Original.Destination, ((uint)flow.Reply.SourcePort << 16) | flow.Original.DestinationPort);
        NatRewrite.Source(ip, flow.Original.Destination, flow.Original.DestinationPort, partial);
        if ((flow.Flags & ConntrackFlags.Snat) != 0) NatRewrite.Destination(ip, flow.Original.Source, flow.Original.SourcePort, partial);
        burst.Address[i] = flow.Original.Source;
        ctx.Tally.Add(Counter.ServiceReplies);
        if (services.FindById(flow.ServicePortId) is { } port)
        {
            port.Counters.Add(ctx.Worker, ServiceCounter.ReplyPackets);
            port.Counters.Add(ctx.Worker, ServiceCounter.ReplyBytes, Ipv4Header.TotalLength(ip));
        }
        if ((flow.Flags & ConntrackFlags.External) != 0) SendExternal(burst, i, ip);
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
