using System.Buffers.Binary;

namespace FastOverlay.Wire;

/*
 * Ethernet II, with at most one IEEE 802.1Q tag:
 *  0                   6                  12      14 (16      18)
 * +-------------------+-------------------+-------+--------------+
 * | destination MAC   | source MAC        | 0x8100| TCI | type   |   tagged
 * | destination MAC   | source MAC        | type  | payload...       untagged
 */
public static class Ethernet
{
    public const int HeaderLength = 14;
    public const int VlanTagLength = 4;
    /// <summary>Smallest frame on the wire without the FCS; shorter ones are padded by the sender.</summary>
    public const int MinFrameLength = 60;

    public const ushort TypeIpv4 = 0x0800;
    public const ushort TypeArp = 0x0806;
    public const ushort TypeVlan = 0x8100;
    public const ushort TypeQinQ = 0x88A8;

    public static MacAddress Destination(ReadOnlySpan<byte> frame) => MacAddress.Read(frame);
    public static MacAddress Source(ReadOnlySpan<byte> frame) => MacAddress.Read(frame[6..]);

    /// <summary>
    /// Reads the EtherType, skipping one 802.1Q tag. Returns the offset of the L3 header, or a drop reason.
    /// A second tag (Q-in-Q) is not ours to unwrap: pod traffic is never double tagged.
    /// </summary>
    public static DropReason Parse(ReadOnlySpan<byte> frame, out ushort etherType, out int l3Offset)
    {
        etherType = 0;
        l3Offset = 0;
        if (frame.Length < HeaderLength) return DropReason.FrameTooShort;
        etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        l3Offset = HeaderLength;
        if (etherType == TypeVlan)
        {
            if (frame.Length < HeaderLength + VlanTagLength) return DropReason.FrameTooShort;
            etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[16..]);
            l3Offset = HeaderLength + VlanTagLength;
            if (etherType is TypeVlan or TypeQinQ) return DropReason.UnsupportedEtherType;
        }
        else if (etherType == TypeQinQ)
        {
            return DropReason.UnsupportedEtherType;
        }
        return DropReason.None;
    }

    public static void Write(Span<byte> frame, MacAddress destination, MacAddress source, ushort etherType)
    {
        destination.Write(frame);
        source.Write(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], etherType);
    }
}
