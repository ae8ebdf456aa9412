using System.Buffers.Binary;
using FastOverlay.Pipeline;
using FastOverlay.Tests.Pipeline;
using FastOverlay.Wire;
using static FastOverlay.Tests.Hostile.HostileProbe;

namespace FastOverlay.Tests.Hostile;

/// <summary>
/// Broken or foreign frames on the underlay: the decap path must drop each with its own reason, never pass a
/// byte of it to a pod, leave no buffer behind, and keep forwarding good VXLAN.
/// </summary>
public class MalformedUnderlayTests
{
    private const int OuterIp = 14;
    private const int OuterUdp = 34;
    private const int Vxlan = 42;
    private const int Inner = 50;

    private static NodeHarness Node(NodeOptions? options = null)
    {
        var h = new NodeHarness(poolSize: 512, options: options);
        h.LearnPods();
        return h;
    }

    /// <summary>
    /// The sender built a shorter packet: the outer IPv4 total length and UDP length agree with the cut, so each
    /// layer in turn is what is short: UDP, then VXLAN, then the inner Ethernet header, then the inner IPv4.
    /// </summary>
    [Fact]
    public void Vxlan_cut_consistently_at_every_offset_is_dropped_for_the_layer_it_breaks()
    {
        var h = Node();
        var frame = GoodFromPeer(payload: 30);
        for (var length = OuterUdp; length < frame.Length; length++)
        {
            var cut = frame.AsSpan(0, length).ToArray();
            BinaryPrimitives.WriteUInt16BigEndian(cut.AsSpan(OuterIp + 2), (ushort)(length - OuterIp));
            FixIpChecksum(cut, OuterIp);
            if (length >= OuterUdp + 8) BinaryPrimitives.WriteUInt16BigEndian(cut.AsSpan(OuterUdp + 4), (ushort)(length - OuterUdp));
            var reason = length switch
            {
                < OuterUdp + 8 => DropReason.UdpMalformed,     // no room for the UDP header
                < Inner => DropReason.UdpMalformed,            // the VXLAN header is cut (UDP payload shorter than 8)
                < Inner + 14 => DropReason.FrameTooShort,      // inner Ethernet header cut
                _ => DropReason.Ipv4Truncated,                 // inner IPv4 header or datagram cut
            };
            AssertDropped(h, 0, cut, reason, $"cut to {length}");
        }
        AssertForwarded(h, 0, frame, 2);
        AssertGoodTrafficFlows(h);
    }

