using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using FastOverlay.Wire;

namespace FastOverlay.Offload;

/// <summary>What checking a TCP/UDP checksum found.</summary>
public enum L4ChecksumVerdict : byte
{
    /// <summary>Not IPv4 TCP/UDP with a whole L4 header (ICMP, a fragment, ARP): nothing to check.</summary>
    NotApplicable,
    Valid,
    /// <summary>UDP over IPv4 with checksum 0: the sender chose none (RFC 768).</summary>
    Absent,
    /// <summary>The field held only the pseudo-header sum (a CHECKSUM_PARTIAL skb read off a veth); completed in place.</summary>
    Completed,
    Bad,
}

/// <summary>
/// TCP and UDP checksums over IPv4 in their three states: complete, partial (CHECKSUM_PARTIAL: the field holds the
/// folded pseudo-header sum and whoever transmits finishes it from csum_start to the end, skbuff.h) and wrong.
/// A partial checksum is what the kernel leaves for a NIC; on a veth the skb keeps it when it crosses to a packet
/// socket, a UDP socket or another namespace, so a userspace forwarder sees it and must finish it or pass the
/// "needs checksum" state on (virtio_net_hdr NEEDS_CSUM).
/// </summary>
public static class L4Checksum
{
    public const int TcpChecksumOffset = 16;
    public const int UdpChecksumOffset = 6;

    /// <summary>
    /// Finds the L4 header of an IPv4 TCP/UDP frame: its offset from the frame start, its length to the end of the
    /// IPv4 total length, the protocol and the pseudo-header sum (native order, see <see cref="InternetChecksum"/>).
    /// </summary>
    public static bool TryLocate(ReadOnlySpan<byte> frame, out int l4Offset, out int l4Length, out byte protocol, out ulong pseudo)
    {
        l4Offset = 0;
        l4Length = 0;
        protocol = 0;
        pseudo = 0;
        if (Ethernet.Parse(frame, out var etherType, out var l3) != DropReason.None || etherType != Ethernet.TypeIpv4) return false;
        var ip = frame[l3..];
        if (ip.Length < Ipv4Header.MinLength || ip[0] >> 4 != 4) return false;
        var ihl = Ipv4Header.HeaderLength(ip);
        var total = Ipv4Header.TotalLength(ip);
        if (ihl < Ipv4Header.MinLength || total < ihl || total > ip.Length || Ipv4Header.IsFragment(ip)) return false;
        protocol = Ipv4Header.Protocol(ip);
        var minimum = protocol == Ipv4Header.ProtocolTcp ? 20 : protocol == Ipv4Header.ProtocolUdp ? UdpHeader.Length : int.MaxValue;
        if (total - ihl < minimum) return false;
        l4Offset = l3 + ihl;
        l4Length = total - ihl;
        pseudo = PseudoHeader(Ipv4Header.Source(ip), Ipv4Header.Destination(ip), protocol, l4Length);
        return true;
    }

    /// <summary>The pseudo-header sum (RFC 793 s3.1, RFC 768) as a native-order partial sum, without a stack buffer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong PseudoHeader(uint source, uint destination, byte protocol, int l4Length)
    {
        // Summed as big-endian values, then swapped once: the one's complement sum commutes with byte order (RFC 1071 s2(B)).
        ulong sum = (source >> 16) + (source & 0xFFFF) + (destination >> 16) + (destination & 0xFFFF) + protocol + (uint)l4Length;
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness((ushort)sum) : sum;
    }

    /// <summary>The value a CHECKSUM_PARTIAL packet carries in its checksum field: the folded, not inverted, pseudo-header sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort PartialValue(ulong pseudo) => InternetChecksum.FoldToNetworkOrder(pseudo);

    public static int FieldOffset(byte protocol) => protocol == Ipv4Header.ProtocolTcp ? TcpChecksumOffset : UdpChecksumOffset;

