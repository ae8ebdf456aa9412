using System.Buffers.Binary;
using FastOverlay.Wire;
using Xunit;

namespace FastOverlay.Tests.Wire;

public class UdpHeaderTests
{
    /// <summary>The UDP datagram of an IPv4 vector, bounded by the IPv4 total length (padding removed).</summary>
    private static byte[] Datagram(string name, out uint source, out uint destination)
    {
        var ip = WireVectors.Ipv4(name);
        Assert.Equal(DropReason.None, Ipv4Header.Validate(ip, out var headerLength, out var totalLength));
        Assert.Equal(Ipv4Header.ProtocolUdp, Ipv4Header.Protocol(ip));
        source = Ipv4Header.Source(ip);
        destination = Ipv4Header.Destination(ip);
        return ip[headerLength..totalLength];
    }

    [Fact]
    public void FieldsAreScapys()
    {
        var udp = Datagram("eth_ipv4_udp", out _, out _);

        Assert.Equal(DropReason.None, UdpHeader.Validate(udp));
        Assert.Equal(40000, UdpHeader.SourcePort(udp));
        Assert.Equal(5201, UdpHeader.DestinationPort(udp));
        Assert.Equal(26, UdpHeader.DatagramLength(udp));
        Assert.Equal(0xFAFF, UdpHeader.Checksum(udp));
    }

    [Theory]
    [InlineData("eth_ipv4_udp", 0xFAFF)]
    [InlineData("eth_ipv4_udp_odd", 0xA3B5)]          // odd length: the last byte is padded with zero
    [InlineData("eth_ipv4_udp_padded", 0xCEF2)]       // Ethernet padding is not part of the datagram
    [InlineData("eth_ipv4_udp_checksum_ffff", 0xFFFF)] // computes to 0, sent as 0xFFFF (RFC 768)
    [InlineData("ipv4_options", 0xFAFF)]
    [InlineData("inner_frame", 0xFA00)]
    [InlineData("vxlan_udp_checksum", 0x032A)]
    [InlineData("big_df_datagram", 0xD185)]
    public void ComputeChecksumEqualsScapys(string name, int expected)
    {
        var udp = Datagram(name, out var source, out var destination);
        Assert.Equal(expected, UdpHeader.Checksum(udp));
        udp[6] = 0;
        udp[7] = 0;

        Assert.Equal(expected, UdpHeader.ComputeChecksum(source, destination, udp));
    }

    [Theory]
    [InlineData("eth_ipv4_udp")]
    [InlineData("eth_ipv4_udp_odd")]
    [InlineData("eth_ipv4_udp_padded")]
    [InlineData("eth_ipv4_udp_checksum_ffff")]
    [InlineData("eth_ipv4_udp_nochecksum")]
    [InlineData("ipv4_options_ihl15")]
    [InlineData("inner_frame")]
    [InlineData("vxlan_flannel")]
    [InlineData("vxlan_udp_checksum")]
    public void ScapysChecksumsAreAcceptable(string name)
    {
        var udp = Datagram(name, out var source, out var destination);

        Assert.True(UdpHeader.ChecksumAcceptable(source, destination, udp));
    }

    [Theory]
    [InlineData("eth_ipv4_udp")]
    [InlineData("eth_ipv4_udp_odd")]
    [InlineData("eth_ipv4_udp_checksum_ffff")]
    [InlineData("vxlan_udp_checksum")]
    public void AnyCorruptedByteOrWrongAddressIsNotAcceptable(string name)
    {
        var original = Datagram(name, out var source, out var destination);
        for (var offset = 0; offset < original.Length; offset++)
        {
            var udp = (byte[])original.Clone();
            udp[offset] ^= 0x01;
            if (offset == 6 && UdpHeader.Checksum(udp) == 0) continue; // became "no checksum"
            Assert.False(UdpHeader.ChecksumAcceptable(source, destination, udp), $"byte {offset} changed");
        }
        Assert.False(UdpHeader.ChecksumAcceptable(source, Addr.Gateway, original));
        Assert.False(UdpHeader.ChecksumAcceptable(Addr.Gateway, destination, original));
    }

    [Fact]
    public void ZeroChecksumMeansNone()
    {
        var udp = Datagram("eth_ipv4_udp_nochecksum", out var source, out var destination);
        Assert.Equal(0, UdpHeader.Checksum(udp));
        udp[^1] ^= 0xFF; // nothing to check against

        Assert.True(UdpHeader.ChecksumAcceptable(source, destination, udp));
    }

    [Theory]
    [InlineData("eth_ipv4_udp", 40000, 5201)]
    [InlineData("vxlan_flannel", 50000, 8472)]
    [InlineData("vxlan_iana_port", 50000, 4789)]
    public void WriteIsByteIdenticalToScapy(string name, int sourcePort, int destinationPort)
    {
        var udp = Datagram(name, out _, out _);
        var written = new byte[UdpHeader.Length + 2];
        Array.Fill(written, (byte)0xCC);

        UdpHeader.Write(written, (ushort)sourcePort, (ushort)destinationPort, (ushort)udp.Length, UdpHeader.Checksum(udp));

        Assert.Equal(udp[..UdpHeader.Length], written[..UdpHeader.Length]);
        Assert.Equal(new byte[] { 0xCC, 0xCC }, written[UdpHeader.Length..]);
    }

    [Fact]
    public void WriteThenComputeChecksumGivesScapysDatagram()
    {
        var expected = Datagram("eth_ipv4_udp_odd", out var source, out var destination);
        var udp = new byte[expected.Length];
        expected.AsSpan(UdpHeader.Length).CopyTo(udp.AsSpan(UdpHeader.Length));

        UdpHeader.Write(udp, 40000, 5201, (ushort)udp.Length);
        Assert.Equal(0, UdpHeader.Checksum(udp)); // the default is "no checksum"
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(6), UdpHeader.ComputeChecksum(source, destination, udp));

        Assert.Equal(expected, udp);
    }

    [Fact]
    public void TruncatedHeaderIsMalformed()
    {
        var udp = Datagram("eth_ipv4_udp", out _, out _);
        for (var length = 0; length < UdpHeader.Length; length++)
            Assert.Equal(DropReason.UdpMalformed, UdpHeader.Validate(udp.AsSpan(0, length)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(27)]    // one more than the 26 bytes there are
    [InlineData(65535)]
    public void LengthFieldLyingIsMalformed(int length)
    {
        var udp = Datagram("eth_ipv4_udp", out _, out _);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(4), (ushort)length);

        Assert.Equal(DropReason.UdpMalformed, UdpHeader.Validate(udp));
    }

    [Theory]
    [InlineData(8)]
    [InlineData(25)]
    [InlineData(26)]
    public void LengthFieldWithinThePayloadIsAccepted(int length)
    {
        var udp = Datagram("eth_ipv4_udp", out _, out _);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(4), (ushort)length);

        Assert.Equal(DropReason.None, UdpHeader.Validate(udp));
    }

    [Fact]
    public void TruncatingTheDatagramBelowItsLengthIsMalformed()
    {
        var udp = Datagram("vxlan_flannel", out _, out _);
        Assert.Equal(DropReason.None, UdpHeader.Validate(udp));
        for (var length = 0; length < udp.Length; length++)
            Assert.Equal(DropReason.UdpMalformed, UdpHeader.Validate(udp.AsSpan(0, length)));
    }
}
