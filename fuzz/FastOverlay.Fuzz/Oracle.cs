using System.Buffers.Binary;

namespace FastOverlay.Fuzz;

/// <summary>
/// A second, deliberately naive reading of the wire formats, written from the RFCs without the project's Wire/
/// code, so the targets can say what the node must do with an input without asking the code under test.
/// Slow and allocation-happy on purpose: clarity over speed.
/// </summary>
public static class Oracle
{
    public const ushort TypeIpv4 = 0x0800;
    public const ushort TypeArp = 0x0806;
    public const ushort TypeVlan = 0x8100;

    /// <summary>RFC 1071: the ones' complement sum of 16-bit big-endian words, folded.</summary>
    public static ushort OnesSum(ReadOnlySpan<byte> data, uint seed = 0)
    {
        var sum = seed;
        for (var i = 0; i + 1 < data.Length; i += 2) sum += (uint)(data[i] << 8 | data[i + 1]);
        if ((data.Length & 1) != 0) sum += (uint)data[^1] << 8;
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }

    /// <summary>The L3 offset after Ethernet and at most one 802.1Q tag, and the EtherType; -1 when truncated.</summary>
    public static int L3(ReadOnlySpan<byte> frame, out ushort etherType)
    {
        etherType = 0;
        if (frame.Length < 14) return -1;
        etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        if (etherType != TypeVlan) return 14;
        if (frame.Length < 18) return -1;
        etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[16..]);
        return 18;
    }

    public static ulong Mac(ReadOnlySpan<byte> b) => (ulong)BinaryPrimitives.ReadUInt16BigEndian(b) << 32 | BinaryPrimitives.ReadUInt32BigEndian(b[2..]);

    /// <summary>
    /// An IPv4 datagram a router may forward (RFC 1812 s5.2.2): version 4, IHL 5..15 within the bytes, total length
    /// covering the header and within the bytes, header checksum right. Returns the datagram (padding cut) or empty.
    /// </summary>
    public static ReadOnlySpan<byte> Ipv4(ReadOnlySpan<byte> ip)
    {
        if (ip.Length < 20 || ip[0] >> 4 != 4) return default;
        var ihl = (ip[0] & 0xF) * 4;
        if (ihl < 20 || ihl > ip.Length) return default;
        var total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        if (total < ihl || total > ip.Length) return default;
        if (OnesSum(ip[..ihl]) != 0xFFFF) return default;
        return ip[..total];
    }

    public static int Ihl(ReadOnlySpan<byte> ip) => (ip[0] & 0xF) * 4;
    public static uint Src(ReadOnlySpan<byte> ip) => BinaryPrimitives.ReadUInt32BigEndian(ip[12..]);
    public static uint Dst(ReadOnlySpan<byte> ip) => BinaryPrimitives.ReadUInt32BigEndian(ip[16..]);
    public static bool IsFragment(ReadOnlySpan<byte> ip) => (BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x3FFF) != 0;

    /// <summary>
    /// What RFC 7348 lets a VTEP accept from the underlay: Ethernet (one tag allowed) / IPv4 to
    /// <paramref name="localIp"/>, unfragmented / UDP to <paramref name="port"/>, length within the datagram,
    /// checksum zero or right / VXLAN with the I flag and <paramref name="vni"/> (other bits ignored) / an inner
    /// frame of at least an Ethernet header, bounded by the UDP length. Returns the inner frame or empty, and the
    /// outer source address.
    /// </summary>
    public static ReadOnlySpan<byte> VxlanInner(ReadOnlySpan<byte> frame, uint localIp, ushort port, uint vni, out uint outerSource)
    {
        outerSource = 0;
        var l3 = L3(frame, out var type);
        if (l3 < 0 || type != TypeIpv4) return default;
        var ip = Ipv4(frame[l3..]);
        if (ip.IsEmpty || Dst(ip) != localIp || ip[9] != 17 || IsFragment(ip)) return default;
        var udp = ip[Ihl(ip)..];
        if (udp.Length < 8) return default;
        var udpLength = BinaryPrimitives.ReadUInt16BigEndian(udp[4..]);
        if (udpLength < 8 || udpLength > udp.Length) return default;
        udp = udp[..udpLength];
        if (BinaryPrimitives.ReadUInt16BigEndian(udp[2..]) != port) return default;
        if (BinaryPrimitives.ReadUInt16BigEndian(udp[6..]) != 0)
        {
            // Pseudo-header: source, destination, zero, protocol, UDP length.
            var pseudo = (uint)(Src(ip) >> 16) + (Src(ip) & 0xFFFF) + (Dst(ip) >> 16) + (Dst(ip) & 0xFFFF) + 17 + udpLength;
            if (OnesSum(udp, pseudo) != 0xFFFF) return default;
        }
        if (udp.Length < 16 || (udp[8] & 0x08) == 0) return default;
        if (BinaryPrimitives.ReadUInt32BigEndian(udp[12..]) >> 8 != vni) return default;
        var inner = udp[16..];
        if (inner.Length < 14) return default;
        outerSource = Src(ip);
        return inner;
    }

    /// <summary>True for an ARP packet (Ethernet/IPv4, request or reply) of at least 28 bytes.</summary>
    public static bool IsArp(ReadOnlySpan<byte> arp) =>
        arp.Length >= 28 && BinaryPrimitives.ReadUInt32BigEndian(arp) == 0x0001_0800 && arp[4] == 6 && arp[5] == 4 &&
        BinaryPrimitives.ReadUInt16BigEndian(arp[6..]) is 1 or 2;

    public static ushort ArpOp(ReadOnlySpan<byte> arp) => BinaryPrimitives.ReadUInt16BigEndian(arp[6..]);
    public static ulong ArpSenderMac(ReadOnlySpan<byte> arp) => Mac(arp[8..]);
    public static uint ArpSenderIp(ReadOnlySpan<byte> arp) => BinaryPrimitives.ReadUInt32BigEndian(arp[14..]);
    public static uint ArpTargetIp(ReadOnlySpan<byte> arp) => BinaryPrimitives.ReadUInt32BigEndian(arp[24..]);
}
