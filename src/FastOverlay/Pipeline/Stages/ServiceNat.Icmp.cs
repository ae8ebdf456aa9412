using System.Buffers.Binary;
using FastOverlay.Tables.Services;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

internal sealed partial class ServiceNat
{
    /// <summary>
    /// ICMP errors about a tracked flow (destination unreachable, fragmentation needed included, time exceeded,
    /// parameter problem) are translated like the packet they quote would have been in the other direction, outer
    /// and quoted headers both (netfilter's RELATED, nf_nat_icmp_reply_translation): otherwise the client would
    /// receive an error about a backend address it never used, and PMTU discovery through a Service would break.
    /// ICMP to a service address that is not such an error (an echo, say) is dropped: a virtual address answers nothing.
    /// </summary>
    private void TranslateIcmp(PacketBurst burst, int i, Span<byte> ip, ServiceTable services, ConntrackSet conntrack)
    {
        var outerDestination = burst.Address[i];
        var headerLength = Ipv4Header.HeaderLength(ip);
        var icmp = ip[headerLength..];
        if (!Ipv4Header.HasL4Header(ip) || icmp.Length < Icmpv4.HeaderLength + Ipv4Header.MinLength + 8
            || Icmpv4.Type(icmp) is not (Icmpv4.TypeDestinationUnreachable or Icmpv4.TypeTimeExceeded or 12))
        {
            if (services.IsServiceAddress(outerDestination)) burst.SetDrop(i, DropReason.ServiceNotTranslatable);
            return;
        }
        var quoted = icmp[Icmpv4.HeaderLength..];
        var quotedHeaderLength = Ipv4Header.HeaderLength(quoted);
        var protocol = Ipv4Header.Protocol(quoted);
        if (quotedHeaderLength < Ipv4Header.MinLength || quoted.Length < quotedHeaderLength + 8
            || protocol is not (Ipv4Header.ProtocolTcp or Ipv4Header.ProtocolUdp))
            return;
        var ports = quoted[quotedHeaderLength..];
        var quotedSource = Ipv4Header.Source(quoted);
        var quotedDestination = Ipv4Header.Destination(quoted);
        var quotedSourcePort = BinaryPrimitives.ReadUInt16BigEndian(ports);
        var quotedDestinationPort = BinaryPrimitives.ReadUInt16BigEndian(ports[2..]);
        // The quoted packet went the other way: its reverse is the tuple a packet of that flow arrives with.
        var key = new FlowKey(quotedDestination, quotedSource, quotedDestinationPort, quotedSourcePort, protocol);
        if (!conntrack.Tables[ctx.Worker].TryFind(key, ctx.Now, out _, out var isReply, out var flow) && !TryFindElsewhere(conntrack, key, out _, out _, out isReply, out flow))
        {
            if (services.IsServiceAddress(outerDestination)) burst.SetDrop(i, DropReason.ServiceNotTranslatable);
            return;
        }

        // The quoted packet as it was before translation, and where the error must go.
        FlowKey before;
        uint errorSource, errorDestination;
        var outerSource = Ipv4Header.Source(ip);
        if (isReply)
        {
            // About a packet we sent toward the backend (src' -> backend): the client sent client -> service.
            before = flow.Original;
            errorDestination = flow.Original.Source;
            errorSource = outerSource == flow.Reply.Source ? flow.Original.Destination : outerSource;
        }
        else
        {
            // About a reply we sent to the client (service -> client): the backend sent backend -> src'.
            before = flow.Reply;
            errorDestination = flow.Reply.Source;
            errorSource = outerSource == flow.Original.Source && (flow.Flags & ConntrackFlags.Snat) != 0 ? flow.Reply.Destination : outerSource;
        }
        RewriteQuoted(quoted, quotedHeaderLength, protocol, before);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], InternetChecksum.Compute(icmp));
        if (errorSource != outerSource) NatRewrite.QuotedAddress(ip, Ipv4Header.OffsetSource, errorSource);
        if (errorDestination != outerDestination) NatRewrite.QuotedAddress(ip, Ipv4Header.OffsetDestination, errorDestination);
        burst.Address[i] = errorDestination;
        ctx.Tally.Add(Counter.ServiceIcmpTranslated);
        if (isReply && (flow.Flags & ConntrackFlags.External) != 0) SendExternal(burst, i, ip);
    }

    /// <summary>Puts the quoted header back to <paramref name="before"/>: addresses (with the quoted IPv4 checksum), ports, and a UDP checksum when quoted.</summary>
    private static void RewriteQuoted(Span<byte> quoted, int headerLength, byte protocol, in FlowKey before)
    {
        var l4 = quoted[headerLength..];
        var oldSource = Ipv4Header.Source(quoted);
        var oldDestination = Ipv4Header.Destination(quoted);
        var oldSourcePort = BinaryPrimitives.ReadUInt16BigEndian(l4);
        var oldDestinationPort = BinaryPrimitives.ReadUInt16BigEndian(l4[2..]);
        NatRewrite.QuotedAddress(quoted, Ipv4Header.OffsetSource, before.Source);
        NatRewrite.QuotedAddress(quoted, Ipv4Header.OffsetDestination, before.Destination);
        BinaryPrimitives.WriteUInt16BigEndian(l4, before.SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(l4[2..], before.DestinationPort);
        // Only 8 bytes of the transport header are quoted (RFC 792): a TCP checksum is past them; a UDP one is in them.
        if (protocol != Ipv4Header.ProtocolUdp) return;
        var checksum = BinaryPrimitives.ReadUInt16BigEndian(l4[6..]);
        if (checksum == 0) return;
        checksum = InternetChecksum.Update(checksum, oldSource, before.Source);
        checksum = InternetChecksum.Update(checksum, oldDestination, before.Destination);
        checksum = InternetChecksum.Update(checksum, oldSourcePort, before.SourcePort);
        checksum = InternetChecksum.Update(checksum, oldDestinationPort, before.DestinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(l4[6..], checksum);
    }
}
