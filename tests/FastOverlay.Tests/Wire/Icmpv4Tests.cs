using System.Buffers.Binary;
using FastOverlay.Wire;
using Xunit;

namespace FastOverlay.Tests.Wire;

public class Icmpv4Tests
{
    /// <summary>The ICMP message of a vector, bounded by the IPv4 total length.</summary>
    private static byte[] Icmp(string name)
    {
        var ip = WireVectors.Ipv4(name);
        Assert.Equal(DropReason.None, Ipv4Header.Validate(ip, out var headerLength, out var totalLength));
        Assert.Equal(Ipv4Header.ProtocolIcmp, Ipv4Header.Protocol(ip));
        return ip[headerLength..totalLength];
    }

    [Fact]
    public void EchoRequestFieldsAreScapys()
    {
        var icmp = Icmp("icmp_echo_request");

        Assert.Equal(Icmpv4.TypeEchoRequest, Icmpv4.Type(icmp));
        Assert.Equal(0, Icmpv4.Code(icmp));
        Assert.Equal(0x1234, Icmpv4.Identifier(icmp));
        Assert.Equal(1, Icmpv4.Sequence(icmp));
        Assert.True(Icmpv4.ChecksumValid(icmp));
        Assert.Equal(Icmpv4.HeaderLength + 32, icmp.Length);
    }

    [Theory]
    [InlineData("icmp_echo_request")]
    [InlineData("icmp_echo_reply")]
    [InlineData("icmp_echo_request_odd")]
    [InlineData("icmp_echo_reply_odd")]
    [InlineData("icmp_frag_needed")]
    [InlineData("icmp_time_exceeded")]
    [InlineData("icmp_net_unreachable")]
    [InlineData("icmp_net_unreachable_short")]
    public void ScapysChecksumsValidateAndAnyBitErrorIsCaught(string name)
    {
        var original = Icmp(name);
        Assert.True(Icmpv4.ChecksumValid(original));
        for (var offset = 0; offset < original.Length; offset++)
        {
            var icmp = (byte[])original.Clone();
            icmp[offset] ^= 0x80;
            Assert.False(Icmpv4.ChecksumValid(icmp), $"byte {offset} changed");
        }
    }

    [Theory]
    [InlineData("icmp_echo_request", "icmp_echo_reply")]
    [InlineData("icmp_echo_request_odd", "icmp_echo_reply_odd")]
    public void TurnEchoIntoReplyGivesScapysReply(string request, string reply)
    {
        var icmp = Icmp(request);

        Icmpv4.TurnEchoIntoReply(icmp);

        Assert.Equal(Icmp(reply), icmp);
    }

