using System.Buffers.Binary;
using FastOverlay.Wire;
using Xunit;

namespace FastOverlay.Tests.Wire;

public class Ipv4HeaderTests
{
    public static TheoryData<string> Ipv4Names => WireVectors.Ipv4Names;

    private static void SetTotalLength(byte[] ip, int totalLength) => BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(2), (ushort)totalLength);

    [Theory]
    [MemberData(nameof(Ipv4Names))]
    public void EveryScapyDatagramValidates(string name)
    {
        var ip = WireVectors.Ipv4(name);

        Assert.Equal(DropReason.None, Ipv4Header.Validate(ip, out var headerLength, out var totalLength));
        Assert.Equal((ip[0] & 0x0F) * 4, headerLength);
        Assert.Equal(Ipv4Header.HeaderLength(ip), headerLength);
        Assert.Equal(Ipv4Header.TotalLength(ip), totalLength);
        Assert.InRange(totalLength, headerLength, ip.Length);
        Assert.True(Ipv4Header.HeaderChecksumValid(ip, headerLength));
        Assert.True(InternetChecksum.IsValid(ip.AsSpan(0, headerLength)));
    }

    [Fact]
    public void FieldsAreScapys()
    {
        var ip = WireVectors.Ipv4("eth_ipv4_udp");

        Assert.Equal(DropReason.None, Ipv4Header.Validate(ip, out var headerLength, out var totalLength));
        Assert.Equal(20, headerLength);
        Assert.Equal(46, totalLength);
        Assert.Equal(64, Ipv4Header.Ttl(ip));
        Assert.Equal(Ipv4Header.ProtocolUdp, Ipv4Header.Protocol(ip));
        Assert.Equal(0x62D2, Ipv4Header.Checksum(ip));
        Assert.Equal(Addr.Pod1, Ipv4Header.Source(ip));
        Assert.Equal(Addr.Pod2, Ipv4Header.Destination(ip));
        Assert.Equal(0, Ipv4Header.FlagsFragment(ip));
        Assert.False(Ipv4Header.DontFragment(ip));
        Assert.False(Ipv4Header.IsFragment(ip));
        Assert.True(Ipv4Header.HasL4Header(ip));
    }

    [Fact]
    public void DontFragmentAndTosAreRead()
    {
        var ip = WireVectors.Ipv4("eth_ipv4_udp_tos_df");

        Assert.True(Ipv4Header.DontFragment(ip));
        Assert.False(Ipv4Header.IsFragment(ip));
        Assert.Equal(0xB8, ip[1]);
        Assert.Equal(Ipv4Header.FlagDontFragment, Ipv4Header.FlagsFragment(ip));
        Assert.True(Ipv4Header.DontFragment(WireVectors.Ipv4("big_df_datagram")));
        Assert.True(Ipv4Header.DontFragment(WireVectors.Ipv4("vxlan_flannel")));
    }

    [Fact]
    public void FirstFragmentCarriesTheL4Header()
    {
        var ip = WireVectors.Ipv4("ipv4_fragment_first");

        Assert.True(Ipv4Header.IsFragment(ip));
        Assert.True(Ipv4Header.HasL4Header(ip));
        Assert.False(Ipv4Header.DontFragment(ip));
        Assert.Equal(Ipv4Header.FlagMoreFragments, Ipv4Header.FlagsFragment(ip));
        Assert.Equal(40000, UdpHeader.SourcePort(ip.AsSpan(20)));
    }

    [Fact]
    public void LaterFragmentHasNoL4Header()
    {
        var ip = WireVectors.Ipv4("ipv4_fragment_later");

        Assert.True(Ipv4Header.IsFragment(ip));
        Assert.False(Ipv4Header.HasL4Header(ip));
        Assert.Equal(185, Ipv4Header.FlagsFragment(ip) & Ipv4Header.FragmentOffsetMask);
        Assert.Equal(0, Ipv4Header.FlagsFragment(ip) & Ipv4Header.FlagMoreFragments);
    }

    [Fact]
    public void TotalLengthBoundsAPaddedDatagram()
    {
        var ip = WireVectors.Ipv4("eth_ipv4_udp_padded");

        Assert.Equal(46, ip.Length);
        Assert.Equal(DropReason.None, Ipv4Header.Validate(ip, out _, out var totalLength));
        Assert.Equal(30, totalLength);
    }

    [Theory]
    [InlineData("ipv4_options", 32)]      // Record Route, IHL 8
    [InlineData("ipv4_options_ra", 24)]   // Router Alert, IHL 6
    [InlineData("ipv4_options_ihl15", 60)] // NOPs, IHL 15
    public void OptionsAreSkipped(string name, int expectedHeaderLength)
    {
        var ip = WireVectors.Ipv4(name);

        Assert.Equal(DropReason.None, Ipv4Header.Validate(ip, out var headerLength, out var totalLength));
        Assert.Equal(expectedHeaderLength, headerLength);
        var udp = ip.AsSpan(headerLength, totalLength - headerLength);
        Assert.Equal(DropReason.None, UdpHeader.Validate(udp));
        Assert.Equal(40000, UdpHeader.SourcePort(udp));
        Assert.Equal(5201, UdpHeader.DestinationPort(udp));
        Assert.True(UdpHeader.ChecksumAcceptable(Addr.Pod1, Addr.Pod2, udp));
    }

    public static TheoryData<string, ushort, ushort, ushort, byte, byte, uint, uint, byte> WriteCases => new()
    {
        { "eth_ipv4_udp", 46, 1, 0, 64, Ipv4Header.ProtocolUdp, Addr.Pod1, Addr.Pod2, 0 },
        { "eth_ipv4_udp_ttl63", 46, 1, 0, 63, Ipv4Header.ProtocolUdp, Addr.Pod1, Addr.Pod2, 0 },
        { "eth_ipv4_udp_tos_df", 46, 0xBEEF, Ipv4Header.FlagDontFragment, 64, Ipv4Header.ProtocolUdp, Addr.Pod1, Addr.Pod2, 0xB8 },
        { "ipv4_fragment_first", 60, 0x1111, Ipv4Header.FlagMoreFragments, 64, Ipv4Header.ProtocolUdp, Addr.Pod1, Addr.Pod2, 0 },
        { "ipv4_fragment_later", 52, 0x1111, 185, 64, Ipv4Header.ProtocolUdp, Addr.Pod1, Addr.Pod2, 0 },
        { "icmp_echo_request", 60, 0x4D2, 0, 64, Ipv4Header.ProtocolIcmp, Addr.Pod1, Addr.Gateway, 0 },
        { "icmp_frag_needed", 56, 0, 0, 64, Ipv4Header.ProtocolIcmp, Addr.Gateway, Addr.Pod1, 0 },
        { "vxlan_flannel", 96, 0, Ipv4Header.FlagDontFragment, 64, Ipv4Header.ProtocolUdp, Addr.Node1, Addr.Node2, 0 },
        { "big_df_datagram", 1500, 7, Ipv4Header.FlagDontFragment, 64, Ipv4Header.ProtocolUdp, Addr.Pod1, Addr.Pod2, 0 },
        { "short_datagram", 23, 11, 0, 64, Ipv4Header.ProtocolUdp, Addr.Pod1, Addr.TestNet, 0 },
    };

    [Theory]
    [MemberData(nameof(WriteCases))]
    public void WriteIsByteIdenticalToScapy(string name, ushort totalLength, ushort id, ushort flagsFragment, byte ttl, byte protocol, uint source, uint destination, byte tos)
    {
        var expected = WireVectors.Ipv4(name)[..Ipv4Header.MinLength];
        var written = new byte[Ipv4Header.MinLength + 4];
        Array.Fill(written, (byte)0xCC);

        Ipv4Header.Write(written, totalLength, id, flagsFragment, ttl, protocol, source, destination, tos);

        Assert.Equal(expected, written[..Ipv4Header.MinLength]);
        Assert.All(written[Ipv4Header.MinLength..], b => Assert.Equal(0xCC, b));
    }

    [Theory]
    [MemberData(nameof(Ipv4Names))]
    public void UpdateChecksumRecomputesScapysChecksum(string name)
    {
        var ip = WireVectors.Ipv4(name);
        var expected = (byte[])ip.Clone();
        ip[Ipv4Header.OffsetChecksum] = 0xDE;
        ip[Ipv4Header.OffsetChecksum + 1] = 0xAD;

        Ipv4Header.UpdateChecksum(ip);

        Assert.Equal(expected, ip);
    }

    [Fact]
    public void DecrementTtlGivesScapysTtl63Frame()
    {
        var frame = WireVectors.Get("eth_ipv4_udp");

        Ipv4Header.DecrementTtl(frame.AsSpan(Ethernet.HeaderLength));

        Assert.Equal(WireVectors.Get("eth_ipv4_udp_ttl63"), frame);
    }

    [Fact]
    public void DecrementTtlGivesScapysTtl1Frame()
    {
        var frame = WireVectors.Get("eth_ipv4_udp_ttl2");

        Ipv4Header.DecrementTtl(frame.AsSpan(Ethernet.HeaderLength));

        Assert.Equal(WireVectors.Get("eth_ipv4_udp_ttl1"), frame);
    }

    [Theory]
    [MemberData(nameof(Ipv4Names))]
    public void DecrementTtlDownToOneAlwaysEqualsARecomputation(string name)
    {
        var ip = WireVectors.Ipv4(name);
        var headerLength = Ipv4Header.HeaderLength(ip);
        while (Ipv4Header.Ttl(ip) > 1)
        {
            var ttl = Ipv4Header.Ttl(ip);
            Ipv4Header.DecrementTtl(ip);

            Assert.Equal(ttl - 1, Ipv4Header.Ttl(ip));
            Assert.True(Ipv4Header.HeaderChecksumValid(ip, headerLength));
            var recomputed = (byte[])ip.Clone();
            Ipv4Header.UpdateChecksum(recomputed);
            Assert.Equal(recomputed, ip);
        }
    }

    [Theory]
    [MemberData(nameof(Ipv4Names))]
    public void TruncatedAtEveryOffsetIsIpv4Truncated(string name)
    {
        var ip = WireVectors.Ipv4(name);
        var totalLength = Ipv4Header.TotalLength(ip);
        for (var length = 0; length < totalLength; length++)
        {
            Assert.Equal(DropReason.Ipv4Truncated, Ipv4Header.Validate(ip.AsSpan(0, length), out _, out _));
        }
        Assert.Equal(DropReason.None, Ipv4Header.Validate(ip.AsSpan(0, totalLength), out _, out _));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void IhlBelowFiveIsBadHeaderLength(int ihl)
    {
        var ip = WireVectors.Ipv4("eth_ipv4_udp");
        ip[0] = (byte)(0x40 | ihl);

        Assert.Equal(DropReason.Ipv4BadHeaderLength, Ipv4Header.Validate(ip, out _, out _));
    }

    [Fact]
    public void IhlPastTheEndOfTheBufferIsTruncated()
    {
        var ip = WireVectors.Ipv4("eth_ipv4_udp");
        ip[0] = 0x46; // 24 bytes of header in a 20-byte buffer
        Assert.Equal(DropReason.Ipv4Truncated, Ipv4Header.Validate(ip.AsSpan(0, 20), out _, out _));

        ip[0] = 0x4F; // 60 bytes of header in a 46-byte buffer
        Assert.Equal(DropReason.Ipv4Truncated, Ipv4Header.Validate(ip, out _, out _));

        var options = WireVectors.Ipv4("ipv4_options_ihl15");
        Assert.Equal(DropReason.Ipv4Truncated, Ipv4Header.Validate(options.AsSpan(0, 59), out _, out _));
    }

    [Theory]
    [InlineData("eth_ipv4_udp", 0)]
    [InlineData("eth_ipv4_udp", 19)]
    [InlineData("ipv4_options", 20)]   // IHL 8: at least 32
    [InlineData("ipv4_options", 31)]
    [InlineData("ipv4_options_ihl15", 59)]
    public void TotalLengthShorterThanTheHeaderIsBadTotalLength(string name, int totalLength)
    {
        var ip = WireVectors.Ipv4(name);
        SetTotalLength(ip, totalLength);
        Ipv4Header.UpdateChecksum(ip); // a consistent header: the length is what is wrong

        Assert.Equal(DropReason.Ipv4BadTotalLength, Ipv4Header.Validate(ip, out _, out _));
    }

    [Theory]
    [InlineData("eth_ipv4_udp", 47)]
    [InlineData("eth_ipv4_udp", 1500)]
    [InlineData("eth_ipv4_udp", 65535)]
    [InlineData("ipv4_options", 59)]
    [InlineData("big_df_datagram", 1501)]
    public void TotalLengthLongerThanTheBufferIsTruncated(string name, int totalLength)
    {
        var ip = WireVectors.Ipv4(name);
        SetTotalLength(ip, totalLength);
        Ipv4Header.UpdateChecksum(ip);

        Assert.Equal(DropReason.Ipv4Truncated, Ipv4Header.Validate(ip, out _, out _));
    }

    [Fact]
    public void TotalLengthShorterThanTheBufferLeavesTheRestAsPadding()
    {
        var ip = WireVectors.Ipv4("eth_ipv4_udp");
        SetTotalLength(ip, 20);
        Ipv4Header.UpdateChecksum(ip);

        Assert.Equal(DropReason.None, Ipv4Header.Validate(ip, out var headerLength, out var totalLength));
        Assert.Equal(20, headerLength);
        Assert.Equal(20, totalLength);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(15)]
    public void VersionOtherThanFourIsBadVersion(int version)
    {
        var ip = WireVectors.Ipv4("eth_ipv4_udp");
        ip[0] = (byte)(version << 4 | 5);
        Ipv4Header.UpdateChecksum(ip);

        Assert.Equal(DropReason.Ipv4BadVersion, Ipv4Header.Validate(ip, out _, out _));
    }

    [Theory]
    [InlineData("eth_ipv4_udp")]
    [InlineData("ipv4_options")]
    [InlineData("icmp_frag_needed")]
    [InlineData("vxlan_flannel")]
    public void EverySingleBitErrorOutsideTheLengthsIsBadChecksum(string name)
    {
        var original = WireVectors.Ipv4(name);
        var headerLength = Ipv4Header.HeaderLength(original);
        for (var offset = 0; offset < headerLength; offset++)
        {
            for (var bit = 0; bit < 8; bit++)
            {
                var ip = (byte[])original.Clone();
                ip[offset] ^= (byte)(1 << bit);
                var reason = Ipv4Header.Validate(ip, out _, out _);
                if (offset is 0 or 2 or 3)
                    Assert.NotEqual(DropReason.None, reason); // version, IHL or total length: some other reason may come first
                else
                    Assert.Equal(DropReason.Ipv4BadChecksum, reason);
            }
        }
    }

    [Fact]
    public void ZeroedChecksumIsBadChecksum()
    {
        var ip = WireVectors.Ipv4("eth_ipv4_udp");
        ip[Ipv4Header.OffsetChecksum] = 0;
        ip[Ipv4Header.OffsetChecksum + 1] = 0;

        Assert.Equal(DropReason.Ipv4BadChecksum, Ipv4Header.Validate(ip, out _, out _));
    }

    [Theory]
    [InlineData(0x0000_0000u, true)]  // 0.0.0.0
    [InlineData(0x00FF_FFFFu, true)]  // 0.255.255.255
    [InlineData(0xE000_0001u, true)]  // 224.0.0.1
    [InlineData(0xEFFF_FFFFu, true)]  // 239.255.255.255
    [InlineData(0xF000_0000u, true)]  // 240.0.0.0 (class E)
    [InlineData(0xFFFF_FFFFu, true)]  // broadcast
    [InlineData(0x7F00_0001u, true)]  // 127.0.0.1 (loopback, RFC 1812 s5.3.7)
    [InlineData(Addr.Pod1, false)]
    [InlineData(Addr.Node1, false)]
    [InlineData(0x0100_0000u, false)] // 1.0.0.0
    [InlineData(0xDFFF_FFFFu, false)] // 223.255.255.255
    public void MartianSources(uint source, bool martian)
    {
        Assert.Equal(martian, Ipv4Header.IsMartianSource(source));
    }
}
