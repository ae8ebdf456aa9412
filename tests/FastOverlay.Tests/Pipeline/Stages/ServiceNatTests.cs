using System.Buffers.Binary;
using FastOverlay.Config;
using FastOverlay.Pipeline;
using FastOverlay.Tables.Services;
using FastOverlay.Wire;
using static FastOverlay.Tests.Pipeline.Stages.ServiceHarness;

namespace FastOverlay.Tests.Pipeline.Stages;

public class ServiceNatTests
{
    private static int Backend(List<byte[]>[] received, out byte[] frame)
    {
        for (var p = 1; p < received.Length; p++)
        {
            if (received[p].Count == 1)
            {
                frame = received[p][0];
                return p;
            }
        }
        frame = [];
        return -1;
    }

    [Fact]
    public void Udp_to_a_cluster_ip_is_dnated_to_an_endpoint_and_the_reply_comes_back_from_the_service_address()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1), Pod(2)));

        var out1 = s.Send(0, s.Udp(0, Vip.Value, 40000, 53));
        var backend = Backend(out1, out var delivered);
        Assert.True(backend is 1 or 2, "delivered to an endpoint");
        Assert.Equal((NodeHarness.PodIp(0).Value, NodeHarness.PodIp(backend).Value, (ushort)40000, (ushort)5353), Tuple(delivered));
        Assert.True(ChecksumsValid(delivered));

        var reply = NodeHarness.UdpFrame(NodeHarness.PodMac(backend), NodeHarness.GatewayMac, NodeHarness.PodIp(backend).Value, NodeHarness.PodIp(0).Value, 16, sport: 5353, dport: 40000);
        var out2 = s.Send(backend, reply);
        var back = Assert.Single(out2[0]);
        Assert.Equal((Vip.Value, NodeHarness.PodIp(0).Value, (ushort)53, (ushort)40000), Tuple(back));
        Assert.True(ChecksumsValid(back));

        // The same flow keeps its backend; one flow was created.
        for (var k = 0; k < 5; k++) Assert.Equal(backend, Backend(s.Send(0, s.Udp(0, Vip.Value, 40000, 53)), out _));
        Assert.Equal(1, s.H.Node.Counters[Counter.ServiceFlowsCreated]);
        Assert.Equal(6, s.H.Node.Counters[Counter.ServiceTranslated]);
        Assert.Equal(1, s.H.Node.Counters[Counter.ServiceReplies]);
        var port = s.Table.Ports.Single(p => p.PortName == "dns");
        Assert.Equal(6, port.Counters[ServiceCounter.Packets]);
        Assert.Equal(1, port.Counters[ServiceCounter.ReplyPackets]);
        Assert.Equal(1, port.Backends.Single(b => b.Ip == NodeHarness.PodIp(backend).Value).Counters[ServiceCounter.Flows]);
    }

    [Fact]
    public void Source_ports_spread_over_both_endpoints_and_each_flow_stays_put()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1), Pod(2)));
        var seen = new int[3];
        var chosen = new Dictionary<ushort, int>();
        for (ushort sport = 41000; sport < 41064; sport++)
        {
            var b = Backend(s.Send(0, s.Udp(0, Vip.Value, sport, 53)), out _);
            seen[b]++;
            chosen[sport] = b;
        }
        Assert.True(seen[1] > 8 && seen[2] > 8, $"spread {seen[1]}/{seen[2]}");
        foreach (var (sport, b) in chosen) Assert.Equal(b, Backend(s.Send(0, s.Udp(0, Vip.Value, sport, 53)), out _));
    }

    [Fact]
    public void Client_ip_affinity_sends_every_source_port_to_one_endpoint()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1), Pod(2)) with { SessionAffinity = SessionAffinity.ClientIP, SessionAffinityTimeoutSeconds = 10 });
        var first = Backend(s.Send(0, s.Udp(0, Vip.Value, 42000, 53)), out _);
        for (ushort sport = 42001; sport < 42040; sport++) Assert.Equal(first, Backend(s.Send(0, s.Udp(0, Vip.Value, sport, 53)), out _));
    }

    [Fact]
    public void Hairpin_a_pod_reaching_itself_is_snated_to_the_hairpin_address_and_the_reply_returns()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1)));
        var out1 = s.Send(1, s.Udp(1, Vip.Value, 43000, 53));
        var looped = Assert.Single(out1[1]);
        var (src, dst, sport, dport) = Tuple(looped);
        Assert.Equal(s.H.Options.GatewayIp, src);
        Assert.Equal(NodeHarness.PodIp(1).Value, dst);
        Assert.Equal((ushort)5353, dport);
        Assert.True(ChecksumsValid(looped));

        var reply = NodeHarness.UdpFrame(NodeHarness.PodMac(1), NodeHarness.GatewayMac, NodeHarness.PodIp(1).Value, s.H.Options.GatewayIp, 16, sport: 5353, dport: sport);
        var back = Assert.Single(s.Send(1, reply)[1]);
        Assert.Equal((Vip.Value, NodeHarness.PodIp(1).Value, (ushort)53, (ushort)43000), Tuple(back));
        Assert.True(ChecksumsValid(back));
    }

    [Fact]
    public void No_endpoints_and_undefined_ports_are_rejected_with_port_unreachable()
    {
        var s = new ServiceHarness();
        s.Publish(Web());
        AssertPortUnreachable(s.Send(0, s.Udp(0, Vip.Value, 44000, 53))[0]);
        Assert.Equal(1, s.H.Node.Counters.Drops(DropReason.ServiceNoEndpoints));

        s.H.Clock.Advance(TimeSpan.FromSeconds(1)); // the ICMP error rate limit refills
        s.Publish(Web(Pod(1)));
        AssertPortUnreachable(s.Send(0, s.Udp(0, Vip.Value, 44000, 54))[0]);
        Assert.Equal(1, s.H.Node.Counters.Drops(DropReason.ServicePortUndefined));
    }

    private static void AssertPortUnreachable(List<byte[]> received)
    {
        var icmp = Assert.Single(received).AsSpan(14 + 20);
        Assert.Equal(Icmpv4.TypeDestinationUnreachable, Icmpv4.Type(icmp));
        Assert.Equal(3, Icmpv4.Code(icmp));
    }

    /// <summary>
    /// loadBalancerSourceRanges guard the LoadBalancer IP, for pods too (kube-proxy's firewall chain sees every
    /// source); the ClusterIP and the NodePort of the same Service are not restricted (kube-proxy's rule).
    /// </summary>
    [Fact]
    public void Load_balancer_source_ranges_drop_new_flows_from_other_sources_to_the_load_balancer_ip_only()
    {
        var s = new ServiceHarness();
        var lb = Ipv4Address.Parse("192.0.2.10");
        s.Publish(Web(Pod(1)) with
        {
            Type = ServiceType.LoadBalancer,
            LoadBalancerIps = [lb],
            LoadBalancerSourceRanges = [new Ipv4Prefix(NodeHarness.PodIp(0).Value, 32)],
        });

        Assert.Equal(1, Backend(s.Send(0, s.Udp(0, lb.Value, 46000, 53)), out var allowed));
        Assert.Equal(NodeHarness.PodIp(1).Value, Tuple(allowed).Dst);

        var refused = s.Send(2, s.Udp(2, lb.Value, 46001, 53));
        Assert.All(refused, Assert.Empty);
        Assert.Equal(1, s.H.Node.Counters.Drops(DropReason.ServiceSourceRange));

        // The same source through the ClusterIP: not restricted.
        Assert.Equal(1, Backend(s.Send(2, s.Udp(2, Vip.Value, 46002, 53)), out _));
        Assert.Equal(1, s.H.Node.Counters.Drops(DropReason.ServiceSourceRange));
    }

    [Fact]
    public void A_range_that_covers_the_node_lets_the_node_and_the_load_balancer_ip_itself_through()
    {
        var lb = Ipv4Address.Parse("192.0.2.10");
        var node = Ipv4Address.Parse("172.31.77.1");
        var settings = new ServiceTableSettings("node1", NodeHarness.Subnet, node.Value, NodeHarness.PodIp(0).Value, 251, 1, 1_000_000_000);
        ServicePort Port(params string[] ranges) => ServiceTableBuilder.Build(
            [Web(Pod(1)) with { Type = ServiceType.LoadBalancer, LoadBalancerIps = [lb], ExternalIps = [Ipv4Address.Parse("198.51.100.7")], LoadBalancerSourceRanges = [.. ranges.Select(Ipv4Prefix.Parse)] }],
            settings).Ports[0];
        var client = Ipv4Address.Parse("203.0.113.9").Value;

        var covering = Port("172.31.0.0/16");
        Assert.False(covering.RefusesSource(lb.Value, node.Value, node.Value));
        Assert.False(covering.RefusesSource(lb.Value, lb.Value, node.Value));
        Assert.True(covering.RefusesSource(lb.Value, client, node.Value));

        var elsewhere = Port("203.0.113.0/24");
        Assert.False(elsewhere.RefusesSource(lb.Value, client, node.Value));
        Assert.True(elsewhere.RefusesSource(lb.Value, node.Value, node.Value));
        // External IPs and other addresses are not guarded; no ranges guard nothing.
        Assert.False(elsewhere.RefusesSource(Ipv4Address.Parse("198.51.100.7").Value, node.Value, node.Value));
        Assert.False(Port().RefusesSource(lb.Value, node.Value, node.Value));
    }

    [Fact]
    public void Internal_traffic_policy_local_without_a_local_endpoint_drops_silently()
    {
        var s = new ServiceHarness();
        s.Publish(Web(new EndpointConfig(Remote, "node2")) with { InternalTrafficPolicy = TrafficPolicy.Local });
        var out1 = s.Send(0, s.Udp(0, Vip.Value, 45000, 53));
        Assert.All(out1, Assert.Empty);
        Assert.Equal(1, s.H.Node.Counters.Drops(DropReason.ServiceNoLocalEndpoints));
    }

    [Fact]
    public void Remote_endpoint_is_reached_through_vxlan_with_the_translated_destination()
    {
        var s = new ServiceHarness();
        s.Publish(Web(new EndpointConfig(Remote, "node2")));
        s.Send(0, s.Udp(0, Vip.Value, 46000, 53));
        var datagram = Assert.Single(s.H.Drain(s.H.Underlay));
        var inner = datagram.AsSpan(VxlanHeader.OverheadIpv4).ToArray();
        Assert.Equal((NodeHarness.PodIp(0).Value, Remote.Value, (ushort)46000, (ushort)5353), Tuple(inner));
        Assert.True(ChecksumsValid(inner));
    }

    /// <summary>kube-proxy #48370/#105657: a client on a fixed source port must follow the endpoints, never blackhole.</summary>
    [Fact]
    public void Udp_flow_on_a_fixed_port_follows_one_to_zero_to_one_endpoints()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1)));
        Assert.Equal(1, Backend(s.Send(0, s.Udp(0, Vip.Value, 47000, 53)), out _));
        s.Publish(Web());
        AssertPortUnreachable(s.Send(0, s.Udp(0, Vip.Value, 47000, 53))[0]);
        s.Publish(Web(Pod(2)));
        Assert.Equal(2, Backend(s.Send(0, s.Udp(0, Vip.Value, 47000, 53)), out _));
    }

    [Fact]
    public void Udp_flow_stays_when_an_endpoint_is_added_and_moves_when_its_own_is_deleted()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1)));
        Assert.Equal(1, Backend(s.Send(0, s.Udp(0, Vip.Value, 48000, 53)), out _));
        s.Publish(Web(Pod(1), Pod(2)));
        for (var k = 0; k < 3; k++) Assert.Equal(1, Backend(s.Send(0, s.Udp(0, Vip.Value, 48000, 53)), out _));
        s.Publish(Web(Pod(2)));
        Assert.Equal(2, Backend(s.Send(0, s.Udp(0, Vip.Value, 48000, 53)), out _));
    }

    [Fact]
    public void Service_deleted_and_recreated_gets_the_flow_to_the_new_endpoint()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1)));
        Assert.Equal(1, Backend(s.Send(0, s.Udp(0, Vip.Value, 49000, 53)), out _));
        s.Publish();
        s.Send(0, s.Udp(0, Vip.Value, 49000, 53)); // no Service: routed as any address (no route here)
        s.Publish(Web(Pod(2)));
        Assert.Equal(2, Backend(s.Send(0, s.Udp(0, Vip.Value, 49000, 53)), out _));
    }

    [Fact]
    public void A_terminating_endpoint_keeps_its_flows_and_serves_new_ones_only_when_no_endpoint_is_ready()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1)));
        Assert.Equal(1, Backend(s.Send(0, s.Udp(0, Vip.Value, 50000, 53)), out _));
        s.Publish(Web(Pod(1, ready: false, terminating: true)));
        Assert.Equal(1, Backend(s.Send(0, s.Udp(0, Vip.Value, 50000, 53)), out _)); // existing flow kept
        Assert.Equal(1, Backend(s.Send(0, s.Udp(0, Vip.Value, 50001, 53)), out _)); // fallback: no ready endpoint
        s.Publish(Web(Pod(1, ready: false, terminating: true), Pod(2)));
        for (ushort p = 50002; p < 50020; p++) Assert.Equal(2, Backend(s.Send(0, s.Udp(0, Vip.Value, p, 53)), out _));
    }

    /// <summary>A backend's "fragmentation needed" reaches the client about the packet the client sent: to the service address.</summary>
    [Fact]
    public void Icmp_fragmentation_needed_from_the_backend_is_translated_back_quoted_header_included()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1)));
        var sent = Assert.Single(s.Send(0, s.Udp(0, Vip.Value, 51000, 53))[1]);
        var quotedIp = sent.AsSpan(14, 28).ToArray();
        var error = new byte[14 + 20 + 8 + quotedIp.Length];
        Ethernet.Write(error, NodeHarness.GatewayMac, NodeHarness.PodMac(1), Ethernet.TypeIpv4);
        Ipv4Header.Write(error.AsSpan(14), (ushort)(error.Length - 14), 9, 0, 64, Ipv4Header.ProtocolIcmp, NodeHarness.PodIp(1).Value, NodeHarness.PodIp(0).Value);
        Icmpv4.WriteError(error.AsSpan(34), Icmpv4.TypeDestinationUnreachable, Icmpv4.CodeFragmentationNeeded, 1200, quotedIp);

        var received = Assert.Single(s.Send(1, error)[0]);
        var ip = received.AsSpan(14);
        Assert.Equal(Vip.Value, Ipv4Header.Source(ip));
        Assert.Equal(NodeHarness.PodIp(0).Value, Ipv4Header.Destination(ip));
        Assert.True(Ipv4Header.HeaderChecksumValid(ip, 20));
        var icmp = ip[20..Ipv4Header.TotalLength(ip)];
        Assert.True(Icmpv4.ChecksumValid(icmp));
        Assert.Equal(1200, Icmpv4.NextHopMtu(icmp));
        var quoted = icmp[8..];
        Assert.Equal(NodeHarness.PodIp(0).Value, Ipv4Header.Source(quoted));
        Assert.Equal(Vip.Value, Ipv4Header.Destination(quoted));
        Assert.True(Ipv4Header.HeaderChecksumValid(quoted, 20));
        Assert.Equal(51000, BinaryPrimitives.ReadUInt16BigEndian(quoted[20..]));
        Assert.Equal(53, BinaryPrimitives.ReadUInt16BigEndian(quoted[22..]));
        Assert.Equal(1, s.H.Node.Counters[Counter.ServiceIcmpTranslated]);
    }

    [Fact]
    public void Plain_pod_traffic_is_not_touched_and_creates_no_flow()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1)));
        var frame = s.Udp(0, NodeHarness.PodIp(2).Value, 52000, 9999);
        var delivered = Assert.Single(s.Send(0, frame)[2]);
        Assert.Equal(Tuple(frame), Tuple(delivered));
        Assert.Equal(0, s.H.Node.Counters[Counter.ServiceFlowsCreated]);
        Assert.Equal(0, s.Conntrack.Count);
    }

    [Fact]
    public void A_full_table_fails_new_flows_closed_and_keeps_established_ones()
    {
        var s = new ServiceHarness(capacity: 1024);
        s.Publish(Web(Pod(1), Pod(2)));
        var established = Backend(s.Send(0, s.Udp(0, Vip.Value, 1000, 53)), out _);
        var capacity = s.Conntrack.Tables[0].Capacity;
        var failed = 0;
        for (var k = 1; k < capacity * 11 / 10; k++)
        {
            var r = s.Send(0, s.Udp(0, Vip.Value, (ushort)(1000 + k), 53));
            if (Backend(r, out _) < 0) failed++;
        }
        Assert.True(failed >= capacity / 10 - 1, $"{failed} new flows failed");
        Assert.Equal(failed, s.H.Node.Counters.Drops(DropReason.ConntrackFull));
        Assert.Equal(established, Backend(s.Send(0, s.Udp(0, Vip.Value, 1000, 53)), out _));
        // UDP flows expire (30 s unreplied); the table then takes new flows again without any sweep.
        s.H.Clock.Advance(TimeSpan.FromSeconds(31));
        Assert.True(Backend(s.Send(0, s.Udp(0, Vip.Value, 65000, 53)), out _) > 0);
    }

    /// <summary>
    /// Packets of one flow in one burst after the first take the run path (sums computed once): every one must come
    /// out exactly as the first did, SNAT included, with valid checksums, and the counters must count them all.
    /// </summary>
    [Fact]
    public void A_run_of_one_flow_in_a_burst_is_translated_exactly_like_its_first_packet()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1)));
        // Hairpin, so both source and destination change; sizes vary so the checksums differ per packet.
        for (var k = 0; k < 6; k++) s.H.Inject(1, s.Udp(1, Vip.Value, 43100, 53, payload: 20 + k * 7));
        s.H.Inject(1, s.Udp(1, Vip.Value, 43101, 53)); // another flow breaks the run
        s.H.Inject(1, s.Udp(1, Vip.Value, 43100, 53, payload: 99));
        s.H.Node.Poll();
        var out1 = s.H.Drain(1);
        Assert.Equal(8, out1.Count);
        var first = Tuple(out1[0]);
        Assert.Equal(s.H.Options.GatewayIp, first.Src);
        foreach (var f in out1)
        {
            Assert.True(ChecksumsValid(f));
        }
        Assert.All(out1.Where((_, k) => k != 6), f => Assert.Equal(first, Tuple(f)));
        Assert.NotEqual(first.Sport, Tuple(out1[6]).Sport);

        // The replies in one burst: a run the other way.
        for (var k = 0; k < 5; k++)
            s.H.Inject(1, NodeHarness.UdpFrame(NodeHarness.PodMac(1), NodeHarness.GatewayMac, NodeHarness.PodIp(1).Value, s.H.Options.GatewayIp, 10 + k * 3, sport: 5353, dport: first.Sport));
        s.H.Node.Poll();
        var back = s.H.Drain(1);
        Assert.Equal(5, back.Count);
        Assert.All(back, f =>
        {
            Assert.Equal((Vip.Value, NodeHarness.PodIp(1).Value, (ushort)53, (ushort)43100), Tuple(f));
            Assert.True(ChecksumsValid(f));
        });
        var port = s.Table.Ports.Single(p => p.PortName == "dns");
        Assert.Equal(8, port.Counters[ServiceCounter.Packets]);
        Assert.Equal(5, port.Counters[ServiceCounter.ReplyPackets]);
        Assert.Equal(8, s.H.Node.Counters[Counter.ServiceTranslated]);
        Assert.Equal(5, s.H.Node.Counters[Counter.ServiceReplies]);
    }

    /// <summary>A pod with checksum offload hands partial TCP checksums: after DNAT (first packet and run) each is the new pseudo-header sum.</summary>
    [Fact]
    public void Partial_tcp_checksums_stay_the_pseudo_header_sum_through_the_translation()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(2)));
        for (var k = 0; k < 4; k++)
        {
            var ip = FastOverlay.Tests.Wire.NatRewriteProperties.Packet(true, NodeHarness.PodIp(0).Value, Vip.Value, 44100, 80, new byte[100 + k], 0, (ushort)k);
            FastOverlay.Offload.L4Checksum.WritePartial(ip.AsSpan(20), 6, FastOverlay.Offload.L4Checksum.PseudoHeader(NodeHarness.PodIp(0).Value, Vip.Value, 6, ip.Length - 20));
            var frame = new byte[14 + ip.Length];
            Ethernet.Write(frame, NodeHarness.GatewayMac, NodeHarness.PodMac(0), Ethernet.TypeIpv4);
            ip.CopyTo(frame, 14);
            var h = s.H.Alloc(frame);
            s.H.Pool.Meta(h).Flags = PacketFlags.ChecksumPartial;
            Assert.Equal(1, s.H.PodPorts[0].Transmit([h]));
        }
        s.H.Node.Poll();
        var delivered = s.H.Drain(2);
        Assert.Equal(4, delivered.Count);
        foreach (var f in delivered)
        {
            var ip = f.AsSpan(14);
            Assert.Equal(NodeHarness.PodIp(2).Value, Ipv4Header.Destination(ip));
            Assert.Equal(8080, BinaryPrimitives.ReadUInt16BigEndian(ip[22..]));
            var expected = FastOverlay.Offload.L4Checksum.PartialValue(FastOverlay.Offload.L4Checksum.PseudoHeader(NodeHarness.PodIp(0).Value, NodeHarness.PodIp(2).Value, 6, Ipv4Header.TotalLength(ip) - 20));
            Assert.Equal(expected, BinaryPrimitives.ReadUInt16BigEndian(ip[36..]));
            Assert.True(Ipv4Header.HeaderChecksumValid(ip, 20));
        }
    }

    /// <summary>Past 16384 flows the stage prefetches buckets in a first pass: the answers must not change.</summary>
    [Fact]
    public void With_many_flows_the_prefetching_pass_translates_the_same()
    {
        var s = new ServiceHarness(capacity: 32768);
        s.Publish(Web(Pod(1), Pod(2)));
        var first = new Dictionary<int, int>();
        for (var round = 0; round < 2; round++)
        {
            for (var b = 0; b < 72; b++)
            {
                for (var k = 0; k < 256; k++) s.H.Inject(0, s.Udp(0, Vip.Value, (ushort)(1024 + b * 256 + k), 53));
                s.H.Node.Poll();
                for (var p = 1; p <= 2; p++)
                {
                    foreach (var f in s.H.Drain(p))
                    {
                        var sport = Tuple(f).Sport;
                        Assert.True(ChecksumsValid(f));
                        if (round == 0) first[sport] = p;
                        else Assert.Equal(first[sport], p);
                    }
                }
            }
        }
        Assert.Equal(72 * 256, first.Count);
        Assert.Equal(72 * 256, s.H.Node.Counters[Counter.ServiceFlowsCreated]);
        Assert.True(s.Conntrack.Tables[0].Count >= 16384);
    }
}
