using System.Buffers.Binary;
using FastOverlay.Tables;

namespace FastOverlay.Fuzz;

/// <summary>What any frame leaving the node must look like, whatever came in.</summary>
internal static class OutputChecks
{
    private static readonly ulong s_gatewayMac = FuzzNode.Options.GatewayMac.Value;
    private static readonly uint s_gatewayIp = FuzzNode.Options.GatewayIp;

    public static void All(FuzzNode node, List<Emitted> emitted)
    {
        foreach (var e in emitted)
        {
            if (e.Port == 0) Underlay(e.Frame);
            else Pod(node, e.Port, e.Frame);
        }
    }

    /// <summary>
    /// Only VXLAN from this node to a configured peer goes out on the underlay: right addresses, port, VNI and
    /// flags, lengths and checksums consistent, the inner frame from our VTEP MAC to that peer's, carrying a
    /// valid datagram for that peer's subnet, and never more than the underlay MTU.
    /// </summary>
    public static void Underlay(byte[] frame)
    {
        if (frame.Length < 50) throw new InvariantViolation($"underlay frame of {frame.Length} bytes");
        var outerDst = BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(30));
        var peer = Array.FindIndex(FuzzNode.Peers, p => p.PublicIp.Value == outerDst);
        if (peer < 0) throw new InvariantViolation($"underlay frame to {outerDst:x8}, not a peer");
        var inner = Oracle.VxlanInner(frame, outerDst, FuzzNode.Options.VxlanPort, FuzzNode.Options.Vni, out var source);
        if (inner.IsEmpty || source != FuzzNode.Options.PublicIp.Value) throw new InvariantViolation("underlay frame is not valid VXLAN from this node");
        var outerIp = frame.AsSpan(14);
        if (BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)) != Oracle.TypeIpv4 || outerIp[0] != 0x45) throw new InvariantViolation("outer header not plain Ethernet/IPv4");
        if (BinaryPrimitives.ReadUInt16BigEndian(outerIp[2..]) != frame.Length - 14) throw new InvariantViolation("outer total length does not match the frame");
        if (BinaryPrimitives.ReadUInt16BigEndian(outerIp[24..]) != frame.Length - 34) throw new InvariantViolation("outer UDP length does not match the frame");
        if (frame.Length - 14 > FuzzNode.Options.UnderlayMtu) throw new InvariantViolation($"underlay packet of {frame.Length - 14} bytes exceeds the MTU");
        if ((outerIp[6] & 0x40) == 0) throw new InvariantViolation("outer DF not set (RFC 7348 s4.3)");
        var sport = BinaryPrimitives.ReadUInt16BigEndian(outerIp[20..]);
        if (sport < FuzzNode.Options.SourcePortMin) throw new InvariantViolation($"outer source port {sport} outside the configured range");
        if (Oracle.Mac(inner) != FuzzNode.Peers[peer].VtepMac.Value || Oracle.Mac(inner[6..]) != FuzzNode.Options.VtepMac.Value)
            throw new InvariantViolation("inner MACs are not local VTEP -> peer VTEP");
        if (BinaryPrimitives.ReadUInt16BigEndian(inner[12..]) != Oracle.TypeIpv4) throw new InvariantViolation("inner frame is not untagged IPv4");
        var ip = Oracle.Ipv4(inner[14..]);
        if (ip.IsEmpty || ip.Length != inner.Length - 14) throw new InvariantViolation("inner datagram invalid or with trailing bytes");
        if (ip[8] == 0) throw new InvariantViolation("inner TTL 0 sent on");
        if (!FuzzNode.Peers[peer].Subnet.Contains(Oracle.Dst(ip))) throw new InvariantViolation("inner destination outside the peer's subnet");
    }

    /// <summary>
    /// To a pod the node sends only from the gateway MAC: ARP requests and replies it built, or IPv4 datagrams
    /// for that pod's own address, to the MAC the ARP cache holds for it.
    /// </summary>
    public static void Pod(FuzzNode node, int port, byte[] frame)
    {
        if (Oracle.Mac(frame.AsSpan(6)) != s_gatewayMac) throw new InvariantViolation($"frame to pod port {port} not from the gateway MAC");
        var type = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12));
        if (type == Oracle.TypeArp)
        {
            var arp = frame.AsSpan(14);
            if (!Oracle.IsArp(arp) || Oracle.ArpSenderMac(arp) != s_gatewayMac) throw new InvariantViolation("malformed ARP sent to a pod");
            if (Oracle.ArpOp(arp) == 1)
            {
                if (Oracle.ArpSenderIp(arp) != s_gatewayIp || Oracle.Mac(frame) != 0xFFFF_FFFF_FFFFUL || !FuzzNode.Options.Subnet.Contains(Oracle.ArpTargetIp(arp)))
                    throw new InvariantViolation("ARP request not from the gateway for a subnet address");
            }
            else if (!FuzzNode.Options.Subnet.Contains(Oracle.ArpSenderIp(arp)))
            {
                throw new InvariantViolation("ARP reply claims an address outside the node's subnet");
            }
            return;
        }
        if (type != Oracle.TypeIpv4) throw new InvariantViolation($"EtherType {type:x4} sent to a pod");
        var ip = Oracle.Ipv4(frame.AsSpan(14));
        if (ip.IsEmpty || ip.Length != frame.Length - 14) throw new InvariantViolation("invalid datagram (or trailing bytes) sent to a pod");
        if (ip[8] == 0) throw new InvariantViolation("datagram with TTL 0 sent to a pod");
        if (Oracle.Dst(ip) != FuzzNode.PodIp(port - 1)) throw new InvariantViolation($"datagram for {Oracle.Dst(ip):x8} sent to pod port {port}");
        if (node.Node.Arp.Lookup(Oracle.Dst(ip), node.Clock.Now, out var mac, out var arpPort) == ArpState.Miss || arpPort != port || mac.Value != Oracle.Mac(frame))
            throw new InvariantViolation("datagram sent to a MAC or port the ARP cache does not hold for its destination");
    }

    /// <summary>A datagram that left with the input's addresses and ID is the input forwarded: same bytes but TTL.</summary>
    public static void ForwardedUnchanged(List<Emitted> emitted, ReadOnlySpan<byte> inputIp)
    {
        var sent = Oracle.Ipv4(inputIp);
        if (sent.IsEmpty) return;
        foreach (var e in emitted)
        {
            ReadOnlySpan<byte> frame = e.Frame;
            if (e.Port == 0) frame = frame[50..];
            if (BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) != Oracle.TypeIpv4) continue;
            var ip = frame[14..];
            if (Oracle.Src(ip) == Oracle.Src(sent) && Oracle.Dst(ip) == Oracle.Dst(sent) && ip[9] == sent[9] && ip[4] == sent[4] && ip[5] == sent[5])
                Canary.ExpectSameDatagram(ip, sent, "forwarded input");
        }
    }
}
