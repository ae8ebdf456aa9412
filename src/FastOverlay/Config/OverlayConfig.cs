using FastOverlay.Wire;

namespace FastOverlay.Config;

/// <summary>
/// The whole node configuration from one JSON file: flannel's net-conf.json keys unchanged at the top
/// (Network, SubnetLen, Backend, and the optional ones flannel knows), plus this node's lease and pods
/// (<see cref="Node"/>) and its peers' leases (<see cref="Peers"/>, what flannel reads from etcd or Node
/// annotations). After <see cref="ConfigLoader"/> every optional value is resolved to what will be used.
/// </summary>
public sealed record OverlayConfig
{
    public required Ipv4Prefix Network { get; init; }
    /// <summary>Prefix length of every node's subnet (flannel: 24, or Network's length + 2 when Network is smaller than /22).</summary>
    public required int SubnetLen { get; init; }
    public Ipv4Address? SubnetMin { get; init; }
    public Ipv4Address? SubnetMax { get; init; }
    public required BackendConfig Backend { get; init; }
    public required NodeConfig Node { get; init; }
    public IReadOnlyList<PeerConfig> Peers { get; init; } = [];
    /// <summary>Kubernetes Services this node load-balances (ClusterIP, NodePort, LoadBalancer), with their endpoints.</summary>
    public IReadOnlyList<ServiceConfig> Services { get; init; } = [];
    public ServiceOptionsConfig ServiceOptions { get; init; } = new();
}

/// <summary>flannel's Backend section. Only Type "vxlan" is implemented; GBP, Learning and DirectRouting must stay false.</summary>
public sealed record BackendConfig
{
    public string Type { get; init; } = "vxlan";
    public uint Vni { get; init; } = 1;
    /// <summary>UDP port; flannel's 0 ("kernel default") is resolved to 8472.</summary>
    public ushort Port { get; init; } = VxlanHeader.LinuxPort;
    /// <summary>The overlay (flannel.1) MTU; when absent, the underlay interface's MTU minus 50.</summary>
    public int? Mtu { get; init; }
    public bool DirectRouting { get; init; }
    public bool Gbp { get; init; }
    public bool Learning { get; init; }
}

/// <summary>This node: its lease (PublicIP, Subnet, VtepMAC), its underlay interface and the pods on it.</summary>
public sealed record NodeConfig
{
    public required string Name { get; init; }
    public required Ipv4Address PublicIp { get; init; }
    public required Ipv4Prefix Subnet { get; init; }
    public required MacAddress VtepMac { get; init; }
    public string? Underlay { get; init; }
    /// <summary>
    /// The forwarder's end of a veth pair whose other end is the node's own network stack (what cbr0 is to flannel):
    /// host processes reach pods through it, and pods reach the node and everything outside the cluster. Null: none.
    /// </summary>
    public string? HostInterface { get; init; }
    /// <summary>The MAC pods see for their gateway; by default derived from the gateway address (see ConfigLoader).</summary>
    public MacAddress? GatewayMac { get; init; }
    public IReadOnlyList<PodConfig> Pods { get; init; } = [];

    public Ipv4Address Gateway => new(Subnet.Address + 1);
}

/// <summary>A pod: the host end of its veth and, when known, its address (which pins what it may send from).</summary>
public sealed record PodConfig(string Interface, Ipv4Address? Ip);

/// <summary>A remote node's lease, as flannel stores it.</summary>
public sealed record PeerConfig(string Name, Ipv4Address PublicIp, Ipv4Prefix Subnet, MacAddress VtepMac);

/// <summary>A configuration error, naming the field by its JSON path (e.g. <c>Peers[1].VtepMAC</c>).</summary>
public sealed class ConfigException(string path, string problem) : Exception(path.Length == 0 ? problem : $"{path}: {problem}")
{
    public string Path { get; } = path;
    public string Problem { get; } = problem;
}
