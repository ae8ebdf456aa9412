using FastOverlay.Wire;
using Xunit;

namespace FastOverlay.Tests.Wire;

public class EthernetTests
{
    [Theory]
    [InlineData("eth_ipv4_udp", Ethernet.TypeIpv4, 14)]
    [InlineData("icmp_echo_request", Ethernet.TypeIpv4, 14)]
    [InlineData("arp_request", Ethernet.TypeArp, 14)]
    [InlineData("arp_request_unpadded", Ethernet.TypeArp, 14)]
    [InlineData("vlan_ipv4_udp", Ethernet.TypeIpv4, 18)]
    [InlineData("vlan_arp_request", Ethernet.TypeArp, 18)]
    [InlineData("vxlan_flannel", Ethernet.TypeIpv4, 14)]
    public void ParseFindsEtherTypeAndL3Offset(string name, ushort expectedType, int expectedOffset)
    {
        var frame = WireVectors.Get(name);

        Assert.Equal(DropReason.None, Ethernet.Parse(frame, out var etherType, out var l3Offset));
        Assert.Equal(expectedType, etherType);
        Assert.Equal(expectedOffset, l3Offset);
    }

    [Fact]
    public void ParseUntaggedFrameReadsScapyAddresses()
    {
        var frame = WireVectors.Get("eth_ipv4_udp");

        Assert.Equal(Addr.GatewayMac, Ethernet.Destination(frame));
        Assert.Equal(Addr.Pod1Mac, Ethernet.Source(frame));
        // The L3 offset points at a real IPv4 header.
        Ethernet.Parse(frame, out _, out var l3Offset);
        Assert.Equal(0x45, frame[l3Offset]);
    }

    [Fact]
    public void ParseTaggedFrameSkipsTheTagAndKeepsTheAddresses()
    {
        var frame = WireVectors.Get("vlan_ipv4_udp");

        Assert.Equal(DropReason.None, Ethernet.Parse(frame, out _, out var l3Offset));
        Assert.Equal(Addr.GatewayMac, Ethernet.Destination(frame));
        Assert.Equal(Addr.Pod1Mac, Ethernet.Source(frame));
        // The L3 part of the tagged frame is the untagged frame's L3 part, byte for byte.
        Assert.Equal(WireVectors.Ip("eth_ipv4_udp"), frame[l3Offset..]);
    }

    [Fact]
    public void BroadcastDestinationOfArpRequest()
    {
        var frame = WireVectors.Get("arp_request");

        Assert.True(Ethernet.Destination(frame).IsBroadcast);
        Assert.True(Ethernet.Destination(frame).IsMulticast);
        Assert.False(Ethernet.Source(frame).IsMulticast);
    }

    [Theory]
    [InlineData("qinq")]          // 0x8100 then 0x8100
    [InlineData("qinq_8021ad")]   // 0x88a8 outer S-tag
    [InlineData("vlan_8021ad_inner")] // 0x8100 then 0x88a8
    public void DoubleTaggedFramesAreRefused(string name)
    {
        var frame = WireVectors.Get(name);

        Assert.Equal(DropReason.UnsupportedEtherType, Ethernet.Parse(frame, out _, out _));
    }

    [Fact]
    public void OtherEtherTypesAreReportedNotRefused()
    {
        // Parse only unwraps the header; whether 0x86dd is wanted is the caller's decision.
        var frame = WireVectors.Get("eth_ipv6_type");

        Assert.Equal(DropReason.None, Ethernet.Parse(frame, out var etherType, out var l3Offset));
        Assert.Equal(0x86DD, etherType);
        Assert.Equal(14, l3Offset);
    }

    [Fact]
    public void RuntsAreTooShortAtEveryLength()
    {
        var frame = WireVectors.Get("eth_ipv4_udp");
        for (var length = 0; length < Ethernet.HeaderLength; length++)
            Assert.Equal(DropReason.FrameTooShort, Ethernet.Parse(frame.AsSpan(0, length), out _, out _));
        Assert.Equal(DropReason.None, Ethernet.Parse(frame.AsSpan(0, Ethernet.HeaderLength), out _, out _));
    }

    [Fact]
    public void TaggedRuntsAreTooShortUntilTheInnerTypeIsThere()
    {
        var frame = WireVectors.Get("vlan_ipv4_udp");
        for (var length = 0; length < Ethernet.HeaderLength + Ethernet.VlanTagLength; length++)
            Assert.Equal(DropReason.FrameTooShort, Ethernet.Parse(frame.AsSpan(0, length), out _, out _));
        Assert.Equal(DropReason.None, Ethernet.Parse(frame.AsSpan(0, 18), out var etherType, out var l3Offset));
        Assert.Equal(Ethernet.TypeIpv4, etherType);
        Assert.Equal(18, l3Offset);
    }

    [Theory]
    [InlineData("eth_ipv4_udp")]
    [InlineData("arp_reply")]
    [InlineData("icmp_frag_needed")]
    [InlineData("vxlan_flannel")]
    [InlineData("inner_frame")]
    public void WriteProducesScapyHeader(string name)
    {
        var expected = WireVectors.Get(name);
        var written = new byte[Ethernet.HeaderLength];
        Array.Fill(written, (byte)0xCC);

        Ethernet.Write(written, MacAddress.Read(expected), MacAddress.Read(expected.AsSpan(6)), (ushort)(expected[12] << 8 | expected[13]));

        Assert.Equal(expected[..Ethernet.HeaderLength], written);
    }

    [Fact]
    public void HeaderConstantsMatchTheWire()
    {
        Assert.Equal(14, Ethernet.HeaderLength);
        Assert.Equal(60, Ethernet.MinFrameLength);
        Assert.Equal(60, WireVectors.Get("eth_ipv4_udp").Length);
    }
}
