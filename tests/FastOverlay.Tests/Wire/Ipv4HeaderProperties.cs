using System.Buffers.Binary;
using FastOverlay.Wire;
using FsCheck.Xunit;
using Xunit;

namespace FastOverlay.Tests.Wire;

public class Ipv4HeaderProperties
{
    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 500)]
    public void WriteThenParseIsTheIdentity(Ipv4Fields f)
    {
        var ip = new byte[Math.Max((int)f.TotalLength, Ipv4Header.MinLength)];
        Array.Fill(ip, (byte)0xA5);

        Ipv4Header.Write(ip, f.TotalLength, f.Identification, f.FlagsFragment, f.Ttl, f.Protocol, f.Source, f.Destination, f.Tos);

        var reason = Ipv4Header.Validate(ip, out var headerLength, out var totalLength);
        if (f.TotalLength < Ipv4Header.MinLength)
        {
            Assert.Equal(DropReason.Ipv4BadTotalLength, reason);
            return;
        }
        Assert.Equal(DropReason.None, reason);
        Assert.Equal(Ipv4Header.MinLength, headerLength);
        Assert.Equal(f.TotalLength, totalLength);
        Assert.Equal(f.TotalLength, Ipv4Header.TotalLength(ip));
        Assert.Equal(f.Identification, BinaryPrimitives.ReadUInt16BigEndian(ip.AsSpan(4)));
        Assert.Equal(f.FlagsFragment, Ipv4Header.FlagsFragment(ip));
        Assert.Equal((f.FlagsFragment & Ipv4Header.FlagDontFragment) != 0, Ipv4Header.DontFragment(ip));
        Assert.Equal((f.FlagsFragment & 0x3FFF) != 0, Ipv4Header.IsFragment(ip));
        Assert.Equal((f.FlagsFragment & 0x1FFF) == 0, Ipv4Header.HasL4Header(ip));
        Assert.Equal(f.Ttl, Ipv4Header.Ttl(ip));
        Assert.Equal(f.Protocol, Ipv4Header.Protocol(ip));
        Assert.Equal(f.Source, Ipv4Header.Source(ip));
        Assert.Equal(f.Destination, Ipv4Header.Destination(ip));
        Assert.Equal(f.Tos, ip[1]);
        Assert.All(ip[Ipv4Header.MinLength..], b => Assert.Equal(0xA5, b));
    }

    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 500)]
    public void DecrementTtlEqualsRecomputation(Ipv4HeaderBytes header, byte ttl)
    {
        var ip = header.Bytes;
        ip[Ipv4Header.OffsetTtl] = (byte)Math.Max((int)ttl, 1);
        Ipv4Header.UpdateChecksum(ip);
        var expected = (byte[])ip.Clone();
        expected[Ipv4Header.OffsetTtl]--;
        Ipv4Header.UpdateChecksum(expected);

        Ipv4Header.DecrementTtl(ip);

        Assert.Equal(expected, ip);
        Assert.Equal(DropReason.None, Ipv4Header.Validate(ip, out _, out _));
    }

    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 300)]
    public void GeneratedHeadersWithOptionsValidate(Ipv4HeaderBytes header)
    {
        var ip = header.Bytes;

        Assert.Equal(DropReason.None, Ipv4Header.Validate(ip, out var headerLength, out var totalLength));
        Assert.Equal(ip.Length, headerLength);
        Assert.Equal(ip.Length, totalLength);
    }

    /// <summary>Whatever the bytes, Validate answers (never throws), and a yes is only for a consistent header.</summary>
    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 1000)]
    public void ValidateNeverThrowsOnArbitraryBytes(byte[] data) => CheckValidate(data);

    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 1000)]
    public void ValidateNeverThrowsOnDamagedVectors(DamagedVector damaged)
    {
        CheckValidate(damaged.Bytes);
        if (damaged.Bytes.Length >= Ethernet.HeaderLength)
            CheckValidate(damaged.Bytes.AsSpan(Ethernet.HeaderLength));
    }

    private static void CheckValidate(ReadOnlySpan<byte> ip)
    {
        var reason = Ipv4Header.Validate(ip, out var headerLength, out var totalLength);
        if (reason != DropReason.None) return;
        Assert.Equal(4, ip[0] >> 4);
        Assert.InRange(headerLength, Ipv4Header.MinLength, 60);
        Assert.InRange(totalLength, headerLength, ip.Length);
        Assert.True(InternetChecksum.IsValid(ip[..headerLength]));
    }

    /// <summary>Every parser in Wire takes any bytes without throwing.</summary>
    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 1000)]
    public void NoParserThrowsOnDamagedVectors(DamagedVector damaged)
    {
        var frame = damaged.Bytes;
        if (Ethernet.Parse(frame, out var etherType, out var l3Offset) != DropReason.None) return;
        Assert.True(l3Offset <= frame.Length);
        var l3 = frame.AsSpan(l3Offset);
        if (etherType == Ethernet.TypeArp)
        {
            if (ArpPacket.TryParse(l3, out var arp) == DropReason.None)
                Assert.True(arp.Operation is ArpPacket.OpRequest or ArpPacket.OpReply);
            return;
        }
        if (Ipv4Header.Validate(l3, out var headerLength, out var totalLength) != DropReason.None) return;
        var payload = l3[headerLength..totalLength];
        if (Ipv4Header.Protocol(l3) != Ipv4Header.ProtocolUdp || UdpHeader.Validate(payload) != DropReason.None) return;
        _ = UdpHeader.ChecksumAcceptable(Ipv4Header.Source(l3), Ipv4Header.Destination(l3), payload[..UdpHeader.DatagramLength(payload)]);
        var vxlan = payload[UdpHeader.Length..UdpHeader.DatagramLength(payload)];
        if (VxlanHeader.Parse(vxlan, out var vni) == DropReason.None)
            Assert.InRange(vni, 0u, VxlanHeader.MaxVni);
    }
}
