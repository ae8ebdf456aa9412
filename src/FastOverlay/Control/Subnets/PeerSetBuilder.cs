using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Control.Subnets;

/// <summary>
/// Turns the leases under <c>&lt;prefix&gt;/subnets/</c> into the peer set, skipping what flanneld's vxlan backend skips
/// (other backend types: vxlan_network.go handleSubnetEvents; our own subnet; keys and values that do not parse)
/// and what the data path cannot hold (a subnet outside Network or overlapping ours or another peer's, our own
/// PublicIP, a PublicIP already used by another lease). Each skipped key is logged once, again only if its reason
/// changes. The whole set is rebuilt every time (reconcile, not replay events: flannel #2554).
/// </summary>
public sealed class PeerSetBuilder(FlannelNetwork network, Ipv4Prefix ownSubnet, Ipv4Address ownPublicIp, TextWriter log)
{
    private readonly Dictionary<string, string> _skipped = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _notes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (byte[] Value, string? Problem, Peer? Peer)> _parsed = new(StringComparer.Ordinal);
    private Dictionary<Ipv4Prefix, Peer> _last = [];

    public IReadOnlyList<Peer> Build(IReadOnlyDictionary<string, byte[]> leases)
    {
        var candidates = new List<Peer>(leases.Count);
        var reasons = new Dictionary<string, string>(StringComparer.Ordinal);
        var ips = new HashSet<Ipv4Address>();
        foreach (var (key, value) in leases.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            // Values are kept by reference between rebuilds: parse only what changed (10,000 JSON parses per
            // rebuild would otherwise dominate a put's latency at scale).
            if (!_parsed.TryGetValue(key, out var known) || !ReferenceEquals(known.Value, value))
                _parsed[key] = known = (value, Check(key, value, out var checkedPeer), checkedPeer);
            var (_, problem, peer) = known;
            if (problem is null && !ips.Add(peer!.PublicIp)) problem = $"PublicIP {peer.PublicIp} is also another lease's";
            if (problem is null) candidates.Add(peer!);
            else reasons[key] = problem;
        }
        // Leases of different lengths may overlap: sort by first address and sweep (O(n log n) at 10,000 leases).
        candidates.Sort((a, b) => a.Subnet.First.CompareTo(b.Subnet.First));
        var peers = new List<Peer>(candidates.Count);
        foreach (var peer in candidates)
        {
            if (peers.Count > 0 && peers[^1].Subnet.Last >= peer.Subnet.First) reasons[peer.Name] = $"overlaps lease {peers[^1].Name}";
            else peers.Add(peer);
        }
        if (_parsed.Count > leases.Count)
        {
            foreach (var gone in _parsed.Keys.Where(k => !leases.ContainsKey(k)).ToList()) _parsed.Remove(gone);
        }
        LogSkips(reasons);
        LogChanges(peers);
        return peers;
    }

    private string? Check(string key, byte[] value, out Peer? peer)
    {
        peer = null;
        if (!SubnetKey.TryParse(key, out var subnet)) return "the key is not a flannel subnet key";
        if (subnet == ownSubnet) return "our own lease";
        var attrs = LeaseAttrs.TryParse(value, out var problem);
        if (attrs is null) return $"the value does not parse: {problem}";
        if (!attrs.IsVxlan) return $"BackendType \"{attrs.BackendType}\", not vxlan";
        if (attrs.VtepMac is not { } mac) return "no valid BackendData.VtepMAC";
        if (!network.Network.Contains(subnet)) return $"{subnet} is outside Network {network.Network}";
        if (subnet.Overlaps(ownSubnet)) return $"{subnet} overlaps our subnet {ownSubnet}";
        if (attrs.PublicIp == ownPublicIp) return $"PublicIP {attrs.PublicIp} is ours";
        if (attrs.PublicIp.Value == 0 || attrs.PublicIp.Value >= 0xE000_0000u) return $"PublicIP {attrs.PublicIp} is not unicast";
        if (attrs.Vni is { } vni && vni != network.Backend.Vni)
            // flanneld does not compare VNIs either; the peer's traffic will not decapsulate here, so say so.
            LogOnce(_notes, key, $"VNI {vni} differs from ours ({network.Backend.Vni}); kept as flanneld would");
        peer = new Peer(key, attrs.PublicIp, subnet, mac);
        return null;
    }

    private void LogSkips(Dictionary<string, string> reasons)
    {
        foreach (var (key, reason) in reasons) LogOnce(_skipped, key, $"skipped: {reason}");
        foreach (var key in _skipped.Keys.Where(k => !reasons.ContainsKey(k)).ToList()) _skipped.Remove(key);
    }

    private void LogOnce(Dictionary<string, string> logged, string key, string line)
    {
        if (logged.TryGetValue(key, out var before) && before == line) return;
        logged[key] = line;
        log.WriteLine($"peers: lease {key} {line}");
    }

    private void LogChanges(List<Peer> peers)
    {
        var now = peers.ToDictionary(p => p.Subnet);
        var changes = new List<string>();
        foreach (var (subnet, peer) in now)
        {
            if (!_last.TryGetValue(subnet, out var before)) changes.Add($"peers: added {subnet} at {peer.PublicIp} (VTEP {peer.VtepMac})");
            else if (before != peer) changes.Add($"peers: updated {subnet}: {before.PublicIp} {before.VtepMac} -> {peer.PublicIp} {peer.VtepMac}");
        }
        foreach (var subnet in _last.Keys.Where(s => !now.ContainsKey(s))) changes.Add($"peers: removed {subnet}");
        _last = now;
        if (changes.Count <= 8) foreach (var line in changes) log.WriteLine(line);
        else log.WriteLine($"peers: {changes.Count} changes, {peers.Count} peers now");
    }
}
