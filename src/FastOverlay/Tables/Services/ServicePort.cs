using FastOverlay.Config;
using FastOverlay.Wire;

namespace FastOverlay.Tables.Services;

/// <summary>An endpoint of a service port: the address and target port a flow is translated to, and its conditions.</summary>
public sealed class ServiceBackend(uint ip, ushort port, bool local, bool ready, bool serving, bool terminating, ServiceCounters counters)
{
    public uint Ip { get; } = ip;
    public ushort Port { get; } = port;
    /// <summary>On this node (EndpointSlice nodeName is this node, or, without one, inside this node's subnet).</summary>
    public bool Local { get; } = local;
    public bool Ready { get; } = ready;
    public bool Serving { get; } = serving;
    public bool Terminating { get; } = terminating;
    public ServiceCounters Counters { get; } = counters;
    /// <summary>The name Maglev hashes: the same on every node, so every node builds the same table.</summary>
    public string Name => $"{Wire.Ipv4Address.Format(Ip)}:{Port}";
}

/// <summary>What happens to a new flow when a backend set is empty (kube-proxy: REJECT without endpoints, DROP without local ones).</summary>
public enum EmptyVerdict : byte { Reject, Drop }

/// <summary>
/// The endpoints new flows of one traffic class may go to, and the Maglev table over them. Ready ones, or, when
/// none is ready, the serving terminating ones (kube-proxy's fallback, KEP-1669).
/// </summary>
public sealed class BackendSet(ServiceBackend[] members, MaglevTable? table, EmptyVerdict whenEmpty)
{
    public static readonly BackendSet RejectAll = new([], null, EmptyVerdict.Reject);
    public static readonly BackendSet DropAll = new([], null, EmptyVerdict.Drop);

    /// <summary>Sorted as the Maglev table's backends (by name).</summary>
    public ServiceBackend[] Members { get; } = members;
    public MaglevTable? Table { get; } = table;
    public EmptyVerdict WhenEmpty { get; } = whenEmpty;
    public bool IsEmpty => Members.Length == 0;
}

/// <summary>
/// One port of one Service, as the data path sees it: where it listens (ClusterIP:Port, NodePort, external
/// addresses), its policies, its endpoints and the backend sets new flows choose from. Immutable; part of one
/// <see cref="ServiceTable"/> version.
/// </summary>
public sealed class ServicePort
{
    public required uint Id { get; init; }
    public required string Namespace { get; init; }
    public required string Name { get; init; }
    public required string PortName { get; init; }
    public required byte Protocol { get; init; }
    /// <summary>0 for a Service without a ClusterIP (only external addresses).</summary>
    public required uint ClusterIp { get; init; }
    public required ushort Port { get; init; }
    public required ushort NodePort { get; init; }
    public required ushort TargetPort { get; init; }
    public required TrafficPolicy ExternalPolicy { get; init; }
    public required TrafficPolicy InternalPolicy { get; init; }
    /// <summary>sessionAffinity ClientIP: the timeout in clock ticks; 0 without affinity.</summary>
    public required long AffinityTicks { get; init; }
    /// <summary>Every endpoint, sorted by (IP, port): existing flows stay on one while it is serving.</summary>
    public required ServiceBackend[] Backends { get; init; }
    /// <summary>For traffic from pods to the ClusterIP (internalTrafficPolicy).</summary>
    public required BackendSet Internal { get; init; }
    /// <summary>For traffic from outside to a NodePort or external address (externalTrafficPolicy).</summary>
    public required BackendSet External { get; init; }
    /// <summary>For traffic from pods to a NodePort or external address: under Local it goes to the cluster-wide set (kube-proxy).</summary>
    public required BackendSet ExternalFromPods { get; init; }
    public required ServiceCounters Counters { get; init; }
    /// <summary>The Service's LoadBalancer IPs, which <see cref="SourceRanges"/> guard (empty: none).</summary>
    public uint[] LoadBalancerIps { get; init; } = [];
    /// <summary>loadBalancerSourceRanges (empty: every source may reach the LoadBalancer IPs).</summary>
    public Ipv4Prefix[] SourceRanges { get; init; } = [];
    /// <summary>A range covers the node's own IP: then the node and the LoadBalancer IP itself may be sources too.</summary>
    public bool SourceRangesCoverNode { get; init; }

    public bool Affinity => AffinityTicks > 0;

    /// <summary>
    /// Whether a new flow from <paramref name="source"/> to <paramref name="destination"/> is refused by
    /// loadBalancerSourceRanges: only flows to a LoadBalancer IP are checked (kube-proxy's KUBE-FW chain matches
    /// the ingress IPs, not NodePorts or external IPs); allowed are the ranges and, when a range covers the node's
    /// IP, the node and the LoadBalancer IP themselves (kube-proxy's rule for VIP-on-node setups).
    /// </summary>
    public bool RefusesSource(uint destination, uint source, uint nodeIp)
    {
        if (SourceRanges.Length == 0 || Array.IndexOf(LoadBalancerIps, destination) < 0) return false;
        foreach (var range in SourceRanges)
        {
            if (range.Contains(source)) return false;
        }
        return !(SourceRangesCoverNode && (source == nodeIp || source == destination));
    }
    public string Label => $"{Namespace}/{Name}:{PortName}";

    /// <summary>The endpoint with this address and port, or null (binary search; the control plane sorted them).</summary>
    public ServiceBackend? FindBackend(uint ip, ushort port)
    {
        var backends = Backends;
        int lo = 0, hi = backends.Length - 1;
        var key = ((ulong)ip << 16) | port;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var b = backends[mid];
            var k = ((ulong)b.Ip << 16) | b.Port;
            if (k == key) return b;
            if (k < key) lo = mid + 1;
            else hi = mid - 1;
        }
        return null;
    }
}
