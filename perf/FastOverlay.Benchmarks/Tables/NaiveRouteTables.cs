using FastOverlay.Wire;

namespace FastOverlay.Benchmarks.Tables;

/// <summary>The baselines: how C# code commonly does longest-prefix match.</summary>
internal sealed class LinearScanRoutes((Ipv4Prefix Prefix, uint Value)[] routes)
{
    public uint Lookup(uint address)
    {
        var best = -1;
        var value = uint.MaxValue;
        foreach (var (prefix, v) in routes)
        {
            if (prefix.Length > best && prefix.Contains(address))
            {
                best = prefix.Length;
                value = v;
            }
        }
        return value;
    }
}

/// <summary>One Dictionary per prefix length, probed from /32 down: up to 33 hash lookups.</summary>
internal sealed class PerLengthDictionaryRoutes
{
    private readonly Dictionary<uint, uint>[] _byLength = new Dictionary<uint, uint>[33];
    private readonly int[] _lengths;

    public PerLengthDictionaryRoutes(IEnumerable<(Ipv4Prefix Prefix, uint Value)> routes)
    {
        for (var i = 0; i <= 32; i++) _byLength[i] = [];
        foreach (var (prefix, value) in routes) _byLength[prefix.Length][prefix.Address] = value;
        _lengths = Enumerable.Range(0, 33).Reverse().Where(l => _byLength[l].Count > 0).ToArray();
    }

    public uint Lookup(uint address)
    {
        foreach (var length in _lengths)
        {
            if (_byLength[length].TryGetValue(address & Ipv4Prefix.MaskOf(length), out var value)) return value;
        }
        return uint.MaxValue;
    }
}

internal static class RouteSets
{
    /// <summary>
    /// Pod CIDRs first (10.244.0.0/16 split into /24s, as flannel leases), then random /16–/24 prefixes elsewhere
    /// with a few /25–/32, up to <paramref name="count"/> routes.
    /// </summary>
    public static (Ipv4Prefix Prefix, uint Value)[] Make(int count, int seed = 7)
    {
        var random = new Random(seed);
        var routes = new Dictionary<Ipv4Prefix, uint>();
        for (var i = 0; i < 256 && routes.Count < count; i++) routes[new Ipv4Prefix(0x0AF4_0000u | ((uint)i << 8), 24)] = (uint)routes.Count;
        while (routes.Count < count)
        {
            var length = random.Next(100) < 3 ? random.Next(25, 33) : random.Next(16, 25);
            var prefix = new Ipv4Prefix((uint)random.NextInt64(11L << 24, 224L << 24), length);
            routes.TryAdd(prefix, (uint)routes.Count % 0xFF_FFFF);
        }
        return routes.Select(kv => (kv.Key, kv.Value)).ToArray();
    }

    /// <summary>Random: each address inside a random route of the table (spread over the whole table).
    /// Clustered: all inside the pod network 10.244.0.0/16, the common case on a node.</summary>
    public static uint[] Addresses((Ipv4Prefix Prefix, uint Value)[] routes, bool clustered, int n, int seed = 11)
    {
        var random = new Random(seed);
        var result = new uint[n];
        for (var i = 0; i < n; i++)
        {
            if (clustered)
            {
                result[i] = 0x0AF4_0000u | (uint)random.Next(0, 1 << 16);
                continue;
            }
            var (prefix, _) = routes[random.Next(routes.Length)];
            result[i] = prefix.Address | ((uint)random.Next() & ~prefix.Mask);
        }
        return result;
    }
}