    /// <summary>
    /// Finishes a partial checksum as a NIC would: the one's complement of the sum from the L4 header to the end,
    /// field included (it already holds the pseudo-header). Frames that are not IPv4 TCP/UDP are left alone.
    /// </summary>
    public static void Complete(Span<byte> frame)
    {
        if (!TryLocate(frame, out var l4Offset, out var l4Length, out var protocol, out _)) return;
        var l4 = frame.Slice(l4Offset, l4Length);
        var checksum = InternetChecksum.Compute(l4);
        // Over IPv4 a UDP checksum of 0 means "none"; a computed 0 is sent as 0xFFFF (RFC 768).
        if (protocol == Ipv4Header.ProtocolUdp && checksum == 0) checksum = 0xFFFF;
        BinaryPrimitives.WriteUInt16BigEndian(l4[FieldOffset(protocol)..], checksum);
    }

    /// <summary>Writes the partial form (pseudo-header sum only) into a TCP/UDP header, for a NEEDS_CSUM frame.</summary>
    public static void WritePartial(Span<byte> l4, byte protocol, ulong pseudo) =>
        BinaryPrimitives.WriteUInt16BigEndian(l4[FieldOffset(protocol)..], PartialValue(pseudo));

    /// <summary>
    /// Checks a received frame's TCP/UDP checksum in one pass over the data. A field that fails but equals the
    /// pseudo-header sum is a partial checksum the sending kernel left for hardware (a kernel VXLAN peer over a
    /// veth or virtio underlay hands the inner skb on CHECKSUM_PARTIAL): it is completed in place. Anything else
    /// that fails is <see cref="L4ChecksumVerdict.Bad"/>.
    /// </summary>
    public static L4ChecksumVerdict Verify(Span<byte> frame)
    {
        if (!TryLocate(frame, out var l4Offset, out var l4Length, out var protocol, out var pseudo)) return L4ChecksumVerdict.NotApplicable;
        return Verify(frame.Slice(l4Offset, l4Length), protocol, pseudo);
    }

    /// <summary>
    /// <see cref="Verify(Span{byte})"/> for an IPv4 header the caller has validated already (version, IHL, total
    /// length within the frame): no second parse on the decap path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static L4ChecksumVerdict VerifyValidated(Span<byte> ip)
    {
        var protocol = ip[Ipv4Header.OffsetProtocol];
        if (protocol != Ipv4Header.ProtocolTcp && protocol != Ipv4Header.ProtocolUdp) return L4ChecksumVerdict.NotApplicable;
        var ihl = (ip[0] & 0x0F) * 4;
        var l4Length = Ipv4Header.TotalLength(ip) - ihl;
        if (l4Length < (protocol == Ipv4Header.ProtocolTcp ? 20 : UdpHeader.Length) || Ipv4Header.IsFragment(ip)) return L4ChecksumVerdict.NotApplicable;
        var pseudo = PseudoHeader(Ipv4Header.Source(ip), Ipv4Header.Destination(ip), protocol, l4Length);
        return Verify(ip.Slice(ihl, l4Length), protocol, pseudo);
    }

    private static L4ChecksumVerdict Verify(Span<byte> l4, byte protocol, ulong pseudo)
    {
        var fieldOffset = FieldOffset(protocol);
        var field = BinaryPrimitives.ReadUInt16BigEndian(l4[fieldOffset..]);
        if (protocol == Ipv4Header.ProtocolUdp && field == 0) return L4ChecksumVerdict.Absent;
        var data = InternetChecksum.Add(l4);
        if (InternetChecksum.FoldToNetworkOrder(data + pseudo) == 0xFFFF) return L4ChecksumVerdict.Valid;
        if (field != PartialValue(pseudo)) return L4ChecksumVerdict.Bad;
        var checksum = InternetChecksum.Finish(data);
        if (protocol == Ipv4Header.ProtocolUdp && checksum == 0) checksum = 0xFFFF;
        BinaryPrimitives.WriteUInt16BigEndian(l4[fieldOffset..], checksum);
        return L4ChecksumVerdict.Completed;
    }
}
