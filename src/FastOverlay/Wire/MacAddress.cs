using System.Buffers.Binary;
using System.Globalization;

namespace FastOverlay.Wire;

/// <summary>A 48-bit Ethernet address held in the low bits of a ulong, most significant byte first.</summary>
public readonly record struct MacAddress(ulong Value)
{
    public static readonly MacAddress Broadcast = new(0xFFFF_FFFF_FFFFUL);
    public static readonly MacAddress Zero = new(0);

    public bool IsBroadcast => Value == Broadcast.Value;

    // The I/G bit is the least significant bit of the first octet (IEEE 802-2014 s8.2).
    public bool IsMulticast => (Value & 0x0100_0000_0000UL) != 0;

    /// <summary>
    /// The six bytes as they lie in a frame, in the low 48 bits of a little-endian ulong, so the data path can
    /// compare or store a MAC with one 8-byte access (only used where <see cref="BitConverter.IsLittleEndian"/>).
    /// </summary>
    internal ulong WireBits => BinaryPrimitives.ReverseEndianness(Value << 16);

    public static MacAddress Read(ReadOnlySpan<byte> source) =>
        new(((ulong)BinaryPrimitives.ReadUInt16BigEndian(source) << 32) | BinaryPrimitives.ReadUInt32BigEndian(source[2..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)(Value >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(destination[2..], (uint)Value);
    }

    public static MacAddress Parse(string text) =>
        TryParse(text, out var mac) ? mac : throw new FormatException($"'{text}' is not a MAC address (expected six hex octets like 0a:58:0a:f4:01:00)");

    public static bool TryParse(ReadOnlySpan<char> text, out MacAddress mac)
    {
        mac = default;
        if (text.Length != 17) return false;
        ulong value = 0;
        for (var i = 0; i < 6; i++)
        {
            if (i > 0 && text[i * 3 - 1] != ':' && text[i * 3 - 1] != '-') return false;
            if (!byte.TryParse(text.Slice(i * 3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var octet)) return false;
            value = (value << 8) | octet;
        }
        mac = new MacAddress(value);
        return true;
    }

    public override string ToString() => string.Create(17, Value, static (span, v) =>
    {
        for (var i = 0; i < 6; i++)
        {
            var octet = (byte)(v >> (40 - 8 * i));
            octet.TryFormat(span[(i * 3)..], out _, "x2", CultureInfo.InvariantCulture);
            if (i < 5) span[i * 3 + 2] = ':';
        }
    });
}
