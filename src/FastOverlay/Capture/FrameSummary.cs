using System.Globalization;
using FastOverlay.Wire;

namespace FastOverlay.Capture;

/// <summary>A one-line, tcpdump-style description of a frame, for traces and the demo. Not for the data path.</summary>
public static class FrameSummary
{
    public static string Describe(ReadOnlySpan<byte> frame, ushort vxlanPort = VxlanHeader.LinuxPort)
    {
        if (Ethernet.Parse(frame, out var type, out var l3) != DropReason.None) return $"runt frame, {frame.Length} bytes";
        var l2 = $"{Ethernet.Source(frame)} > {Ethernet.Destination(frame)}";
        if (type == Ethernet.TypeArp)
        {
            if (ArpPacket.TryParse(frame[l3..], out var arp) != DropReason.None) return $"{l2}, malformed ARP";
            return arp.Operation == ArpPacket.OpRequest
                ? $"{l2}, ARP who-has {Ip(arp.TargetIp)} tell {Ip(arp.SenderIp)}"
                : $"{l2}, ARP reply {Ip(arp.SenderIp)} is-at {arp.SenderMac}";
        }
        if (type != Ethernet.TypeIpv4) return $"{l2}, ethertype 0x{type:x4}";
        var ip = frame[l3..];
        if (Ipv4Header.Validate(ip, out var ihl, out var total) != DropReason.None) return $"{l2}, malformed IPv4";
        ip = ip[..total];
        var head = $"{Ip(Ipv4Header.Source(ip))} > {Ip(Ipv4Header.Destination(ip))}";
        var ttl = Ipv4Header.Ttl(ip).ToString(CultureInfo.InvariantCulture);
        var payload = ip[ihl..];
        switch (Ipv4Header.Protocol(ip))
        {
            case Ipv4Header.ProtocolUdp when UdpHeader.Validate(payload) == DropReason.None:
                var sport = UdpHeader.SourcePort(payload);
                var dport = UdpHeader.DestinationPort(payload);
                if (dport == vxlanPort && payload.Length >= UdpHeader.Length + VxlanHeader.Length + Ethernet.HeaderLength)
                {
                    var vx = payload[UdpHeader.Length..];
                    var inner = Describe(vx[VxlanHeader.Length..], vxlanPort);
                    return $"{head} ttl {ttl}, UDP {sport} > {dport}, VXLAN vni {VxlanHeader.Vni(vx)}: [{inner}]";
                }
                return $"{l2}, {head} ttl {ttl}, UDP {sport} > {dport}, length {UdpHeader.DatagramLength(payload) - UdpHeader.Length}";
            case Ipv4Header.ProtocolIcmp when payload.Length >= Icmpv4.HeaderLength:
                var icmpType = Icmpv4.Type(payload);
                var what = icmpType switch
                {
                    Icmpv4.TypeEchoRequest => $"echo request id {Icmpv4.Identifier(payload)} seq {Icmpv4.Sequence(payload)}",
                    Icmpv4.TypeEchoReply => $"echo reply id {Icmpv4.Identifier(payload)} seq {Icmpv4.Sequence(payload)}",
                    Icmpv4.TypeDestinationUnreachable when Icmpv4.Code(payload) == Icmpv4.CodeFragmentationNeeded => $"need to frag (mtu {Icmpv4.NextHopMtu(payload)})",
                    Icmpv4.TypeDestinationUnreachable => $"unreachable code {Icmpv4.Code(payload)}",
                    Icmpv4.TypeTimeExceeded => "time exceeded in transit",
                    _ => $"type {icmpType}",
                };
                return $"{l2}, {head} ttl {ttl}, ICMP {what}";
            default:
                return $"{l2}, {head} ttl {ttl}, proto {Ipv4Header.Protocol(ip)}";
        }
    }

    private static string Ip(uint address) => Ipv4Address.Format(address);
}
