using System.Buffers.Binary;
using FastOverlay.Offload;
using FastOverlay.Wire;
using FsCheck.Xunit;
using Xunit;

namespace FastOverlay.Tests.Wire;

/// <summary>
/// NAT then reverse NAT is the identity on every header field, and every checksum is valid in between and after:
/// for TCP and UDP, any addresses, ports, payload and IP options, full or partial (CHECKSUM_PARTIAL) checksums.
/// </summary>
public class NatRewriteProperties
{
    public static byte[] Packet(bool tcp, uint src, uint dst, ushort sport, ushort dport, byte[] payload, int optionWords, ushort id)
    {
        var ihl = 20 + optionWords * 4;
        var l4Length = (tcp ? 20 : 8) + payload.Length;
        var ip = new byte[ihl + l4Length];
        Ipv4Header.Write(ip, (ushort)ip.Length, id, 0, 64, tcp ? Ipv4Header.ProtocolTcp : Ipv4Header.ProtocolUdp, src, dst);
        ip[0] = (byte)(0x40 | (ihl / 4));
        for (var k = 20; k < ihl; k++) ip[k] = 1; // NOP options
        Ipv4Header.UpdateChecksum(ip);
        var l4 = ip.AsSpan(ihl);
        BinaryPrimitives.WriteUInt16BigEndian(l4, sport);
        BinaryPrimitives.WriteUInt16BigEndian(l4[2..], dport);
        if (tcp)
        {
            BinaryPrimitives.WriteUInt32BigEndian(l4[4..], 0x01020304);
            l4[12] = 0x50;
            l4[13] = 0x18;
            BinaryPrimitives.WriteUInt16BigEndian(l4[14..], 512);
        }
        else BinaryPrimitives.WriteUInt16BigEndian(l4[4..], (ushort)l4Length);
        payload.CopyTo(l4[(tcp ? 20 : 8)..]);
        var sum = InternetChecksum.Finish(InternetChecksum.Add(l4, L4Checksum.PseudoHeader(src, dst, ip[9], l4Length)));
        if (!tcp && sum == 0) sum = 0xFFFF;
        BinaryPrimitives.WriteUInt16BigEndian(l4[L4Checksum.FieldOffset(ip[9])..], sum);
        return ip;
    }

    public static bool L4Valid(byte[] ip)
    {
        var ihl = Ipv4Header.HeaderLength(ip);
        var l4 = ip.AsSpan(ihl);
        var pseudo = L4Checksum.PseudoHeader(Ipv4Header.Source(ip), Ipv4Header.Destination(ip), ip[9], l4.Length);
        return InternetChecksum.FoldToNetworkOrder(InternetChecksum.Add(l4, pseudo)) == 0xFFFF;
    }

    [Property(MaxTest = 500)]
    public void Dnat_then_reverse_is_the_identity_with_valid_checksums(bool tcp, uint src, uint dst, ushort sport, ushort dport, uint backend, ushort backendPort, byte[] payload, byte options)
    {
        payload ??= [];
        var original = Packet(tcp, src, dst, sport, dport, payload, options % 11, (ushort)(src ^ dst));
        var ip = (byte[])original.Clone();

        NatRewrite.Destination(ip, backend, backendPort, partial: false);
        Assert.Equal(backend, Ipv4Header.Destination(ip));
        Assert.Equal(backendPort, BinaryPrimitives.ReadUInt16BigEndian(ip.AsSpan(Ipv4Header.HeaderLength(ip) + 2)));
        Assert.True(Ipv4Header.HeaderChecksumValid(ip, Ipv4Header.HeaderLength(ip)));
        Assert.True(L4Valid(ip));

        NatRewrite.Destination(ip, dst, dport, partial: false);
        Assert.Equal(original, ip);
    }

