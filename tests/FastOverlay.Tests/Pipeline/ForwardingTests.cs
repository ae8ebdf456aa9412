using FastOverlay.Pipeline;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Pipeline;

public class ForwardingTests
{
    private static readonly Peer B = NodeHarness.PeerB;

    [Fact]
    public void Gateway_answers_arp_and_learns_the_sender()
    {
        var h = new NodeHarness();
        h.Inject(0, NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(0), NodeHarness.PodIp(0).Value, h.Options.GatewayIp, MacAddress.Broadcast));
        h.Node.Poll();
        var reply = Assert.Single(h.Drain(0));
        Assert.Equal(NodeHarness.PodMac(0), Ethernet.Destination(reply));
        Assert.Equal(NodeHarness.GatewayMac, Ethernet.Source(reply));
        Assert.Equal(DropReason.None, ArpPacket.TryParse(reply.AsSpan(14), out var arp));
        Assert.Equal(ArpPacket.OpReply, arp.Operation);
        Assert.Equal(h.Options.GatewayIp, arp.SenderIp);
        Assert.Equal(NodeHarness.GatewayMac, arp.SenderMac);
        Assert.Equal(NodeHarness.PodIp(0).Value, arp.TargetIp);
        Assert.Equal(ArpState.Reachable, h.Node.Arp.Lookup(NodeHarness.PodIp(0).Value, h.Clock.Now, out var mac, out var port));
        Assert.Equal(NodeHarness.PodMac(0), mac);
        Assert.Equal(1, port);
        Assert.Equal(1, h.Node.Counters[Counter.ArpRequestsAnswered]);
    }

    [Fact]
    public void Intra_node_packet_waits_for_arp_then_is_delivered_with_ttl_and_macs_rewritten()
    {
        var h = new NodeHarness();
        var frame = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, NodeHarness.PodIp(1).Value);
        h.Inject(0, frame);
        h.Node.Poll();
        // The node does not know pod1 yet: the packet is parked and one ARP request goes out on pod1's port only.
        var request = Assert.Single(h.Drain(1));
        Assert.Equal(DropReason.None, ArpPacket.TryParse(request.AsSpan(14), out var arp));
        Assert.Equal(NodeHarness.PodIp(1).Value, arp.TargetIp);
        Assert.Empty(h.Drain(0));
        Assert.Equal(1, h.Node.PendingArp.PendingPackets);

        h.Inject(1, NodeHarness.ArpFrame(ArpPacket.OpReply, NodeHarness.PodMac(1), NodeHarness.PodIp(1).Value, h.Options.GatewayIp, NodeHarness.GatewayMac, NodeHarness.GatewayMac));
        h.Node.Poll();
        var delivered = Assert.Single(h.Drain(1));
        Assert.Equal(NodeHarness.PodMac(1), Ethernet.Destination(delivered));
        Assert.Equal(NodeHarness.GatewayMac, Ethernet.Source(delivered));
        var ip = delivered.AsSpan(14);
        Assert.Equal(63, Ipv4Header.Ttl(ip));
        Assert.True(Ipv4Header.HeaderChecksumValid(ip, 20));
        // Everything but TTL and checksum is unchanged.
        Assert.True(frame.AsSpan(14 + 12).SequenceEqual(delivered.AsSpan(14 + 12)));
        Assert.Equal(0, h.Node.PendingArp.PendingPackets);
        Assert.Equal(1, h.Node.Counters[Counter.DeliveredToPods]);
    }

    [Fact]
    public void Unresolved_neighbour_parks_at_most_unres_qlen_packets_and_counts_the_rest()
    {
        var h = new NodeHarness();
        for (var i = 0; i < 10; i++)
            h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, NodeHarness.PodIp(1).Value));
        h.Node.Poll();
        Assert.Equal(h.Options.ArpPendingPerAddress, h.Node.PendingArp.PendingPackets);
        Assert.Equal(10 - h.Options.ArpPendingPerAddress, h.Node.Counters.Drops(DropReason.ArpQueueFull));
        Assert.Single(h.Drain(1)); // one ARP request, not ten

        // Nobody answers: after the retransmits the parked packets are dropped as unresolved, buffers returned.
        for (var t = 0; t < 5; t++)
        {
            h.Clock.Advance(TimeSpan.FromSeconds(1.1));
            h.Node.Poll();
        }
        Assert.Equal(ArpPendingQueue.MaxProbes, h.Drain(1).Count + 1);
        Assert.Equal(h.Options.ArpPendingPerAddress, h.Node.Counters.Drops(DropReason.ArpUnresolved));
        Assert.Equal(0, h.Node.PendingArp.PendingPackets);
        Assert.Equal(0, h.Pool.InUse);
    }

    [Fact]
    public void Remote_subnet_is_encapsulated_as_flannel_would()
    {
        var h = new NodeHarness();
        var dst = B.Subnet.Address + 7;
        var frame = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, dst, payload: 100);
        h.Inject(0, frame);
        h.Node.Poll();
        var outer = Assert.Single(h.Drain(h.Underlay));
        Assert.Equal(frame.Length + 50, outer.Length);
        Assert.Equal(B.UnderlayMac, Ethernet.Destination(outer));
        Assert.Equal(NodeHarness.UnderlayMac, Ethernet.Source(outer));
        var ip = outer.AsSpan(14);
        Assert.Equal(DropReason.None, Ipv4Header.Validate(ip, out var ihl, out var total));
        Assert.Equal(outer.Length - 14, total);
        Assert.Equal(NodeHarness.PublicIp.Value, Ipv4Header.Source(ip));
        Assert.Equal(B.PublicIp.Value, Ipv4Header.Destination(ip));
        Assert.True(Ipv4Header.DontFragment(ip));
        Assert.Equal(64, Ipv4Header.Ttl(ip));
        var udp = ip[ihl..];
        Assert.Equal(VxlanHeader.LinuxPort, UdpHeader.DestinationPort(udp));
        Assert.InRange(UdpHeader.SourcePort(udp), (ushort)49152, (ushort)65535);
        Assert.Equal(total - 20, UdpHeader.DatagramLength(udp));
        Assert.Equal(0, UdpHeader.Checksum(udp));
        Assert.Equal(0x08, udp[8]);
        Assert.Equal(1u, VxlanHeader.Vni(udp[8..]));
        var inner = outer.AsSpan(50);
        Assert.Equal(B.VtepMac, Ethernet.Destination(inner));
        Assert.Equal(NodeHarness.VtepMac, Ethernet.Source(inner));
        Assert.Equal(63, Ipv4Header.Ttl(inner[14..]));
        Assert.True(Ipv4Header.HeaderChecksumValid(inner[14..], 20));
        Assert.True(frame.AsSpan(14 + 12).SequenceEqual(inner[(14 + 12)..]));
    }

    [Fact]
    public void Udp_checksum_when_configured_is_correct()
    {
        var h = new NodeHarness(options: new NodeOptions
        {
            Name = "node1", PublicIp = NodeHarness.PublicIp, Subnet = NodeHarness.Subnet, VtepMac = NodeHarness.VtepMac,
            GatewayMac = NodeHarness.GatewayMac, UnderlayMac = NodeHarness.UnderlayMac, UdpChecksum = true,
        });
        h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, B.Subnet.Address + 9, payload: 33));
        h.Node.Poll();
        var outer = Assert.Single(h.Drain(h.Underlay));
        var udp = outer.AsSpan(34);
        Assert.NotEqual(0, UdpHeader.Checksum(udp));
        Assert.True(UdpHeader.ChecksumAcceptable(NodeHarness.PublicIp.Value, B.PublicIp.Value, udp));
    }

    [Fact]
    public void Flows_get_different_source_ports_and_one_flow_keeps_its_port()
    {
        var h = new NodeHarness();
        var ports = new HashSet<ushort>();
        for (ushort sport = 1000; sport < 1064; sport++)
        {
            for (var repeat = 0; repeat < 2; repeat++)
                h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, B.Subnet.Address + 9, sport: sport));
            h.Node.Poll();
            var frames = h.Drain(h.Underlay);
            Assert.Equal(2, frames.Count);
            Assert.Equal(UdpHeader.SourcePort(frames[0].AsSpan(34)), UdpHeader.SourcePort(frames[1].AsSpan(34)));
            ports.Add(UdpHeader.SourcePort(frames[0].AsSpan(34)));
        }
        Assert.True(ports.Count > 48, $"only {ports.Count} distinct outer source ports for 64 flows");
    }

    [Fact]
    public void Decap_delivers_to_the_local_pod()
    {
        var h = new NodeHarness();
        h.LearnPods();
        var inner = NodeHarness.UdpFrame(B.VtepMac, NodeHarness.VtepMac, B.Subnet.Address + 5, NodeHarness.PodIp(1).Value, ttl: 63);
        h.InjectUnderlay(NodeHarness.VxlanFrame(B.PublicIp.Value, NodeHarness.PublicIp.Value, 1, inner));
        h.Node.Poll();
        var delivered = Assert.Single(h.Drain(1));
        Assert.Equal(NodeHarness.PodMac(1), Ethernet.Destination(delivered));
        Assert.Equal(62, Ipv4Header.Ttl(delivered.AsSpan(14)));
        Assert.True(inner.AsSpan(26).SequenceEqual(delivered.AsSpan(26)));
        Assert.Equal(1, h.Node.Counters[Counter.Decapsulated]);
    }

    [Theory]
    [InlineData("unknown peer")]
    [InlineData("unknown vni")]
    [InlineData("not our address")]
    [InlineData("wrong port")]
    [InlineData("I flag clear")]
    [InlineData("inner MAC not ours")]
    public void Decap_refuses_what_is_not_for_it(string attack)
    {
        var h = new NodeHarness();
        h.LearnPods();
        var inner = NodeHarness.UdpFrame(B.VtepMac, attack == "inner MAC not ours" ? B.VtepMac : NodeHarness.VtepMac, B.Subnet.Address + 5, NodeHarness.PodIp(1).Value);
        var src = attack == "unknown peer" ? Ipv4Address.Parse("172.31.77.99").Value : B.PublicIp.Value;
        var dst = attack == "not our address" ? Ipv4Address.Parse("172.31.77.50").Value : NodeHarness.PublicIp.Value;
        var frame = NodeHarness.VxlanFrame(src, dst, attack == "unknown vni" ? 2u : 1u, inner,
            dport: attack == "wrong port" ? VxlanHeader.IanaPort : VxlanHeader.LinuxPort,
            flags: attack == "I flag clear" ? (byte)0 : VxlanHeader.FlagI);
        h.InjectUnderlay(frame);
        h.Node.Poll();
        Assert.Empty(h.Drain(1));
        var expected = attack switch
        {
            "unknown peer" => DropReason.UnknownPeer,
            "unknown vni" => DropReason.UnknownVni,
            "I flag clear" => DropReason.VxlanBadFlags,
            "inner MAC not ours" => DropReason.InnerDstMacNotVtep,
            _ => DropReason.NotVxlan,
        };
        Assert.Equal(1, h.Node.Counters.Drops(expected));
        Assert.Equal(1, h.Node.Counters.TotalDrops);
        Assert.Equal(0, h.Pool.InUse);
    }

    [Fact]
    public void Too_big_for_the_underlay_is_dropped_and_answered_with_frag_needed_carrying_the_inner_mtu()
    {
        var h = new NodeHarness();
        h.LearnPods();
        // 1451-byte IP packet: one byte over the 1450 that fits a 1500-byte underlay.
        var frame = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, B.Subnet.Address + 9, payload: 1451 - 28);
        h.Inject(0, frame);
        h.Node.Poll();
        Assert.Empty(h.Drain(h.Underlay));
        Assert.Equal(1, h.Node.Counters.Drops(DropReason.TooBigForUnderlay));
        var icmp = Assert.Single(h.Drain(0));
        var ip = icmp.AsSpan(14);
        Assert.Equal(Ipv4Header.ProtocolIcmp, Ipv4Header.Protocol(ip));
        Assert.Equal(h.Options.GatewayIp, Ipv4Header.Source(ip));
        Assert.Equal(NodeHarness.PodIp(0).Value, Ipv4Header.Destination(ip));
        var message = ip[20..];
        Assert.Equal(Icmpv4.TypeDestinationUnreachable, Icmpv4.Type(message));
        Assert.Equal(Icmpv4.CodeFragmentationNeeded, Icmpv4.Code(message));
        Assert.Equal(1450, Icmpv4.NextHopMtu(message));
        Assert.True(Icmpv4.ChecksumValid(message));
        // The quoted header is the original one (RFC 792): the sender matches it to its socket.
        Assert.True(frame.AsSpan(14, 28).SequenceEqual(message.Slice(8, 28)));

        // Exactly 1450 fits.
        h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, B.Subnet.Address + 9, payload: 1450 - 28));
        h.Node.Poll();
        Assert.Equal(1500 + 14, Assert.Single(h.Drain(h.Underlay)).Length);
    }

    [Fact]
    public void Without_df_too_big_is_dropped_silently()
    {
        var h = new NodeHarness();
        h.LearnPods();
        h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, B.Subnet.Address + 9, payload: 1600, dontFragment: false));
        h.Node.Poll();
        Assert.Empty(h.Drain(h.Underlay));
        Assert.Empty(h.Drain(0));
        Assert.Equal(1, h.Node.Counters.Drops(DropReason.TooBigForUnderlay));
    }

    [Fact]
    public void Ttl_expiry_and_missing_routes_are_counted_and_answered_with_icmp()
    {
        var h = new NodeHarness();
        h.LearnPods();
        h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, B.Subnet.Address + 9, ttl: 1));
        h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, Ipv4Address.Parse("8.8.8.8").Value));
        h.Node.Poll();
        Assert.Equal(1, h.Node.Counters.Drops(DropReason.TtlExpired));
        Assert.Equal(1, h.Node.Counters.Drops(DropReason.NoRoute));
        var errors = h.Drain(0);
        Assert.Equal(2, errors.Count);
        Assert.Contains(errors, f => Icmpv4.Type(f.AsSpan(34)) == Icmpv4.TypeTimeExceeded);
        Assert.Contains(errors, f => Icmpv4.Type(f.AsSpan(34)) == Icmpv4.TypeDestinationUnreachable && Icmpv4.Code(f.AsSpan(34)) == Icmpv4.CodeNetUnreachable);
    }

    [Fact]
    public void Icmp_errors_are_rate_limited()
    {
        var h = new NodeHarness();
        h.LearnPods();
        for (var i = 0; i < 500; i++)
            h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, Ipv4Address.Parse("8.8.8.8").Value));
        while (h.Node.Poll() > 0) { }
        Assert.Equal(500, h.Node.Counters.Drops(DropReason.NoRoute));
        var sent = h.Node.Counters[Counter.IcmpErrorsSent];
        Assert.InRange(sent, 1, h.Options.IcmpErrorsPerSecond / 20);
        Assert.Equal(500 - sent, h.Node.Counters[Counter.IcmpErrorsSuppressed]);
        Assert.Equal(sent, h.Drain(0).Count);
    }

    [Fact]
    public void Gateway_answers_ping()
    {
        var h = new NodeHarness();
        h.LearnPods();
        var frame = new byte[14 + 20 + 8 + 4];
        Ethernet.Write(frame, NodeHarness.GatewayMac, NodeHarness.PodMac(0), Ethernet.TypeIpv4);
        Ipv4Header.Write(frame.AsSpan(14), 32, 1, 0, 64, Ipv4Header.ProtocolIcmp, NodeHarness.PodIp(0).Value, h.Options.GatewayIp);
        Icmpv4.WriteEcho(frame.AsSpan(34), Icmpv4.TypeEchoRequest, 77, 5, [1, 2, 3, 4]);
        h.Inject(0, frame);
        h.Node.Poll();
        var reply = Assert.Single(h.Drain(0));
        var ip = reply.AsSpan(14);
        Assert.True(Ipv4Header.HeaderChecksumValid(ip, 20));
        Assert.Equal(h.Options.GatewayIp, Ipv4Header.Source(ip));
        Assert.Equal(NodeHarness.PodIp(0).Value, Ipv4Header.Destination(ip));
        Assert.Equal(Icmpv4.TypeEchoReply, Icmpv4.Type(ip[20..]));
        Assert.Equal(77, Icmpv4.Identifier(ip[20..]));
        Assert.True(Icmpv4.ChecksumValid(ip[20..]));
    }

    [Fact]
    public void Proxy_arp_answers_for_other_pods_but_not_for_the_askers_own_address()
    {
        var h = new NodeHarness();
        h.Inject(0, NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(0), NodeHarness.PodIp(0).Value, NodeHarness.PodIp(1).Value, MacAddress.Broadcast));
        h.Node.Poll();
        var reply = Assert.Single(h.Drain(0));
        ArpPacket.TryParse(reply.AsSpan(14), out var arp);
        Assert.Equal(NodeHarness.PodIp(1).Value, arp.SenderIp);
        Assert.Equal(NodeHarness.GatewayMac, arp.SenderMac);

        // Duplicate address detection (RFC 5227 probe: sender 0.0.0.0) must not be answered for the asker.
        h.Inject(0, NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(0), 0, NodeHarness.PodIp(0).Value, MacAddress.Broadcast));
        h.Node.Poll();
        Assert.Empty(h.Drain(0));
    }

    [Fact]
    public void Vlan_tagged_frames_are_routed_and_leave_untagged()
    {
        var h = new NodeHarness();
        h.LearnPods();
        var plain = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, NodeHarness.PodIp(1).Value);
        var tagged = new byte[plain.Length + 4];
        plain.AsSpan(0, 12).CopyTo(tagged);
        tagged[12] = 0x81; tagged[13] = 0x00; tagged[14] = 0x00; tagged[15] = 100;
        plain.AsSpan(12).CopyTo(tagged.AsSpan(16));
        h.Inject(0, tagged);
        h.Node.Poll();
        var delivered = Assert.Single(h.Drain(1));
        Assert.Equal(Ethernet.TypeIpv4, (ushort)(delivered[12] << 8 | delivered[13]));
        Assert.True(plain.AsSpan(14 + 12).SequenceEqual(delivered.AsSpan(14 + 12)));
    }

    [Fact]
    public void Removing_a_peer_stops_its_traffic_with_a_counted_reason_and_adding_it_back_restores_it()
    {
        var h = new NodeHarness();
        h.LearnPods();
        var toB = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, B.Subnet.Address + 9);
        var local = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, NodeHarness.PodIp(1).Value);
        h.Inject(0, toB);
        h.Node.Poll();
        Assert.Single(h.Drain(h.Underlay));

        h.Republish([]);
        h.Inject(0, toB);
        h.Inject(0, local);
        h.Node.Poll();
        Assert.Empty(h.Drain(h.Underlay));
        Assert.Single(h.Drain(1));
        Assert.Equal(1, h.Node.Counters.Drops(DropReason.NoRoute));
        // Decap from the removed peer is refused too.
        h.InjectUnderlay(NodeHarness.VxlanFrame(B.PublicIp.Value, NodeHarness.PublicIp.Value, 1, NodeHarness.UdpFrame(B.VtepMac, NodeHarness.VtepMac, B.Subnet.Address + 5, NodeHarness.PodIp(1).Value)));
        h.Node.Poll();
        Assert.Equal(1, h.Node.Counters.Drops(DropReason.UnknownPeer));

        h.Republish([B]);
        h.Inject(0, toB);
        h.Node.Poll();
        Assert.Single(h.Drain(h.Underlay));
    }

    [Fact]
    public void A_changed_peer_vtep_mac_and_public_ip_take_effect_at_once()
    {
        var h = new NodeHarness();
        h.LearnPods();
        var moved = B with { PublicIp = Ipv4Address.Parse("172.31.77.20"), VtepMac = MacAddress.Parse("0e:fd:00:00:02:99") };
        h.Republish([moved]);
        h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, B.Subnet.Address + 9));
        h.Node.Poll();
        var outer = Assert.Single(h.Drain(h.Underlay));
        Assert.Equal(moved.PublicIp.Value, Ipv4Header.Destination(outer.AsSpan(14)));
        Assert.Equal(moved.VtepMac, Ethernet.Destination(outer.AsSpan(50)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(13)]
    [InlineData(20)]
    [InlineData(33)]
    public void Malformed_frames_are_dropped_and_the_next_good_one_still_forwards(int truncateTo)
    {
        var h = new NodeHarness();
        h.LearnPods();
        var good = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, NodeHarness.PodIp(1).Value);
        var bad = good.AsSpan(0, truncateTo).ToArray();
        h.Inject(0, bad);
        h.Inject(0, good);
        h.Node.Poll();
        Assert.Single(h.Drain(1));
        Assert.Equal(1, h.Node.Counters.TotalDrops);
        Assert.Equal(0, h.Pool.InUse);
    }
}
