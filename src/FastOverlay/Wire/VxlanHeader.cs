using System.Buffers.Binary;

namespace FastOverlay.Wire;

/*
 * VXLAN header (RFC 7348 s5):
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |R|R|R|R|I|R|R|R|            Reserved                           |
 * |                VXLAN Network Identifier (VNI) |   Reserved    |
 *
 * Over IPv4 a VXLAN packet carries 50 bytes in front of the inner frame:
 * outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8.
 */
public static class VxlanHeader
{
    public const int Length = 8;
    public const byte FlagI = 0x08;
    public const uint MaxVni = 0xFF_FFFF;
    /// <summary>The port the Linux kernel and flannel use by default (kept from before the IANA assignment).</summary>
    public const ushort LinuxPort = 8472;
    /// <summary>The IANA port (RFC 7348 s5); Windows nodes need it.</summary>
    public const ushort IanaPort = 4789;
    /// <summary>Outer Ethernet + IPv4 + UDP + VXLAN.</summary>
    public const int OverheadIpv4 = Ethernet.HeaderLength + Ipv4Header.MinLength + UdpHeader.Length + Length;

    public static bool HasVniFlag(ReadOnlySpan<byte> vxlan) => (vxlan[0] & FlagI) != 0;
    public static uint Vni(ReadOnlySpan<byte> vxlan) => BinaryPrimitives.ReadUInt32BigEndian(vxlan[4..]) >> 8;

    /// <summary>
    /// RFC 7348 s5: the I flag must be set; the other flag bits and the reserved fields "MUST be set to zero on
    /// transmission and ignored on receipt", so a receiver accepts them set.
    /// </summary>
    public static DropReason Parse(ReadOnlySpan<byte> vxlan, out uint vni)
    {
        vni = 0;
        if (vxlan.Length < Length) return DropReason.UdpMalformed;
        if (!HasVniFlag(vxlan)) return DropReason.VxlanBadFlags;
        vni = Vni(vxlan);
        return DropReason.None;
    }

    public static void Write(Span<byte> vxlan, uint vni)
    {
        BinaryPrimitives.WriteUInt32BigEndian(vxlan, (uint)FlagI << 24);
        BinaryPrimitives.WriteUInt32BigEndian(vxlan[4..], vni << 8);
    }
}
