using FastOverlay.Wire;
using Xunit;

namespace FastOverlay.Tests.Wire;

public class MacAddressTests
{
    [Fact]
    public void ReadAndWriteAreScapysBytes()
    {
        var frame = WireVectors.Get("arp_reply");

        Assert.Equal(Addr.Pod1Mac, MacAddress.Read(frame));
        Assert.Equal(0x0A58_0AF4_0101UL, MacAddress.Read(frame.AsSpan(6)).Value);
        var written = new byte[8];
        Addr.GatewayMac.Write(written);
        Assert.Equal(frame[6..12], written[..6]);
        Assert.Equal(new byte[2], written[6..]);
    }

    [Theory]
    [InlineData("0a:58:0a:f4:01:02", 0x0A58_0AF4_0102UL)]
    [InlineData("0A:58:0A:F4:01:02", 0x0A58_0AF4_0102UL)]
    [InlineData("0a-58-0a-f4-01-02", 0x0A58_0AF4_0102UL)]
    [InlineData("ff:ff:ff:ff:ff:ff", 0xFFFF_FFFF_FFFFUL)]
    [InlineData("00:00:00:00:00:00", 0UL)]
    public void ParseAcceptsSixHexOctets(string text, ulong value)
    {
        Assert.True(MacAddress.TryParse(text, out var mac));
        Assert.Equal(value, mac.Value);
        Assert.Equal(value, MacAddress.Parse(text).Value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0a:58:0a:f4:01")]
    [InlineData("0a:58:0a:f4:01:02:03")]
    [InlineData("0a:58:0a:f4:01:0g")]
    [InlineData("0a.58.0a.f4.01.02")]
    [InlineData("0a:58:0a:f4:01:2 ")]
    [InlineData(" a:58:0a:f4:01:02")]
    [InlineData("0a:58:0a:f4:01:+2")]
    [InlineData("0x:58:0a:f4:01:02")]
    [InlineData("0a580af40102")]
    public void ParseRejectsOtherText(string text)
    {
        Assert.False(MacAddress.TryParse(text, out _));
        Assert.Throws<FormatException>(() => MacAddress.Parse(text));
    }

    [Theory]
    [InlineData(0x0A58_0AF4_0102UL, "0a:58:0a:f4:01:02")]
    [InlineData(0xFFFF_FFFF_FFFFUL, "ff:ff:ff:ff:ff:ff")]
    [InlineData(0UL, "00:00:00:00:00:00")]
    [InlineData(0x0200_AC1F_4D01UL, "02:00:ac:1f:4d:01")]
    public void ToStringIsLowerCaseColonSeparated(ulong value, string text)
    {
        Assert.Equal(text, new MacAddress(value).ToString());
    }

    [Fact]
    public void BroadcastAndMulticast()
    {
        Assert.True(MacAddress.Broadcast.IsBroadcast);
        Assert.True(MacAddress.Broadcast.IsMulticast);
        Assert.True(MacAddress.Parse("01:00:5e:00:00:01").IsMulticast);
        Assert.True(MacAddress.Parse("33:33:00:00:00:01").IsMulticast);
        Assert.False(MacAddress.Parse("33:33:00:00:00:01").IsBroadcast);
        Assert.False(Addr.Pod1Mac.IsMulticast);
        Assert.False(MacAddress.Parse("02:00:00:00:00:00").IsMulticast); // locally administered, not group
        Assert.False(MacAddress.Zero.IsBroadcast);
    }
}

public class Ipv4AddressTests
{
    [Theory]
    [InlineData("10.244.1.2", 0x0AF4_0102u)]
    [InlineData("0.0.0.0", 0u)]
    [InlineData("255.255.255.255", 0xFFFF_FFFFu)]
    [InlineData("172.31.77.1", 0xAC1F_4D01u)]
    [InlineData("1.2.3.4", 0x0102_0304u)]
    public void ParseAndFormat(string text, uint value)
    {
        Assert.True(Ipv4Address.TryParse(text, out var address));
        Assert.Equal(value, address.Value);
        Assert.Equal(value, Ipv4Address.Parse(text).Value);
        Assert.Equal(text, address.ToString());
        Assert.Equal(text, Ipv4Address.Format(value));
    }

    [Theory]
    [InlineData("")]
    [InlineData("1.2.3")]
    [InlineData("1.2.3.4.5")]
    [InlineData("1.2.3.4.")]
    [InlineData("10.244.1.2.0")]
    [InlineData(".1.2.3")]
    [InlineData("1..2.3")]
    [InlineData("256.0.0.1")]
    [InlineData("1.2.3.1000")]
    [InlineData("01.2.3.4")]
    [InlineData("1.2.3.04")]
    [InlineData("-1.2.3.4")]
    [InlineData("+1.2.3.4")]
    [InlineData(" 1.2.3.4")]
    [InlineData("1.2.3.4 ")]
    [InlineData("1.2.3.4/32")]
    [InlineData("a.b.c.d")]
    public void ParseRejectsOtherText(string text)
    {
        Assert.False(Ipv4Address.TryParse(text, out _));
        Assert.Throws<FormatException>(() => Ipv4Address.Parse(text));
    }

    [Fact]
    public void ReadAndWriteAreScapysBytes()
    {
        var ip = WireVectors.Ipv4("vxlan_flannel");

        Assert.Equal(Addr.Node1, Ipv4Address.Read(ip.AsSpan(Ipv4Header.OffsetSource)).Value);
        var written = new byte[4];
        new Ipv4Address(Addr.Node2).Write(written);
        Assert.Equal(ip[16..20], written);
    }

    [Fact]
    public void OrdersNumerically()
    {
        Assert.True(Ipv4Address.Parse("10.244.1.2").CompareTo(Ipv4Address.Parse("10.244.1.10")) < 0);
        Assert.True(Ipv4Address.Parse("192.168.0.1").CompareTo(Ipv4Address.Parse("10.0.0.1")) > 0);
        Assert.Equal(0, Ipv4Address.Parse("10.0.0.1").CompareTo(new Ipv4Address(0x0A00_0001)));
    }
}

public class Ipv4PrefixTests
{
    [Theory]
    [InlineData("10.244.0.0/16", 0x0AF4_0000u, 16, 0xFFFF_0000u, 0x0AF4_FFFFu)]
    [InlineData("10.244.1.0/24", 0x0AF4_0100u, 24, 0xFFFF_FF00u, 0x0AF4_01FFu)]
    [InlineData("0.0.0.0/0", 0u, 0, 0u, 0xFFFF_FFFFu)]
    [InlineData("10.244.1.2/32", 0x0AF4_0102u, 32, 0xFFFF_FFFFu, 0x0AF4_0102u)]
    [InlineData("128.0.0.0/1", 0x8000_0000u, 1, 0x8000_0000u, 0xFFFF_FFFFu)]
    public void ParseGivesAddressMaskAndRange(string text, uint address, int length, uint mask, uint last)
    {
        Assert.True(Ipv4Prefix.TryParse(text, out var prefix));
        Assert.Equal(address, prefix.Address);
        Assert.Equal(length, prefix.Length);
        Assert.Equal(mask, prefix.Mask);
        Assert.Equal(address, prefix.First);
        Assert.Equal(last, prefix.Last);
        Assert.Equal(text, prefix.ToString());
        Assert.Equal(prefix, Ipv4Prefix.Parse(text));
    }

    [Theory]
    [InlineData("")]
    [InlineData("10.244.0.0")]
    [InlineData("10.244.0.0/")]
    [InlineData("10.244.0.0/33")]
    [InlineData("10.244.0.0/-1")]
    [InlineData("10.244.0.0/+16")]
    [InlineData("10.244.0.0/16 ")]
    [InlineData("10.244.0.0/1a")]
    [InlineData("10.244.1.1/16")]   // host bits set
    [InlineData("10.244.1.0/23")]
    [InlineData("10.244.0/16")]
    [InlineData("10.244.0.0.0/16")]
    [InlineData("10.244.0.0/16/8")]
    public void ParseRejectsOtherText(string text)
    {
        Assert.False(Ipv4Prefix.TryParse(text, out _));
        Assert.Throws<FormatException>(() => Ipv4Prefix.Parse(text));
    }

    [Fact]
    public void ConstructorClearsHostBitsAndChecksTheLength()
    {
        var prefix = new Ipv4Prefix(Addr.Pod1, 24);
        Assert.Equal(0x0AF4_0100u, prefix.Address);
        Assert.Equal("10.244.1.0/24", prefix.ToString());
        Assert.Throws<ArgumentOutOfRangeException>(() => new Ipv4Prefix(0, 33));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Ipv4Prefix(0, -1));
    }

    [Fact]
    public void ContainsAndOverlaps()
    {
        var cluster = Ipv4Prefix.Parse("10.244.0.0/16");
        var node1 = Ipv4Prefix.Parse("10.244.1.0/24");
        var node2 = Ipv4Prefix.Parse("10.244.2.0/24");
        var outside = Ipv4Prefix.Parse("10.245.0.0/16");

        Assert.True(cluster.Contains(Addr.Pod1));
        Assert.True(node1.Contains(Addr.Pod1));
        Assert.False(node2.Contains(Addr.Pod1));
        Assert.True(node1.Contains(0x0AF4_01FFu));
        Assert.False(node1.Contains(0x0AF4_0200u));
        Assert.True(cluster.Contains(node1));
        Assert.False(node1.Contains(cluster));
        Assert.True(cluster.Overlaps(node2));
        Assert.True(node2.Overlaps(cluster));
        Assert.False(node1.Overlaps(node2));
        Assert.False(cluster.Overlaps(outside));
        Assert.True(Ipv4Prefix.Parse("0.0.0.0/0").Contains(0xFFFF_FFFFu));
        Assert.True(Ipv4Prefix.Parse("0.0.0.0/0").Contains(outside));
    }

    [Fact]
    public void MaskOfEveryLength()
    {
        Assert.Equal(0u, Ipv4Prefix.MaskOf(0));
        for (var length = 1; length <= 32; length++)
        {
            var mask = Ipv4Prefix.MaskOf(length);
            Assert.Equal(length, System.Numerics.BitOperations.PopCount(mask));
            Assert.Equal(32 - length, System.Numerics.BitOperations.TrailingZeroCount(mask));
            Assert.Equal(length, System.Numerics.BitOperations.LeadingZeroCount(~mask));
        }
    }
}
