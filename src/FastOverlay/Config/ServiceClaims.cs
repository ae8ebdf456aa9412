using FastOverlay.Wire;

namespace FastOverlay.Config;

/// <summary>
/// What Services must not share, claimed one Service at a time: the (Namespace, Name), the ClusterIP (Kubernetes
/// allocates each Service its own), every (address, protocol, port) a packet is matched on (ClusterIP, external
/// and load-balancer addresses), every (protocol, NodePort) and the health-check NodePorts (TCP). A Service whose
/// claims collide claims nothing and gets a <see cref="ConfigException"/> naming the holder: in a file the first
/// Service wins; the etcd watcher claims in creation order, so an older Service is never displaced by a newer one.
/// Headless and ExternalName Services claim only their name: the data path never sees them.
/// </summary>
public sealed class ServiceClaims
{
    private readonly Dictionary<string, string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<Ipv4Address, string> _clusterIps = [];
    private readonly Dictionary<(Ipv4Address, L4Protocol, ushort), string> _frontends = [];
    private readonly Dictionary<(L4Protocol, ushort), string> _nodePorts = [];

    /// <summary>Claims everything <paramref name="service"/> needs, or nothing when any of it is taken (then throws).</summary>
    public void Claim(ServiceConfig service, string path)
    {
        var key = service.Key;
        if (_names.TryGetValue(key, out var holder)) throw new ConfigException(Join(path, "Name"), $"'{key}' is also {Join(holder, "Name")}");
        var frontends = new List<((Ipv4Address, L4Protocol, ushort) Key, string Path)>();
        var nodePorts = new List<((L4Protocol, ushort) Key, string Path)>();
        var served = service.Type != ServiceType.ExternalName && service.ClusterIp is not null;
        if (served)
        {
            var clusterIp = service.ClusterIp!.Value;
            if (_clusterIps.TryGetValue(clusterIp, out var other))
                throw new ConfigException(Join(path, "ClusterIP"), $"{clusterIp} is also {Join(other, "ClusterIP")} (each Service has its own)");
            for (var i = 0; i < service.Ports.Count; i++)
            {
                var port = service.Ports[i];
                var at = Join(path, $"Ports[{i}]");
                frontends.Add(((clusterIp, port.Protocol, port.Port), Join(path, "ClusterIP")));
                for (var j = 0; j < service.ExternalIps.Count; j++) frontends.Add(((service.ExternalIps[j], port.Protocol, port.Port), Join(path, $"ExternalIPs[{j}]")));
                for (var j = 0; j < service.LoadBalancerIps.Count; j++) frontends.Add(((service.LoadBalancerIps[j], port.Protocol, port.Port), Join(path, $"LoadBalancerIPs[{j}]")));
                if (port.NodePort is { } nodePort) nodePorts.Add(((port.Protocol, nodePort), $"{at}.NodePort"));
            }
            if (service.HealthCheckNodePort is { } health) nodePorts.Add(((L4Protocol.Tcp, health), Join(path, "HealthCheckNodePort")));
        }

        // Checked against the earlier Services and against this one's own earlier claims, before any is kept.
        var ownFrontends = new Dictionary<(Ipv4Address, L4Protocol, ushort), string>();
        foreach (var (frontend, at) in frontends)
        {
            var taken = _frontends.GetValueOrDefault(frontend) ?? (ownFrontends.TryAdd(frontend, at) ? null : ownFrontends[frontend]);
            if (taken is not null) throw new ConfigException(at, $"{Describe(frontend)} is also served by {taken}");
        }
        var ownNodePorts = new Dictionary<(L4Protocol, ushort), string>();
        foreach (var (nodePort, at) in nodePorts)
        {
            var taken = _nodePorts.GetValueOrDefault(nodePort) ?? (ownNodePorts.TryAdd(nodePort, at) ? null : ownNodePorts[nodePort]);
            if (taken is not null) throw new ConfigException(at, $"{nodePort.Item2}/{ServiceConfigValidator.Name(nodePort.Item1)} is also {taken}");
        }

        _names[key] = path;
        if (served) _clusterIps[service.ClusterIp!.Value] = path;
        foreach (var (frontend, at) in frontends) _frontends[frontend] = at;
        foreach (var (nodePort, at) in nodePorts) _nodePorts[nodePort] = at;
    }

    private static string Describe((Ipv4Address Ip, L4Protocol Protocol, ushort Port) f) => $"{f.Ip}:{f.Port}/{ServiceConfigValidator.Name(f.Protocol)}";

    private static string Join(string path, string key) => JsonFields.Join(path, key);
}
