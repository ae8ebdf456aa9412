using System.Buffers.Binary;

namespace FastOverlay.Wire;

/*
 * ICMPv4 (RFC 792), the messages a gateway sends and answers:
 * +--------+--------+-----------------+
 * |  type  |  code  |    checksum     |
 * | echo: identifier | sequence       |   type 8 request, 0 reply
 * | unused | next-hop MTU (RFC 1191)  |   type 3 code 4, fragmentation needed and DF set
 * | unused (0)                        |   type 3 code 0 (net unreachable), type 11 code 0 (TTL exceeded)
 * | original IP header + first 8 bytes of its payload ...
 */
public static class Icmpv4
{
    public const int HeaderLength = 8;
    public const byte TypeEchoReply = 0;
    public const byte TypeDestinationUnreachable = 3;
    public const byte TypeEchoRequest = 8;
    public const byte TypeTimeExceeded = 11;
    public const byte CodeNetUnreachable = 0;
    public const byte CodeHostUnreachable = 1;
    public const byte CodeFragmentationNeeded = 4;

    /// <summary>RFC 792: the error carries the offending header plus 64 bits of its data.</summary>
    public const int QuotedPayloadBytes = 8;

    public static byte Type(ReadOnlySpan<byte> icmp) => icmp[0];
    public static byte Code(ReadOnlySpan<byte> icmp) => icmp[1];
    public static ushort Identifier(ReadOnlySpan<byte> icmp) => BinaryPrimitives.ReadUInt16BigEndian(icmp[4..]);
    public static ushort Sequence(ReadOnlySpan<byte> icmp) => BinaryPrimitives.ReadUInt16BigEndian(icmp[6..]);
    public static ushort NextHopMtu(ReadOnlySpan<byte> icmp) => BinaryPrimitives.ReadUInt16BigEndian(icmp[6..]);

    public static bool ChecksumValid(ReadOnlySpan<byte> icmp) => InternetChecksum.IsValid(icmp);

    /// <summary>
    /// Turns an echo request into its reply in place: type 8 becomes 0, and the checksum is patched
    /// incrementally since only the type word changed (RFC 1624).
    /// </summary>
    public static void TurnEchoIntoReply(Span<byte> icmp)
    {
        var oldWord = BinaryPrimitives.ReadUInt16BigEndian(icmp);
        icmp[0] = TypeEchoReply;
        var newWord = BinaryPrimitives.ReadUInt16BigEndian(icmp);
        var checksum = BinaryPrimitives.ReadUInt16BigEndian(icmp[2..]);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], InternetChecksum.Update(checksum, oldWord, newWord));
    }

    /// <summary>
    /// Writes an ICMP error quoting <paramref name="original"/> (its header and first 8 payload bytes).
    /// Returns the ICMP message length. <paramref name="restOfHeader"/> is the next-hop MTU for code 4, else 0.
    /// </summary>
    public static int WriteError(Span<byte> icmp, byte type, byte code, uint restOfHeader, ReadOnlySpan<byte> original)
    {
        var quoted = Math.Min(original.Length, Ipv4Header.HeaderLength(original) + QuotedPayloadBytes);
        icmp[0] = type;
        icmp[1] = code;
        icmp[2] = 0;
        icmp[3] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(icmp[4..], restOfHeader);
        original[..quoted].CopyTo(icmp[HeaderLength..]);
        var length = HeaderLength + quoted;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], InternetChecksum.Compute(icmp[..length]));
        return length;
    }

    public static void WriteEcho(Span<byte> icmp, byte type, ushort identifier, ushort sequence, ReadOnlySpan<byte> payload)
    {
        icmp[0] = type;
        icmp[1] = 0;
        icmp[2] = 0;
        icmp[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[4..], identifier);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[6..], sequence);
        payload.CopyTo(icmp[HeaderLength..]);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], InternetChecksum.Compute(icmp[..(HeaderLength + payload.Length)]));
    }
}