    [Property(MaxTest = 500)]
    public void Snat_and_dnat_together_then_reverse_is_the_identity(bool tcp, uint src, uint dst, ushort sport, ushort dport, uint backend, ushort backendPort, uint snat, ushort snatPort, byte[] payload)
    {
        payload ??= [];
        var original = Packet(tcp, src, dst, sport, dport, payload, 0, 1);
        var ip = (byte[])original.Clone();
        NatRewrite.Destination(ip, backend, backendPort, false);
        NatRewrite.Source(ip, snat, snatPort, false);
        Assert.True(Ipv4Header.HeaderChecksumValid(ip, 20));
        Assert.True(L4Valid(ip));
        NatRewrite.Source(ip, src, sport, false);
        NatRewrite.Destination(ip, dst, dport, false);
        Assert.Equal(original, ip);
    }

    /// <summary>
    /// A partial checksum (pseudo-header sum only, what a pod with checksum offload hands over) stays the right
    /// partial sum for the new addresses: finishing it afterwards gives a valid checksum.
    /// </summary>
    [Property(MaxTest = 500)]
    public void Partial_checksum_stays_the_pseudo_header_sum_of_the_new_addresses(bool tcp, uint src, uint dst, ushort sport, ushort dport, uint backend, ushort backendPort, byte[] payload)
    {
        payload ??= [];
        var ip = Packet(tcp, src, dst, sport, dport, payload, 0, 1);
        var l4Length = ip.Length - 20;
        var field = 20 + L4Checksum.FieldOffset(ip[9]);
        L4Checksum.WritePartial(ip.AsSpan(20), ip[9], L4Checksum.PseudoHeader(src, dst, ip[9], l4Length));

        NatRewrite.Destination(ip, backend, backendPort, partial: true);

        Assert.Equal(L4Checksum.PartialValue(L4Checksum.PseudoHeader(src, backend, ip[9], l4Length)), BinaryPrimitives.ReadUInt16BigEndian(ip.AsSpan(field)));
        var frame = new byte[14 + ip.Length];
        frame[12] = 0x08;
        ip.CopyTo(frame, 14);
        L4Checksum.Complete(frame);
        Assert.True(L4Valid(frame[14..]));
    }

    [Fact]
    public void Udp_without_checksum_keeps_none()
    {
        var ip = Packet(false, 0x0AF40102, 0x0A60000A, 40000, 53, [1, 2, 3], 0, 1);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(26), 0);
        NatRewrite.Destination(ip, 0x0AF40203, 5353, false);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(ip.AsSpan(26)));
        Assert.Equal(5353, BinaryPrimitives.ReadUInt16BigEndian(ip.AsSpan(22)));
        Assert.True(Ipv4Header.HeaderChecksumValid(ip, 20));
    }

    /// <summary>
    /// The data path's per-session translation (<see cref="NatTranslation"/>, deltas computed once) writes exactly
    /// the bytes the general rewrite does, for full, partial and absent (UDP 0) checksums, with IP options.
    /// </summary>
    [Property(MaxTest = 1000)]
    public void Precomputed_translation_writes_what_the_general_rewrite_writes(bool tcp, uint src, uint dst, ushort sport, ushort dport,
        uint newSrc, uint newDst, ushort newSport, ushort newDport, byte[] payload, byte options, byte checksumKind)
    {
        payload ??= [];
        var ip = Packet(tcp, src, dst, sport, dport, payload, options % 11, (ushort)(src + dst));
        var ihl = Ipv4Header.HeaderLength(ip);
        var partial = checksumKind % 3 == 1;
        if (partial) L4Checksum.WritePartial(ip.AsSpan(ihl), ip[9], L4Checksum.PseudoHeader(src, dst, ip[9], ip.Length - ihl));
        if (checksumKind % 3 == 2 && !tcp) BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(ihl + 6), 0);
        var expected = (byte[])ip.Clone();
        NatRewrite.Destination(expected, newDst, newDport, partial);
        NatRewrite.Source(expected, newSrc, newSport, partial);

        new NatTranslation(src, dst, sport, dport, newSrc, newDst, newSport, newDport).Apply(ip, ihl, partial);

        Assert.Equal(expected, ip);
    }
}
