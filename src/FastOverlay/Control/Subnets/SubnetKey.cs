using System.Globalization;
using System.Text.RegularExpressions;
using FastOverlay.Wire;

namespace FastOverlay.Control.Subnets;

/// <summary>
/// flannel's lease key under <c>&lt;prefix&gt;/subnets/</c>: <c>10.244.1.0-24</c> (pkg/subnet/subnet.go MakeSubnetKey), or
/// with a dual-stack tail <c>10.244.1.0-24&amp;fc00::-64</c>, of which FastOverlay uses the IPv4 part.
/// </summary>
public static partial class SubnetKey
{
    public static string Format(Ipv4Prefix subnet) => string.Create(CultureInfo.InvariantCulture, $"{Ipv4Address.Format(subnet.Address)}-{subnet.Length}");

    /// <summary>flannel's ParseSubnetKey regex, unanchored at the start as flannel's is; the host bits must be zero.</summary>
    public static bool TryParse(string key, out Ipv4Prefix subnet)
    {
        subnet = default;
        var match = KeyPattern().Match(key);
        if (!match.Success) return false;
        if (!int.TryParse(match.Groups[2].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var length) || length > 32) return false;
        return Ipv4Prefix.TryParse($"{match.Groups[1].Value}/{length}", out subnet);
    }

    [GeneratedRegex(@"(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$", RegexOptions.CultureInvariant)]
    private static partial Regex KeyPattern();
}