    /// <summary>
    /// The whole turnaround the gateway does (IcmpResponder): MACs and addresses swapped, type 8 to 0, TTL set to
    /// 64, each checksum patched incrementally. Scapy built the reply from scratch.
    /// </summary>
    [Theory]
    [InlineData("icmp_echo_request", "icmp_echo_reply")]
    [InlineData("icmp_echo_request_odd", "icmp_echo_reply_odd")]
    public void WholeFrameTurnaroundGivesScapysReplyFrame(string request, string reply)
    {
        var frame = WireVectors.Get(request);
        var ip = frame.AsSpan(Ethernet.HeaderLength);
        var headerLength = Ipv4Header.HeaderLength(ip);

        Ethernet.Write(frame, Ethernet.Source(frame), Ethernet.Destination(frame), Ethernet.TypeIpv4);
        Icmpv4.TurnEchoIntoReply(ip[headerLength..Ipv4Header.TotalLength(ip)]);
        var requester = Ipv4Header.Source(ip);
        var local = Ipv4Header.Destination(ip);
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Header.OffsetSource..], local);
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Header.OffsetDestination..], requester);
        var oldWord = BinaryPrimitives.ReadUInt16BigEndian(ip[Ipv4Header.OffsetTtl..]);
        ip[Ipv4Header.OffsetTtl] = 64;
        var newWord = BinaryPrimitives.ReadUInt16BigEndian(ip[Ipv4Header.OffsetTtl..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Header.OffsetChecksum..], InternetChecksum.Update(Ipv4Header.Checksum(ip), oldWord, newWord));

        Assert.Equal(WireVectors.Get(reply), frame);
    }

    [Theory]
    [InlineData("icmp_echo_request", Icmpv4.TypeEchoRequest, 0x1234, 1)]
    [InlineData("icmp_echo_reply", Icmpv4.TypeEchoReply, 0x1234, 1)]
    [InlineData("icmp_echo_request_odd", Icmpv4.TypeEchoRequest, 0xFFFF, 0xFFFE)]
    [InlineData("icmp_echo_reply_odd", Icmpv4.TypeEchoReply, 0xFFFF, 0xFFFE)]
    public void WriteEchoIsByteIdenticalToScapy(string name, byte type, int identifier, int sequence)
    {
        var expected = Icmp(name);
        var payload = expected[Icmpv4.HeaderLength..];
        var written = new byte[expected.Length + 3];
        Array.Fill(written, (byte)0xCC);

        Icmpv4.WriteEcho(written, type, (ushort)identifier, (ushort)sequence, payload);

        Assert.Equal(expected, written[..expected.Length]);
        Assert.Equal(new byte[] { 0xCC, 0xCC, 0xCC }, written[expected.Length..]);
    }

    [Fact]
    public void FragmentationNeededFieldsAreScapys()
    {
        var icmp = Icmp("icmp_frag_needed");

        Assert.Equal(Icmpv4.TypeDestinationUnreachable, Icmpv4.Type(icmp));
        Assert.Equal(Icmpv4.CodeFragmentationNeeded, Icmpv4.Code(icmp));
        Assert.Equal(1450, Icmpv4.NextHopMtu(icmp));
        // The quote is the offending header and the first 8 bytes of its data.
        Assert.Equal(WireVectors.Get("big_df_datagram")[..28], icmp[Icmpv4.HeaderLength..]);
    }

    public static TheoryData<string, string, byte, byte, uint, int> ErrorCases => new()
    {
        // ICMP vector, offending datagram, type, code, rest of header, expected ICMP length
        { "icmp_frag_needed", "big_df_datagram", Icmpv4.TypeDestinationUnreachable, Icmpv4.CodeFragmentationNeeded, 1450, 8 + 20 + 8 },
        { "icmp_time_exceeded", "expiring_datagram", Icmpv4.TypeTimeExceeded, 0, 0, 8 + 20 + 8 },
        { "icmp_net_unreachable", "unroutable_datagram", Icmpv4.TypeDestinationUnreachable, Icmpv4.CodeNetUnreachable, 0, 8 + 24 + 8 },
        { "icmp_net_unreachable_short", "short_datagram", Icmpv4.TypeDestinationUnreachable, Icmpv4.CodeNetUnreachable, 0, 8 + 23 },
    };

    [Theory]
    [MemberData(nameof(ErrorCases))]
    public void WriteErrorIsByteIdenticalToScapy(string name, string original, byte type, byte code, uint restOfHeader, int expectedLength)
    {
        var expected = Icmp(name);
        var written = new byte[1600];
        Array.Fill(written, (byte)0xCC);

        var length = Icmpv4.WriteError(written, type, code, restOfHeader, WireVectors.Get(original));

        Assert.Equal(expectedLength, length);
        Assert.Equal(expected, written[..length]);
        Assert.Equal(0xCC, written[length]);
    }

    /// <summary>The error frame as IcmpResponder assembles it: ICMP first, then the IPv4 header, then Ethernet.</summary>
    [Theory]
    [MemberData(nameof(ErrorCases))]
    public void WholeErrorFrameIsByteIdenticalToScapy(string name, string original, byte type, byte code, uint restOfHeader, int expectedLength)
    {
        var offending = WireVectors.Get(original);
        var frame = new byte[1600];

        var icmpLength = Icmpv4.WriteError(frame.AsSpan(Ethernet.HeaderLength + Ipv4Header.MinLength), type, code, restOfHeader, offending);
        var total = (ushort)(Ipv4Header.MinLength + icmpLength);
        Ipv4Header.Write(frame.AsSpan(Ethernet.HeaderLength), total, 0, 0, 64, Ipv4Header.ProtocolIcmp, Addr.Gateway, Ipv4Header.Source(offending));
        Ethernet.Write(frame, Addr.Pod1Mac, Addr.GatewayMac, Ethernet.TypeIpv4);

        Assert.Equal(expectedLength, icmpLength);
        Assert.Equal(WireVectors.Get(name), frame[..(Ethernet.HeaderLength + total)]);
    }

    [Fact]
    public void WriteErrorQuotesOnlyWhatThereIs()
    {
        var original = WireVectors.Get("big_df_datagram")[..21]; // less than header + 8
        var icmp = new byte[64];

        var length = Icmpv4.WriteError(icmp, Icmpv4.TypeTimeExceeded, 0, 0, original);

        Assert.Equal(Icmpv4.HeaderLength + 21, length);
        Assert.Equal(original, icmp[Icmpv4.HeaderLength..length]);
        Assert.True(Icmpv4.ChecksumValid(icmp.AsSpan(0, length)));
    }
}
