using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Tables;

/// <summary>
/// The reference the route table is held to: a dictionary of rules and a linear scan that keeps the longest
/// matching prefix. Deliberately shares no code with <see cref="RouteTable"/>.
/// </summary>
internal sealed class NaiveLpm
{
    private readonly Dictionary<Ipv4Prefix, uint> _rules;

    public NaiveLpm() => _rules = [];

    private NaiveLpm(Dictionary<Ipv4Prefix, uint> rules) => _rules = new Dictionary<Ipv4Prefix, uint>(rules);

    public int Count => _rules.Count;
    public IReadOnlyDictionary<Ipv4Prefix, uint> Rules => _rules;
    public IReadOnlyList<Ipv4Prefix> Prefixes => [.. _rules.Keys];

    public void Add(Ipv4Prefix prefix, uint value) => _rules[prefix] = value;

    public bool Remove(Ipv4Prefix prefix) => _rules.Remove(prefix);

    public bool Contains(Ipv4Prefix prefix) => _rules.ContainsKey(prefix);

    public NaiveLpm Clone() => new(_rules);

    public uint Lookup(uint address)
    {
        var bestLength = -1;
        var best = RouteTable.NoRoute;
        foreach (var (prefix, value) in _rules)
        {
            // Computed here from scratch rather than with Ipv4Prefix.Contains, so the reference stands alone.
            var mask = prefix.Length == 0 ? 0u : uint.MaxValue << (32 - prefix.Length);
            if ((address & mask) == prefix.Address && prefix.Length > bestLength)
            {
                bestLength = prefix.Length;
                best = value;
            }
        }
        return best;
    }
}