    /// <summary>The frame lost its tail on the way: the outer IPv4 total length now lies.</summary>
    [Fact]
    public void Vxlan_truncated_at_every_offset_is_dropped()
    {
        var h = Node();
        var frame = GoodFromPeer();
        for (var length = 0; length < frame.Length; length++)
            AssertDropped(h, 0, frame.AsSpan(0, length), length < 14 ? DropReason.FrameTooShort : DropReason.Ipv4Truncated, $"cut to {length}");
        var tagged = MalformedPodFrameTests.Tag(GoodFromPeer(), 0x8100, 100);
        for (var length = 14; length < 18; length++)
            AssertDropped(h, 0, tagged.AsSpan(0, length), DropReason.FrameTooShort, $"tagged, cut to {length}");
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void Vxlan_on_a_tagged_underlay_is_accepted_and_two_tags_are_not()
    {
        var h = Node();
        AssertForwarded(h, 0, MalformedPodFrameTests.Tag(GoodFromPeer(), 0x8100, 100), 2);
        AssertDropped(h, 0, MalformedPodFrameTests.Tag(MalformedPodFrameTests.Tag(GoodFromPeer(), 0x8100, 100), 0x8100, 7), DropReason.UnsupportedEtherType);
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void Vxlan_with_the_i_flag_clear_is_dropped_for_its_flags()
    {
        var h = Node();
        foreach (var flags in new byte[] { 0x00, 0xF7, 0x80, 0x04 })
        {
            var frame = GoodFromPeer();
            frame[Vxlan] = flags;
            AssertDropped(h, 0, frame, DropReason.VxlanBadFlags, $"flags {flags:x2}");
        }
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void Vxlan_with_every_reserved_bit_set_is_accepted_as_rfc_7348_says()
    {
        var h = Node();
        var frame = GoodFromPeer();
        // "Reserved fields MUST be set to zero on transmission and ignored on receipt" (RFC 7348 s5).
        frame[Vxlan] = 0xFF;
        frame[Vxlan + 1] = 0xFF;
        frame[Vxlan + 2] = 0xFF;
        frame[Vxlan + 3] = 0xFF;
        frame[Vxlan + 7] = 0xFF;
        var delivered = AssertForwarded(h, 0, frame, 2);
        Assert.True(frame.AsSpan(Inner + 14 + 12).SequenceEqual(delivered.AsSpan(14 + 12)));
    }

    [Fact]
    public void Vxlan_to_the_wrong_port_vni_or_address_or_from_an_unknown_peer_is_dropped_for_each()
    {
        var h = Node();
        var inner = GoodInnerFromPeer();
        var peer = NodeHarness.PeerB.PublicIp.Value;
        var us = NodeHarness.PublicIp.Value;
        AssertDropped(h, 0, NodeHarness.VxlanFrame(peer, us, 1, inner, dport: VxlanHeader.IanaPort), DropReason.NotVxlan, "IANA port on a Linux-port node");
        AssertDropped(h, 0, NodeHarness.VxlanFrame(peer, us, 1, inner, dport: 53), DropReason.NotVxlan, "port 53");
        AssertDropped(h, 0, NodeHarness.VxlanFrame(peer, us, 2, inner), DropReason.UnknownVni, "VNI 2");
        AssertDropped(h, 0, NodeHarness.VxlanFrame(peer, us, 0, inner), DropReason.UnknownVni, "VNI 0");
        AssertDropped(h, 0, NodeHarness.VxlanFrame(peer, us, VxlanHeader.MaxVni, inner), DropReason.UnknownVni, "VNI 2^24-1");
        AssertDropped(h, 0, NodeHarness.VxlanFrame(peer, us + 1, 1, inner), DropReason.NotVxlan, "to another node's address");
        AssertDropped(h, 0, NodeHarness.VxlanFrame(peer, 0xFFFF_FFFF, 1, inner), DropReason.NotVxlan, "to broadcast");
        AssertDropped(h, 0, NodeHarness.VxlanFrame(Ipv4Address.Parse("172.31.77.99").Value, us, 1, inner), DropReason.UnknownPeer, "unknown peer");
        AssertDropped(h, 0, NodeHarness.VxlanFrame(us, us, 1, inner), DropReason.UnknownPeer, "from our own address");
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void A_node_on_the_iana_port_accepts_4789_and_refuses_8472()
    {
        var options = new NodeHarness().Options with { VxlanPort = VxlanHeader.IanaPort };
        var h = Node(options);
        var inner = GoodInnerFromPeer();
        AssertForwarded(h, 0, NodeHarness.VxlanFrame(NodeHarness.PeerB.PublicIp.Value, NodeHarness.PublicIp.Value, 1, inner, dport: VxlanHeader.IanaPort), 2);
        AssertDropped(h, 0, NodeHarness.VxlanFrame(NodeHarness.PeerB.PublicIp.Value, NodeHarness.PublicIp.Value, 1, inner), DropReason.NotVxlan);
    }

    [Fact]
    public void Outer_headers_that_lie_are_each_dropped_with_their_own_reason()
    {
        var h = Node();
        AssertDropped(h, 0, Outer(f => f[OuterIp + 10] ^= 0x10, fix: false), DropReason.Ipv4BadChecksum, "outer IPv4 checksum");
        AssertDropped(h, 0, Outer(f => f[OuterIp] = 0x65, fix: true), DropReason.Ipv4BadVersion, "outer version 6");
        AssertDropped(h, 0, Outer(f => f[OuterIp] = 0x44, fix: false), DropReason.Ipv4BadHeaderLength, "outer IHL 4");
        AssertDropped(h, 0, Outer(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(OuterIp + 2), 12), fix: true), DropReason.Ipv4BadTotalLength, "outer total length 12");
        AssertDropped(h, 0, Outer(f => f[OuterIp + 9] = Ipv4Header.ProtocolTcp, fix: true), DropReason.NotVxlan, "outer TCP");
        AssertDropped(h, 0, Outer(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), Ethernet.TypeArp), fix: false), DropReason.NotVxlan, "ARP on the underlay");
        AssertDropped(h, 0, Outer(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(OuterIp + 6), Ipv4Header.FlagMoreFragments), fix: true), DropReason.VxlanFragment, "first fragment");
        AssertDropped(h, 0, Outer(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(OuterIp + 6), 3), fix: true), DropReason.VxlanFragment, "later fragment");
        AssertDropped(h, 0, Outer(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(OuterUdp + 4), 7), fix: false), DropReason.UdpMalformed, "UDP length 7");
        AssertDropped(h, 0, Outer(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(OuterUdp + 4), (ushort)(f.Length - OuterUdp + 1)), fix: false), DropReason.UdpMalformed, "UDP length past the datagram");
        AssertDropped(h, 0, Outer(f => BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(OuterUdp + 6), 0x1234), fix: false), DropReason.UdpMalformed, "wrong non-zero UDP checksum");
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void A_correct_outer_udp_checksum_and_outer_ip_options_are_accepted()
    {
        var h = Node();
        var withChecksum = GoodFromPeer();
        var udp = withChecksum.AsSpan(OuterUdp);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], UdpHeader.ComputeChecksum(NodeHarness.PeerB.PublicIp.Value, NodeHarness.PublicIp.Value, udp));
        AssertForwarded(h, 0, withChecksum, 2, "outer UDP checksum");

        var withOptions = MalformedPodFrameTests.WithOptions(GoodFromPeer(), [0x01, 0x01, 0x01, 0x00]);
        AssertForwarded(h, 0, withOptions, 2, "outer IPv4 options");
    }

    [Fact]
    public void Inner_frames_that_are_not_ipv4_for_our_vtep_are_dropped_for_each_reason()
    {
        var h = Node();
        var us = NodeHarness.PublicIp.Value;
        var peer = NodeHarness.PeerB.PublicIp.Value;
        var wrongMac = GoodInnerFromPeer();
        NodeHarness.GatewayMac.Write(wrongMac);
        AssertDropped(h, 0, NodeHarness.VxlanFrame(peer, us, 1, wrongMac), DropReason.InnerDstMacNotVtep, "inner MAC not ours");
        var broadcast = GoodInnerFromPeer();
        MacAddress.Broadcast.Write(broadcast);
        AssertDropped(h, 0, NodeHarness.VxlanFrame(peer, us, 1, broadcast), DropReason.InnerDstMacNotVtep, "inner broadcast");
        var arp = NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PeerB.VtepMac, NodeHarness.PeerB.Subnet.Address, h.Options.VtepIp, NodeHarness.VtepMac);
        AssertDropped(h, 0, NodeHarness.VxlanFrame(peer, us, 1, arp), DropReason.UnsupportedEtherType, "inner ARP (flannel never sends it: learning is off)");
        var badChecksum = GoodInnerFromPeer();
        badChecksum[14 + 10] ^= 0xFF;
        AssertDropped(h, 0, NodeHarness.VxlanFrame(peer, us, 1, badChecksum), DropReason.Ipv4BadChecksum, "inner checksum");
        var twoTags = MalformedPodFrameTests.Tag(MalformedPodFrameTests.Tag(GoodInnerFromPeer(), 0x8100, 1), 0x8100, 2);
        AssertDropped(h, 0, NodeHarness.VxlanFrame(peer, us, 1, twoTags), DropReason.UnsupportedEtherType, "inner Q-in-Q");
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void Underlay_frames_of_every_length_from_0_to_200_and_1920_never_reach_a_pod_unless_valid()
    {
        var h = Node();
        var random = new Random(7);
        for (var length = 0; length <= 200; length++)
        {
            var junk = new byte[length];
            random.NextBytes(junk);
            var o = Send(h, 0, junk);
            Assert.True(o.TotalDrops == 1 && o.OutCount == 0, $"{length} random bytes: {o.Describe()}");
        }
        var big = new byte[PacketPool.MaxFrameLength];
        random.NextBytes(big);
        Assert.Equal(1, Send(h, 0, big).TotalDrops);
        var valid = GoodFromPeer(payload: PacketPool.MaxFrameLength - 50 - 42);
        Assert.Equal(PacketPool.MaxFrameLength, valid.Length);
        Assert.Equal(PacketPool.MaxFrameLength - 50, AssertForwarded(h, 0, valid, 2).Length);
        Assert.Equal(0, h.Node.Arp.Snapshot().Count(e => e.Port == 0));
        AssertGoodTrafficFlows(h);
    }

    private static byte[] Outer(Action<byte[]> edit, bool fix)
    {
        var frame = GoodFromPeer();
        edit(frame);
        if (fix) FixIpChecksum(frame, OuterIp);
        return frame;
    }
}
