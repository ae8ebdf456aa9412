using System.Buffers.Binary;
using System.Globalization;

namespace FastOverlay.Wire;

/// <summary>
/// An IPv4 address as a host-order uint (10.244.1.2 is 0x0AF40102). The data path uses the raw uint;
/// this type is for configuration, tracing and tests.
/// </summary>
public readonly record struct Ipv4Address(uint Value) : IComparable<Ipv4Address>
{
    public static Ipv4Address Read(ReadOnlySpan<byte> source) => new(BinaryPrimitives.ReadUInt32BigEndian(source));

    public void Write(Span<byte> destination) => BinaryPrimitives.WriteUInt32BigEndian(destination, Value);

    public static Ipv4Address Parse(string text) =>
        TryParse(text, out var address) ? address : throw new FormatException($"'{text}' is not an IPv4 address");

    public static bool TryParse(ReadOnlySpan<char> text, out Ipv4Address address)
    {
        address = default;
        uint value = 0;
        var parts = 0;
        while (parts < 4)
        {
            var dot = text.IndexOf('.');
            var part = dot < 0 ? text : text[..dot];
            if (part.Length is 0 or > 3 || (part.Length > 1 && part[0] == '0')) return false;
            if (!byte.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var octet)) return false;
            value = (value << 8) | octet;
            parts++;
            if (dot < 0) break;
            if (parts == 4) return false; // more after the fourth octet: "1.2.3.4.5", "1.2.3.4."
            text = text[(dot + 1)..];
        }
        if (parts != 4) return false;
        address = new Ipv4Address(value);
        return true;
    }

    public int CompareTo(Ipv4Address other) => Value.CompareTo(other.Value);

    public override string ToString() => Format(Value);

    public static string Format(uint value) =>
        string.Create(CultureInfo.InvariantCulture, $"{value >> 24}.{(value >> 16) & 0xFF}.{(value >> 8) & 0xFF}.{value & 0xFF}");
}
