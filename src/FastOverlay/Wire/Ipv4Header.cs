using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FastOverlay.Wire;

/*
 * IPv4 header (RFC 791 s3.1):
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Version|  IHL  |    DSCP/ECN   |          Total Length         |
 * |         Identification        |Flags|     Fragment Offset     |
 * |  Time to Live |    Protocol   |         Header Checksum       |
 * |                       Source Address                          |
 * |                    Destination Address                        |
 * |                    Options (IHL > 5)                          |
 */
public static class Ipv4Header
{
    public const int MinLength = 20;
    public const byte ProtocolIcmp = 1;
    public const byte ProtocolTcp = 6;
    public const byte ProtocolUdp = 17;

    public const int OffsetTotalLength = 2;
    public const int OffsetIdentification = 4;
    public const int OffsetFlagsFragment = 6;
    public const int OffsetTtl = 8;
    public const int OffsetProtocol = 9;
    public const int OffsetChecksum = 10;
    public const int OffsetSource = 12;
    public const int OffsetDestination = 16;

    public const ushort FlagDontFragment = 0x4000;
    public const ushort FlagMoreFragments = 0x2000;
    public const ushort FragmentOffsetMask = 0x1FFF;

    public static int HeaderLength(ReadOnlySpan<byte> ip) => (ip[0] & 0x0F) * 4;
    public static ushort TotalLength(ReadOnlySpan<byte> ip) => BinaryPrimitives.ReadUInt16BigEndian(ip[OffsetTotalLength..]);
    public static ushort Identification(ReadOnlySpan<byte> ip) => BinaryPrimitives.ReadUInt16BigEndian(ip[OffsetIdentification..]);
    public static ushort FlagsFragment(ReadOnlySpan<byte> ip) => BinaryPrimitives.ReadUInt16BigEndian(ip[OffsetFlagsFragment..]);
    public static bool DontFragment(ReadOnlySpan<byte> ip) => (FlagsFragment(ip) & FlagDontFragment) != 0;
    /// <summary>Any fragment but a whole datagram: MF set or a non-zero offset.</summary>
    public static bool IsFragment(ReadOnlySpan<byte> ip) => (FlagsFragment(ip) & (FlagMoreFragments | FragmentOffsetMask)) != 0;
    /// <summary>Only the first fragment (or a whole datagram) carries the L4 header.</summary>
    public static bool HasL4Header(ReadOnlySpan<byte> ip) => (FlagsFragment(ip) & FragmentOffsetMask) == 0;
    public static byte Ttl(ReadOnlySpan<byte> ip) => ip[OffsetTtl];
    public static byte Protocol(ReadOnlySpan<byte> ip) => ip[OffsetProtocol];
    public static ushort Checksum(ReadOnlySpan<byte> ip) => BinaryPrimitives.ReadUInt16BigEndian(ip[OffsetChecksum..]);
    public static uint Source(ReadOnlySpan<byte> ip) => BinaryPrimitives.ReadUInt32BigEndian(ip[OffsetSource..]);
    public static uint Destination(ReadOnlySpan<byte> ip) => BinaryPrimitives.ReadUInt32BigEndian(ip[OffsetDestination..]);

    /// <summary>
    /// Checks everything a router must check before forwarding (RFC 1812 s5.2.2): length, version, IHL, total
    /// length and header checksum. Options are allowed and skipped. On success <paramref name="totalLength"/>
    /// bounds the datagram; bytes after it are Ethernet padding.
    /// </summary>
    public static DropReason Validate(ReadOnlySpan<byte> ip, out int headerLength, out int totalLength)
    {
        headerLength = 0;
        totalLength = 0;
        if (ip.Length < MinLength) return DropReason.Ipv4Truncated;
        var vihl = ip[0];
        if (vihl >> 4 != 4) return DropReason.Ipv4BadVersion;
        headerLength = (vihl & 0x0F) * 4;
        if (headerLength < MinLength) return DropReason.Ipv4BadHeaderLength;
        if (headerLength > ip.Length) return DropReason.Ipv4Truncated;
        totalLength = BinaryPrimitives.ReadUInt16BigEndian(ip[OffsetTotalLength..]);
        if (totalLength < headerLength) return DropReason.Ipv4BadTotalLength;
        if (totalLength > ip.Length) return DropReason.Ipv4Truncated;
        if (!HeaderChecksumValid(ip, headerLength)) return DropReason.Ipv4BadChecksum;
        return DropReason.None;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool HeaderChecksumValid(ReadOnlySpan<byte> ip, int headerLength)
    {
        if (headerLength == MinLength && ip.Length >= MinLength)
        {
            // The common header without options: three loads instead of the general loop.
            ref var p = ref MemoryMarshal.GetReference(ip);
            var a = Unsafe.ReadUnaligned<ulong>(ref p);
            var b = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, 8));
            ulong sum = (a & 0xFFFF_FFFF) + (a >> 32) + (b & 0xFFFF_FFFF) + (b >> 32) + Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, 16));
            return InternetChecksum.FoldToNetworkOrder(sum) == 0xFFFF;
        }
        return InternetChecksum.FoldToNetworkOrder(InternetChecksum.Add(ip[..headerLength])) == 0xFFFF;
    }

    /// <summary>Recomputes the header checksum from scratch (for headers this node builds).</summary>
    public static void UpdateChecksum(Span<byte> ip)
    {
        var headerLength = HeaderLength(ip);
        ip[OffsetChecksum] = 0;
        ip[OffsetChecksum + 1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(ip[OffsetChecksum..], InternetChecksum.Compute(ip[..headerLength]));
    }

    /// <summary>
    /// Decrements TTL and patches the checksum incrementally (RFC 1624 eqn. 3), as every router does (RFC 1812
    /// s5.3.1). The caller has checked TTL &gt; 1.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void DecrementTtl(Span<byte> ip)
    {
        var oldWord = BinaryPrimitives.ReadUInt16BigEndian(ip[OffsetTtl..]);
        var newWord = (ushort)(oldWord - 0x0100);
        ip[OffsetTtl] = (byte)(newWord >> 8);
        var checksum = BinaryPrimitives.ReadUInt16BigEndian(ip[OffsetChecksum..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[OffsetChecksum..], InternetChecksum.Update(checksum, oldWord, newWord));
    }

    /// <summary>Writes a 20-byte header without options and fills in its checksum.</summary>
    public static void Write(Span<byte> ip, ushort totalLength, ushort identification, ushort flagsFragment, byte ttl, byte protocol, uint source, uint destination, byte tos = 0)
    {
        ip[0] = 0x45;
        ip[1] = tos;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], totalLength);
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], identification);
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], flagsFragment);
        ip[8] = ttl;
        ip[9] = protocol;
        ip[10] = 0;
        ip[11] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], source);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], destination);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], InternetChecksum.Compute(ip[..MinLength]));
    }

    /// <summary>Martian sources a router must not forward (RFC 1812 s5.3.7): 0/8, 127/8, multicast, class E, broadcast.</summary>
    public static bool IsMartianSource(uint source) => (source >> 24) is 0 or 127 || (source >> 28) >= 0xE;
}
