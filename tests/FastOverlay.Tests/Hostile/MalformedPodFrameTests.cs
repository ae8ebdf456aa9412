using System.Buffers.Binary;
using FastOverlay.Pipeline;
using FastOverlay.Tests.Pipeline;
using FastOverlay.Wire;
using static FastOverlay.Tests.Hostile.HostileProbe;

namespace FastOverlay.Tests.Hostile;

/// <summary>
/// Broken frames from a pod, every kind the parsers know: each is dropped with its own reason, counted, leaves no
/// buffer behind, and good traffic still flows after it.
/// </summary>
public class MalformedPodFrameTests
{
    private static NodeHarness Node()
    {
        var h = new NodeHarness(poolSize: 512);
        h.LearnPods();
        return h;
    }

    /// <summary>The reason a pod frame cut to <paramref name="length"/> bytes must be dropped for (Ethernet 14, IPv4 from <paramref name="l3"/>).</summary>
    private static DropReason TruncationReason(int length, int l3) =>
        length < l3 ? DropReason.FrameTooShort : DropReason.Ipv4Truncated;

    [Fact]
    public void Udp_frame_truncated_at_every_offset_is_dropped_for_the_layer_it_breaks()
    {
        var h = Node();
        var frame = GoodIntra(payload: 40);
        for (var length = 0; length < frame.Length; length++)
            AssertDropped(h, 1, frame.AsSpan(0, length), TruncationReason(length, 14), $"cut to {length}");
        AssertForwarded(h, 1, frame, 2);
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void Vlan_tagged_frame_truncated_at_every_offset_is_dropped_and_whole_it_forwards_untagged()
    {
        var h = Node();
        var frame = Tag(GoodToPeer(payload: 30), 0x8100, 42);
        for (var length = 0; length < frame.Length; length++)
            AssertDropped(h, 1, frame.AsSpan(0, length), TruncationReason(length, 18), $"cut to {length}");
        var encapsulated = AssertForwarded(h, 1, frame, 0);
        // The inner frame leaves untagged: VLAN tags are a pod-link matter, never carried across nodes.
        Assert.Equal(Ethernet.TypeIpv4, BinaryPrimitives.ReadUInt16BigEndian(encapsulated.AsSpan(50 + 12)));
        Assert.True(frame.AsSpan(18 + 12).SequenceEqual(encapsulated.AsSpan(50 + 14 + 12)));
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void Two_vlan_tags_or_a_qinq_tag_are_dropped_as_unsupported()
    {
        var h = Node();
        AssertDropped(h, 1, Tag(Tag(GoodIntra(), 0x8100, 5), 0x8100, 6), DropReason.UnsupportedEtherType, "802.1Q in 802.1Q");
        AssertDropped(h, 1, Tag(Tag(GoodIntra(), 0x8100, 5), 0x88A8, 6), DropReason.UnsupportedEtherType, "802.1Q in 802.1ad");
        AssertDropped(h, 1, Tag(GoodIntra(), 0x88A8, 6), DropReason.UnsupportedEtherType, "802.1ad");
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void Arp_truncated_at_every_offset_is_malformed()
    {
        var h = Node();
        var request = NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(0), NodeHarness.PodIp(0).Value, h.Options.GatewayIp, MacAddress.Broadcast);
        for (var length = 0; length < 14 + ArpPacket.Length; length++)
            AssertDropped(h, 1, request.AsSpan(0, length), length < 14 ? DropReason.FrameTooShort : DropReason.ArpMalformed, $"cut to {length}");
        // The 42 bytes of Ethernet + ARP are enough; the padding is not needed.
        var reply = AssertForwarded(h, 1, request.AsSpan(0, 42), 1);
        Assert.Equal(ArpPacket.OpReply, BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(14 + 6)));
        AssertGoodTrafficFlows(h);
    }

    [Theory]
    [InlineData(0x0001_0800, 6, 4, 3)]      // op 3 (RARP request)
    [InlineData(0x0006_0800, 6, 4, 1)]      // htype IEEE 802
    [InlineData(0x0001_86DD, 6, 4, 1)]      // ptype IPv6
    [InlineData(0x0001_0800, 8, 4, 1)]      // hlen 8
    [InlineData(0x0001_0800, 6, 16, 1)]     // plen 16
    public void Arp_that_is_not_ethernet_ipv4_request_or_reply_is_malformed(uint types, byte hlen, byte plen, ushort op)
    {
        var h = Node();
        var frame = NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(0), NodeHarness.PodIp(0).Value, h.Options.GatewayIp, MacAddress.Broadcast);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(14), types);
        frame[18] = hlen;
        frame[19] = plen;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(20), op);
        AssertDropped(h, 1, frame, DropReason.ArpMalformed);
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void Arp_to_another_unicast_mac_and_requests_for_outside_addresses_are_dropped_for_their_reasons()
    {
        var h = Node();
        var elsewhere = NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(0), NodeHarness.PodIp(0).Value, h.Options.GatewayIp, NodeHarness.PodMac(1));
        AssertDropped(h, 1, elsewhere, DropReason.WrongDestinationMac);
        var outside = NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(0), NodeHarness.PodIp(0).Value, Ipv4Address.Parse("192.168.7.7").Value, MacAddress.Broadcast);
        AssertDropped(h, 1, outside, DropReason.ArpNotForUs);
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void Ipv4_header_lies_are_each_dropped_with_their_own_reason()
    {
        var h = Node();
        AssertDropped(h, 1, Edit(GoodIntra(), ip => ip[0] = 0x65, fixChecksum: true), DropReason.Ipv4BadVersion, "version 6");
        AssertDropped(h, 1, Edit(GoodIntra(), ip => ip[0] = 0x05, fixChecksum: true), DropReason.Ipv4BadVersion, "version 0");
        for (var ihl = 0; ihl < 5; ihl++)
            AssertDropped(h, 1, Edit(GoodIntra(), ip => ip[0] = (byte)(0x40 | ihl), fixChecksum: false), DropReason.Ipv4BadHeaderLength, $"IHL {ihl}");
        // IHL 15 = 60 header bytes, more than the 46 the frame carries.
        AssertDropped(h, 1, Edit(GoodIntra(), ip => ip[0] = 0x4F, fixChecksum: false), DropReason.Ipv4Truncated, "IHL past the end");
        AssertDropped(h, 1, Edit(GoodIntra(), ip => SetTotal(ip, 19), fixChecksum: true), DropReason.Ipv4BadTotalLength, "total length < header");
        AssertDropped(h, 1, Edit(GoodIntra(), ip => SetTotal(ip, 0), fixChecksum: true), DropReason.Ipv4BadTotalLength, "total length 0");
        AssertDropped(h, 1, Edit(GoodIntra(), ip => SetTotal(ip, 47), fixChecksum: true), DropReason.Ipv4Truncated, "total length one past the frame");
        AssertDropped(h, 1, Edit(GoodIntra(), ip => SetTotal(ip, 0xFFFF), fixChecksum: true), DropReason.Ipv4Truncated, "total length 65535");
        AssertDropped(h, 1, Edit(GoodIntra(), ip => ip[10] ^= 0x01, fixChecksum: false), DropReason.Ipv4BadChecksum, "checksum off by one bit");
        AssertDropped(h, 1, Edit(GoodIntra(), ip => ip[8] = 65, fixChecksum: false), DropReason.Ipv4BadChecksum, "TTL changed, checksum not");
        AssertGoodTrafficFlows(h);
    }

    [Theory]
    [InlineData(0x0000_0000u)]  // 0.0.0.0
    [InlineData(0x0000_0001u)]  // 0.0.0.1
    [InlineData(0x7F00_0001u)]  // 127.0.0.1
    [InlineData(0xE000_0001u)]  // multicast
    [InlineData(0xF000_0001u)]  // class E
    [InlineData(0xFFFF_FFFFu)]  // broadcast
    public void Martian_sources_are_dropped_as_bad_source_or_spoofed(uint source)
    {
        // A port with no address bound yet (no configured IP, no ARP seen) lets the martian check speak.
        var unbound = new NodeHarness(poolSize: 512, configurePodIps: false);
        AssertDropped(unbound, 1, Edit(GoodToPeer(), ip => BinaryPrimitives.WriteUInt32BigEndian(ip[12..], source), fixChecksum: true), DropReason.Ipv4BadSource);
        // A bound port refuses any source but its own first.
        var bound = Node();
        AssertDropped(bound, 1, Edit(GoodToPeer(), ip => BinaryPrimitives.WriteUInt32BigEndian(ip[12..], source), fixChecksum: true), DropReason.SpoofedSource);
        AssertGoodTrafficFlows(bound);
    }

    [Fact]
    public void Total_length_shorter_than_the_frame_cuts_the_padding_and_forwards_what_it_covers()
    {
        var h = Node();
        // 18 payload bytes in a 46-byte datagram; claim 40: the last 6 bytes are Ethernet padding, not data.
        var frame = Edit(GoodIntra(), ip => SetTotal(ip, 40), fixChecksum: true);
        var delivered = AssertForwarded(h, 1, frame, 2);
        Assert.Equal(14 + 40, delivered.Length);
        Assert.True(frame.AsSpan(14 + 12, 40 - 12).SequenceEqual(delivered.AsSpan(14 + 12)));
    }

    [Fact]
    public void Fragments_and_ip_options_are_forwarded_intact()
    {
        var h = Node();
        var first = Edit(GoodToPeer(), ip => BinaryPrimitives.WriteUInt16BigEndian(ip[6..], Ipv4Header.FlagMoreFragments), fixChecksum: true);
        var later = Edit(GoodIntra(), ip => BinaryPrimitives.WriteUInt16BigEndian(ip[6..], 185), fixChecksum: true);
        var encapsulated = AssertForwarded(h, 1, first, 0, "first fragment to a peer");
        Assert.True(first.AsSpan(14 + 12).SequenceEqual(encapsulated.AsSpan(50 + 14 + 12)));
        var delivered = AssertForwarded(h, 1, later, 2, "later fragment to a pod");
        Assert.True(later.AsSpan(14 + 12).SequenceEqual(delivered.AsSpan(14 + 12)));

        var withOptions = WithOptions(GoodToPeer(), [0x07, 0x0B, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]); // record route + end of list
        var options = AssertForwarded(h, 1, withOptions, 0, "IPv4 options to a peer");
        Assert.Equal(0x48, options[50 + 14]);
        Assert.True(withOptions.AsSpan(14 + 12).SequenceEqual(options.AsSpan(50 + 14 + 12)));
        Assert.True(Ipv4Header.HeaderChecksumValid(options.AsSpan(50 + 14), 32));
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void A_fragmented_echo_request_to_the_gateway_is_not_answered()
    {
        var h = Node();
        var echo = new byte[14 + 20 + 8 + 8];
        Ethernet.Write(echo, NodeHarness.GatewayMac, NodeHarness.PodMac(0), Ethernet.TypeIpv4);
        Ipv4Header.Write(echo.AsSpan(14), 36, 9, Ipv4Header.FlagMoreFragments, 64, Ipv4Header.ProtocolIcmp, NodeHarness.PodIp(0).Value, h.Options.GatewayIp);
        Icmpv4.WriteEcho(echo.AsSpan(34), Icmpv4.TypeEchoRequest, 1, 1, new byte[8]);
        AssertDropped(h, 1, echo, DropReason.LocalProtocolUnsupported);
    }

    [Fact]
    public void Frames_of_every_length_from_0_to_200_are_dropped_or_forwarded_never_lost()
    {
        var h = Node();
        var full = GoodIntra(payload: 200 - 42);
        for (var length = 0; length <= 200; length++)
        {
            // Cut: a frame whose IPv4 total length claims 186 bytes.
            if (length < full.Length) AssertDropped(h, 1, full.AsSpan(0, length), TruncationReason(length, 14), $"cut to {length}");
            // Padded: a minimal datagram followed by zeros up to the length, as a NIC pads.
            var small = GoodIntra(payload: 0).AsSpan(0, 14 + 28).ToArray();
            if (length >= small.Length)
            {
                var padded = new byte[length];
                small.CopyTo(padded, 0);
                Assert.Equal(14 + 28, AssertForwarded(h, 1, padded, 2, $"padded to {length}").Length);
            }
        }
        AssertForwarded(h, 1, full, 2);
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void The_largest_frame_a_buffer_holds_is_forwarded_to_a_pod_and_refused_toward_the_underlay()
    {
        var h = Node();
        var payload = PacketPool.MaxFrameLength - 42;
        var intra = GoodIntra(payload);
        Assert.Equal(1920, intra.Length);
        Assert.Equal(1920, AssertForwarded(h, 1, intra, 2).Length);

        // 1906-byte datagram > 1450 inner MTU: never fragmented (RFC 7348 s4.3); DF set, so ICMP "fragmentation needed".
        var o = Send(h, 1, GoodToPeer(payload));
        Assert.Equal(1, o.Drops[(int)DropReason.TooBigForUnderlay]);
        Assert.Empty(o.Out[0]);
        var icmp = Assert.Single(o.Out[1]);
        Assert.Equal(Icmpv4.TypeDestinationUnreachable, icmp[34]);
        Assert.Equal(Icmpv4.CodeFragmentationNeeded, icmp[35]);
        Assert.Equal(h.Options.InnerMtu, BinaryPrimitives.ReadUInt16BigEndian(icmp.AsSpan(34 + 6)));
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void A_frame_longer_than_a_buffer_cannot_be_handed_to_the_node_at_all()
    {
        // The pool is the only way into the pipeline, and its buffers end at MaxFrameLength: a port adapter that
        // receives more must cut or drop it before the node sees it. The node itself never meets a jumbo frame.
        var pool = new PacketPool(4);
        var h = pool.Allocate();
        Assert.Equal(PacketPool.MaxFrameLength, pool.WritableFrame(h).Length);
        Assert.Throws<ArgumentException>(() => new byte[PacketPool.MaxFrameLength + 1].CopyTo(pool.WritableFrame(h)));
    }

    [Fact]
    public void Unicast_ipv4_to_a_mac_other_than_the_gateway_and_other_ethertypes_are_dropped()
    {
        var h = Node();
        var frame = GoodIntra();
        NodeHarness.PodMac(1).Write(frame);
        AssertDropped(h, 1, frame, DropReason.WrongDestinationMac);
        var ipv6 = GoodIntra();
        BinaryPrimitives.WriteUInt16BigEndian(ipv6.AsSpan(12), 0x86DD);
        AssertDropped(h, 1, ipv6, DropReason.UnsupportedEtherType);
        AssertGoodTrafficFlows(h);
    }

    internal static byte[] Tag(byte[] frame, ushort tpid, ushort vid)
    {
        var tagged = new byte[frame.Length + 4];
        frame.AsSpan(0, 12).CopyTo(tagged);
        BinaryPrimitives.WriteUInt16BigEndian(tagged.AsSpan(12), tpid);
        BinaryPrimitives.WriteUInt16BigEndian(tagged.AsSpan(14), vid);
        frame.AsSpan(12).CopyTo(tagged.AsSpan(16));
        return tagged;
    }

    internal static byte[] Edit(byte[] frame, SpanAction edit, bool fixChecksum, int l3 = 14)
    {
        edit(frame.AsSpan(l3));
        if (fixChecksum) FixIpChecksum(frame, l3);
        return frame;
    }

    internal delegate void SpanAction(Span<byte> ip);

    internal static void SetTotal(Span<byte> ip, ushort total) => BinaryPrimitives.WriteUInt16BigEndian(ip[2..], total);

    /// <summary>Inserts IPv4 options (a multiple of 4 bytes) after the 20-byte header, fixing IHL, total length and checksum.</summary>
    internal static byte[] WithOptions(byte[] frame, byte[] options)
    {
        var result = new byte[frame.Length + options.Length];
        frame.AsSpan(0, 34).CopyTo(result);
        options.CopyTo(result, 34);
        frame.AsSpan(34).CopyTo(result.AsSpan(34 + options.Length));
        var ip = result.AsSpan(14);
        ip[0] = (byte)(0x40 | (20 + options.Length) / 4);
        SetTotal(ip, (ushort)(BinaryPrimitives.ReadUInt16BigEndian(ip[2..]) + options.Length));
        FixIpChecksum(result, 14);
        return result;
    }
}
