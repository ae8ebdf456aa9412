using FastOverlay.Config;
using FastOverlay.Wire;

namespace FastOverlay.Tables.Services;

/// <summary>What the builder needs to know about the node and the settings.</summary>
public sealed record ServiceTableSettings(string NodeName, Ipv4Prefix NodeSubnet, uint NodeIp, uint HairpinAddress, int MaglevTableSize, int Workers, long TicksPerSecond);

/// <summary>
/// Builds the next <see cref="ServiceTable"/> from the whole desired set of Services (reconcile, not events). Runs on
/// the control thread. What stays the same keeps its identity: a service port keeps its id and counters, a backend
/// its counters, and a backend set whose members did not change keeps its Maglev table (no rebuild, O(changes)).
/// </summary>
public static class ServiceTableBuilder
{
    public static ServiceTable Build(IReadOnlyList<ServiceConfig> services, ServiceTableSettings settings, ServiceTable? previous = null)
    {
        previous ??= ServiceTable.Empty;
        var oldByLabel = new Dictionary<string, ServicePort>(StringComparer.Ordinal);
        foreach (var p in previous.Ports) oldByLabel[p.Label] = p;
        var nextId = Math.Max(1, previous.NextId);

        var ports = new List<ServicePort>();
        var cluster = new List<(ulong, int)>();
        var external = new List<(ulong, int)>();
        var nodePorts = new List<(ulong, int)>();
        var addresses = new Dictionary<ulong, int>();
        var sources = new Dictionary<ulong, int>();
        var byId = new Dictionary<uint, int>();
        foreach (var service in services)
        {
            if (service.Type == ServiceType.ExternalName) continue;
            var hasExternal = service.LoadBalancerIps.Count > 0 || service.ExternalIps.Count > 0;
            if (service.ClusterIp is null && !hasExternal) continue; // headless: DNS's job
            foreach (var spec in service.Ports)
            {
                var protocol = (byte)spec.Protocol;
                var label = $"{service.Namespace}/{service.Name}:{PortName(spec)}";
                oldByLabel.TryGetValue(label, out var old);
                var port = BuildPort(service, spec, label, old, old?.Id ?? nextId++, settings);
                var index = ports.Count;
                ports.Add(port);
                byId[port.Id] = index;
                if (service.ClusterIp is { } vip)
                {
                    cluster.Add((ServiceKeyMap.Key(vip.Value, spec.Port, protocol), index));
                    addresses.TryAdd(ServiceKeyMap.Key(vip.Value, 0, 0), ServiceTable.ClusterAddress);
                }
                foreach (var ip in service.LoadBalancerIps.Concat(service.ExternalIps))
                {
                    external.Add((ServiceKeyMap.Key(ip.Value, spec.Port, protocol), index));
                    addresses.TryAdd(ServiceKeyMap.Key(ip.Value, 0, 0), ServiceTable.ExternalAddress);
                }
                if (spec.NodePort is { } nodePort && service.Type is ServiceType.NodePort or ServiceType.LoadBalancer)
                    nodePorts.Add((ServiceKeyMap.Key(0, nodePort, protocol), index));
                foreach (var b in port.Backends) sources.TryAdd(ServiceKeyMap.Key(b.Ip, b.Port, protocol), index);
            }
        }
        return new ServiceTable(previous.Epoch + 1, [.. ports], new ServiceKeyMap(cluster), new ServiceKeyMap(external), new ServiceKeyMap(nodePorts),
            new ServiceKeyMap([.. addresses.Select(kv => (kv.Key, kv.Value))]), new ServiceKeyMap([.. sources.Select(kv => (kv.Key, kv.Value))]),
            settings.NodeIp, settings.HairpinAddress, byId, nextId);
    }

