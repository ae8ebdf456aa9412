using FastOverlay.Wire;

namespace FastOverlay.Config;

/// <summary>
/// A Kubernetes Service and its endpoints, in the shape of the API's Service spec and EndpointSlice (so that a
/// later watcher of the Kubernetes API maps onto it one to one). From the config file's "Services" array, or from
/// etcd under <c>/fastoverlay/services/&lt;namespace&gt;/&lt;name&gt;</c> (the same JSON, one object per key).
/// </summary>
public sealed record ServiceConfig
{
    public required string Name { get; init; }
    public string Namespace { get; init; } = "default";
    /// <summary>Null for a headless Service (ClusterIP "None"): DNS's job, nothing in the data path.</summary>
    public Ipv4Address? ClusterIp { get; init; }
    public ServiceType Type { get; init; } = ServiceType.ClusterIP;
    public IReadOnlyList<ServicePortConfig> Ports { get; init; } = [];
    public TrafficPolicy ExternalTrafficPolicy { get; init; } = TrafficPolicy.Cluster;
    public TrafficPolicy InternalTrafficPolicy { get; init; } = TrafficPolicy.Cluster;
    public SessionAffinity SessionAffinity { get; init; } = SessionAffinity.None;
    /// <summary>sessionAffinityConfig.clientIP.timeoutSeconds: 1..86400, default 10800 (3 h).</summary>
    public int SessionAffinityTimeoutSeconds { get; init; } = DefaultAffinityTimeoutSeconds;
    /// <summary>status.loadBalancer.ingress[].ip (type LoadBalancer).</summary>
    public IReadOnlyList<Ipv4Address> LoadBalancerIps { get; init; } = [];
    /// <summary>
    /// spec.loadBalancerSourceRanges (type LoadBalancer): new flows to the LoadBalancer IPs only from these sources
    /// (kube-proxy's KUBE-FW chain); NodePorts and external IPs are not restricted, as in kube-proxy. Host bits in a
    /// range are ignored, as the API server's parser does.
    /// </summary>
    public IReadOnlyList<Ipv4Prefix> LoadBalancerSourceRanges { get; init; } = [];
    /// <summary>spec.externalIPs (any type but ExternalName).</summary>
    public IReadOnlyList<Ipv4Address> ExternalIps { get; init; } = [];
    /// <summary>spec.healthCheckNodePort: served by this node (kube-proxy's 200/503) when ExternalTrafficPolicy is Local.</summary>
    public ushort? HealthCheckNodePort { get; init; }
    /// <summary>ExternalName's target: DNS's job; the data path ignores the Service.</summary>
    public string? ExternalName { get; init; }
    public IReadOnlyList<EndpointConfig> Endpoints { get; init; } = [];

    public const int DefaultAffinityTimeoutSeconds = 10800;
    public const int MaxAffinityTimeoutSeconds = 86400;

    public string Key => $"{Namespace}/{Name}";
}

public enum ServiceType : byte { ClusterIP, NodePort, LoadBalancer, ExternalName }

public enum TrafficPolicy : byte { Cluster, Local }

public enum SessionAffinity : byte { None, ClientIP }

public enum L4Protocol : byte { Tcp = 6, Udp = 17 }

/// <summary>
/// spec.ports[]: Port on the ClusterIP (and external IPs), TargetPort on the endpoints (numeric: an EndpointSlice
/// carries numbers), NodePort on every node's public IP for NodePort and LoadBalancer Services.
/// </summary>
public sealed record ServicePortConfig(string? Name, L4Protocol Protocol, ushort Port, ushort TargetPort, ushort? NodePort);

/// <summary>
/// EndpointSlice endpoints[]: address, nodeName and conditions. <see cref="Ready"/> implies serving; a terminating
/// endpoint that still serves is used only when no ready one exists (kube-proxy's fallback, KEP-1669).
/// </summary>
public sealed record EndpointConfig(Ipv4Address Ip, string? Node, bool Ready = true, bool Serving = true, bool Terminating = false);

/// <summary>
/// Node-wide service settings ("ServiceOptions"): the NodePort range, the Maglev table size and the connection
/// tracking bounds and timeouts (defaults: netfilter's and Cilium's, see the README's services section).
/// </summary>
public sealed record ServiceOptionsConfig
{
    public int NodePortMin { get; init; } = 30000;
    public int NodePortMax { get; init; } = 32767;
    /// <summary>A prime; 16381 (Cilium's default, ~160 backends per port) or 65537 (~650).</summary>
    public int MaglevTableSize { get; init; } = 16381;
    /// <summary>Flows per worker; the table is preallocated at start.</summary>
    public int ConntrackCapacity { get; init; } = 131072;
    public int TcpSynTimeoutSeconds { get; init; } = 60;
    public int TcpEstablishedTimeoutSeconds { get; init; } = 21600;
    public int TcpClosingTimeoutSeconds { get; init; } = 10;
    public int UdpTimeoutSeconds { get; init; } = 30;
    public int UdpStreamTimeoutSeconds { get; init; } = 120;
    public int IcmpTimeoutSeconds { get; init; } = 30;
    /// <summary>Where a pod reaching itself through its Service is SNATed to; null = the node's gateway address.</summary>
    public Ipv4Address? HairpinAddress { get; init; }
}
