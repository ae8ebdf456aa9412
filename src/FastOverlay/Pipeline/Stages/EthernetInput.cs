using System.Buffers.Binary;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

/// <summary>
/// First stage for frames from pod ports: L2 parse (one 802.1Q tag skipped), destination MAC check, IPv4 header
/// validation. Sets each packet's next stage to ARP input, IPv4 input or drop.
/// </summary>
internal sealed class EthernetInput(NodeContext ctx)
{
    public void Run(PacketBurst burst)
    {
        var pool = ctx.Pool;
        var gatewayMac = ctx.Node.GatewayMac;
        var tracer = ctx.Tracer;
        var bindings = ctx.Bindings;
        for (var i = 0; i < burst.Count; i++)
        {
            var h = burst.Handles[i];
            var frame = pool.Frame(h);
            tracer?.RecordFrame(ctx.Name, TraceEvent.Receive, h, pool.Meta(h).InPort, frame);
            var reason = Ethernet.Parse(frame, out var etherType, out var l3);
            if (reason != DropReason.None)
            {
                burst.SetDrop(i, reason);
                continue;
            }
            var dst = MacAddress.Read(frame);
            if (etherType == Ethernet.TypeArp)
            {
                // Requests are broadcast; replies to the gateway are unicast to its MAC.
                if (dst != gatewayMac && !dst.IsBroadcast)
                {
                    burst.SetDrop(i, DropReason.WrongDestinationMac);
                    continue;
                }
                burst.Next[i] = NextStage.ArpInput;
                burst.L3Offset[i] = (ushort)l3;
                continue;
            }
            if (etherType != Ethernet.TypeIpv4)
            {
                burst.SetDrop(i, DropReason.UnsupportedEtherType);
                continue;
            }
            if (dst != gatewayMac)
            {
                burst.SetDrop(i, DropReason.WrongDestinationMac);
                continue;
            }
            reason = ClassifyIpv4(pool, h, frame, l3, out var destination);
            if (reason == DropReason.None && !bindings.CheckIpv4(pool.Meta(h).InPort, Ipv4Header.Source(frame[l3..]), Ethernet.Source(frame).Value))
                reason = DropReason.SpoofedSource;
            if (reason != DropReason.None)
            {
                burst.SetDrop(i, reason);
                continue;
            }
            burst.Next[i] = NextStage.Ip4Input;
            burst.L3Offset[i] = Ethernet.HeaderLength;
            burst.Address[i] = destination;
        }
    }

    /// <summary>
    /// Validates the IPv4 header at <paramref name="l3"/> and normalises the frame so that the header sits right
    /// after a 14-byte Ethernet header: padding past the total length is cut and a VLAN tag is skipped (every
    /// later stage rewrites the L2 header whole, so the bytes before the IPv4 header are scratch from here on).
    /// </summary>
    internal static DropReason ClassifyIpv4(PacketPool pool, int handle, ReadOnlySpan<byte> frame, int l3, out uint destination)
    {
        destination = 0;
        var ip = frame[l3..];
        var reason = Ipv4Header.Validate(ip, out _, out var totalLength);
        if (reason != DropReason.None) return reason;
        destination = BinaryPrimitives.ReadUInt32BigEndian(ip[Ipv4Header.OffsetDestination..]);
        var extra = l3 - Ethernet.HeaderLength;
        if (extra > 0) pool.Strip(handle, extra);
        pool.Truncate(handle, Ethernet.HeaderLength + totalLength);
        return DropReason.None;
    }
}
