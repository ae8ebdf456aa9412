using System.Buffers.Binary;
using FastOverlay.Wire;
using Xunit;

namespace FastOverlay.Tests.Wire;

public class ArpTests
{
    private static DropReason Parse(byte[] frame, out ArpPacket arp)
    {
        Assert.Equal(DropReason.None, Ethernet.Parse(frame, out var etherType, out var l3Offset));
        Assert.Equal(Ethernet.TypeArp, etherType);
        return ArpPacket.TryParse(frame.AsSpan(l3Offset), out arp);
    }

    [Fact]
    public void RequestFieldsAreScapys()
    {
        var frame = WireVectors.Get("arp_request");

        Assert.Equal(DropReason.None, Parse(frame, out var arp));
        Assert.Equal(ArpPacket.OpRequest, arp.Operation);
        Assert.Equal(Addr.Pod1Mac, arp.SenderMac);
        Assert.Equal(Addr.Pod1, arp.SenderIp);
        Assert.Equal(MacAddress.Zero, arp.TargetMac);
        Assert.Equal(Addr.Gateway, arp.TargetIp);
        Assert.False(arp.IsGratuitous);
    }

    [Fact]
    public void ReplyFieldsAreScapys()
    {
        var frame = WireVectors.Get("arp_reply");

        Assert.Equal(DropReason.None, Parse(frame, out var arp));
        Assert.Equal(ArpPacket.OpReply, arp.Operation);
        Assert.Equal(Addr.GatewayMac, arp.SenderMac);
        Assert.Equal(Addr.Gateway, arp.SenderIp);
        Assert.Equal(Addr.Pod1Mac, arp.TargetMac);
        Assert.Equal(Addr.Pod1, arp.TargetIp);
        Assert.False(arp.IsGratuitous);
    }

    [Fact]
    public void GratuitousArpIsRecognised()
    {
        var frame = WireVectors.Get("arp_gratuitous");

        Assert.Equal(DropReason.None, Parse(frame, out var arp));
        Assert.True(arp.IsGratuitous);
        Assert.Equal(Addr.Pod2, arp.SenderIp);
        Assert.Equal(Addr.Pod2Mac, arp.SenderMac);
    }

    [Fact]
    public void UnpaddedAndTaggedRequestsParse()
    {
        Assert.Equal(42, WireVectors.Get("arp_request_unpadded").Length);
        Assert.Equal(DropReason.None, Parse(WireVectors.Get("arp_request_unpadded"), out var arp));
        Assert.Equal(Addr.Gateway, arp.TargetIp);

        Assert.Equal(DropReason.None, Parse(WireVectors.Get("vlan_arp_request"), out var tagged));
        Assert.Equal(Addr.Pod1, tagged.SenderIp);
        Assert.Equal(Addr.Gateway, tagged.TargetIp);
    }

    [Theory]
    [InlineData("arp_op3")]
    [InlineData("arp_hwtype6")]
    [InlineData("arp_plen16")]
    public void ScapysMalformedArpIsRefused(string name)
    {
        Assert.Equal(DropReason.ArpMalformed, Parse(WireVectors.Get(name), out _));
    }

    [Theory]
    [InlineData(0, 0x01)]   // htype 0x0101
    [InlineData(1, 0x06)]   // htype 6 (IEEE 802)
    [InlineData(2, 0x86)]   // ptype 0x86dd
    [InlineData(3, 0xDD)]
    [InlineData(4, 8)]      // hlen
    [InlineData(5, 16)]     // plen
    [InlineData(7, 0)]      // op 0
    [InlineData(7, 3)]      // op 3 (RARP)
    [InlineData(6, 1)]      // op 0x0101
    public void ChangedFixedFieldIsMalformed(int offset, byte value)
    {
        var l3 = WireVectors.Get("arp_request")[Ethernet.HeaderLength..];
        l3[offset] = value;

        Assert.Equal(DropReason.ArpMalformed, ArpPacket.TryParse(l3, out _));
    }

    [Fact]
    public void TruncatedAtEveryLengthIsMalformed()
    {
        var l3 = WireVectors.Get("arp_request")[Ethernet.HeaderLength..];
        for (var length = 0; length < ArpPacket.Length; length++)
            Assert.Equal(DropReason.ArpMalformed, ArpPacket.TryParse(l3.AsSpan(0, length), out _));
        Assert.Equal(DropReason.None, ArpPacket.TryParse(l3.AsSpan(0, ArpPacket.Length), out _));
    }

    [Theory]
    [InlineData("arp_request")]
    [InlineData("arp_reply")]
    [InlineData("arp_gratuitous")]
    [InlineData("arp_op3")]
    public void WriteFrameIsByteIdenticalToScapy(string name)
    {
        var expected = WireVectors.Get(name);
        var l3 = expected.AsSpan(Ethernet.HeaderLength);
        var frame = new byte[128];
        Array.Fill(frame, (byte)0xCC); // a reused buffer: the padding must be cleared

        var length = ArpPacket.WriteFrame(frame, Ethernet.Destination(expected),
            BinaryPrimitives.ReadUInt16BigEndian(l3[6..]), MacAddress.Read(l3[8..]),
            BinaryPrimitives.ReadUInt32BigEndian(l3[14..]), MacAddress.Read(l3[18..]),
            BinaryPrimitives.ReadUInt32BigEndian(l3[24..]));

        Assert.Equal(Ethernet.MinFrameLength, length);
        Assert.Equal(expected, frame[..length]);
        Assert.All(frame[length..], b => Assert.Equal(0xCC, b));
    }

    [Fact]
    public void WriteFrameOfReplyFromTypedValues()
    {
        var frame = new byte[Ethernet.MinFrameLength];

        var length = ArpPacket.WriteFrame(frame, Addr.Pod1Mac, ArpPacket.OpReply, Addr.GatewayMac, Addr.Gateway, Addr.Pod1Mac, Addr.Pod1);

        Assert.Equal(WireVectors.Get("arp_reply"), frame[..length]);
    }

    [Fact]
    public void WriteIsByteIdenticalToScapysArpPart()
    {
        var expected = WireVectors.Get("arp_request_unpadded")[Ethernet.HeaderLength..];
        var l3 = new byte[ArpPacket.Length];

        ArpPacket.Write(l3, ArpPacket.OpRequest, Addr.Pod1Mac, Addr.Pod1, MacAddress.Zero, Addr.Gateway);

        Assert.Equal(expected, l3);
    }
}