    private static ServicePort BuildPort(ServiceConfig service, ServicePortConfig spec, string label, ServicePort? old, uint id, ServiceTableSettings settings)
    {
        var oldBackends = new Dictionary<(uint, ushort), ServiceBackend>();
        if (old is not null) foreach (var b in old.Backends) oldBackends[(b.Ip, b.Port)] = b;
        var backends = new List<ServiceBackend>();
        foreach (var e in service.Endpoints)
        {
            var local = e.Node is { } node ? node == settings.NodeName : settings.NodeSubnet.Contains(e.Ip.Value);
            var counters = oldBackends.TryGetValue((e.Ip.Value, spec.TargetPort), out var was) ? was.Counters : new ServiceCounters(settings.Workers);
            backends.Add(new ServiceBackend(e.Ip.Value, spec.TargetPort, local, e.Ready, e.Ready || e.Serving, e.Terminating, counters));
        }
        backends.Sort((a, b) => (((ulong)a.Ip << 16) | a.Port).CompareTo(((ulong)b.Ip << 16) | b.Port));
        var all = backends.ToArray();

        var size = settings.MaglevTableSize;
        var clusterSet = Select(all, localOnly: false, EmptyVerdict.Reject, size, old?.Internal, old?.External, old?.ExternalFromPods);
        // kube-proxy: no endpoints at all -> REJECT; endpoints elsewhere but none here under a Local policy -> DROP.
        var localVerdict = clusterSet.IsEmpty ? EmptyVerdict.Reject : EmptyVerdict.Drop;
        var localSet = Select(all, localOnly: true, localVerdict, size, old?.Internal, old?.External, old?.ExternalFromPods);
        return new ServicePort
        {
            Id = id,
            Namespace = service.Namespace,
            Name = service.Name,
            PortName = PortName(spec),
            Protocol = (byte)spec.Protocol,
            ClusterIp = service.ClusterIp?.Value ?? 0,
            Port = spec.Port,
            NodePort = spec.NodePort ?? 0,
            TargetPort = spec.TargetPort,
            ExternalPolicy = service.ExternalTrafficPolicy,
            InternalPolicy = service.InternalTrafficPolicy,
            AffinityTicks = service.SessionAffinity == SessionAffinity.ClientIP ? service.SessionAffinityTimeoutSeconds * settings.TicksPerSecond : 0,
            Backends = all,
            Internal = service.InternalTrafficPolicy == TrafficPolicy.Local ? localSet : clusterSet,
            External = service.ExternalTrafficPolicy == TrafficPolicy.Local ? localSet : clusterSet,
            ExternalFromPods = clusterSet,
            Counters = old?.Counters ?? new ServiceCounters(settings.Workers),
            LoadBalancerIps = service.LoadBalancerSourceRanges.Count > 0 ? [.. service.LoadBalancerIps.Select(ip => ip.Value)] : [],
            SourceRanges = [.. service.LoadBalancerSourceRanges],
            SourceRangesCoverNode = service.LoadBalancerSourceRanges.Any(r => r.Contains(settings.NodeIp)),
        };
    }

    /// <summary>A port's name; an unnamed port (a Service with one port) is named by what it is.</summary>
    private static string PortName(ServicePortConfig spec) => spec.Name ?? $"{(spec.Protocol == L4Protocol.Tcp ? "TCP" : "UDP")}/{spec.Port}";

    /// <summary>Ready endpoints, or the serving terminating ones when none is ready; the table reused when the members match.</summary>
    private static BackendSet Select(ServiceBackend[] all, bool localOnly, EmptyVerdict whenEmpty, int size, params BackendSet?[] reusable)
    {
        var ready = all.Where(b => b.Ready && !b.Terminating && (!localOnly || b.Local)).ToArray();
        var members = ready.Length > 0 ? ready : all.Where(b => b.Serving && b.Terminating && (!localOnly || b.Local)).ToArray();
        if (members.Length == 0) return whenEmpty == EmptyVerdict.Reject ? BackendSet.RejectAll : BackendSet.DropAll;
        var names = members.Select(b => b.Name).ToArray();
        foreach (var old in reusable)
        {
            if (old?.Table is { } t && t.Size == size && t.Backends.SequenceEqual(names.Order(StringComparer.Ordinal)))
                return new BackendSet(Order(members, t), t, whenEmpty);
        }
        var table = MaglevTable.Build(names, size);
        return new BackendSet(Order(members, table), table, whenEmpty);
    }

    private static ServiceBackend[] Order(ServiceBackend[] members, MaglevTable table)
    {
        var byName = members.ToDictionary(b => b.Name, StringComparer.Ordinal);
        return [.. table.Backends.Select(n => byName[n])];
    }
}
