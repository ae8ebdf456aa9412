using System.Globalization;

namespace FastOverlay.Wire;

/// <summary>An IPv4 prefix in CIDR form. The address is always stored with its host bits cleared.</summary>
public readonly record struct Ipv4Prefix
{
    public Ipv4Prefix(uint address, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, 32);
        Length = length;
        Address = address & MaskOf(length);
    }

    public uint Address { get; }
    public int Length { get; }

    public uint Mask => MaskOf(Length);
    public uint First => Address;
    public uint Last => Address | ~Mask;

    public static uint MaskOf(int length) => length == 0 ? 0u : uint.MaxValue << (32 - length);

    public bool Contains(uint address) => (address & Mask) == Address;

    public bool Contains(Ipv4Prefix other) => other.Length >= Length && Contains(other.Address);

    public bool Overlaps(Ipv4Prefix other) => Contains(other) || other.Contains(this);

    public static Ipv4Prefix Parse(string text) =>
        TryParse(text, out var prefix) ? prefix : throw new FormatException($"'{text}' is not an IPv4 CIDR prefix (expected a.b.c.d/len)");

    /// <summary>Parses a.b.c.d/len; host bits must be zero, as flannel requires of Network and subnets.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out Ipv4Prefix prefix)
    {
        prefix = default;
        var slash = text.IndexOf('/');
        if (slash < 0) return false;
        if (!Ipv4Address.TryParse(text[..slash], out var address)) return false;
        if (!int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var length) || length > 32) return false;
        if ((address.Value & ~MaskOf(length)) != 0) return false;
        prefix = new Ipv4Prefix(address.Value, length);
        return true;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Ipv4Address.Format(Address)}/{Length}");
}
