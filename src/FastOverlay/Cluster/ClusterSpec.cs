using FastOverlay.Wire;

namespace FastOverlay.Cluster;

public sealed record PodSpec(string Name, int Node);

/// <summary>
/// The shape of an in-memory cluster: flannel's defaults (10.244.0.0/16 split into /24 leases, VNI 1, port 8472)
/// and workers 1..N with subnets 10.244.N.0/24 and public IPs on an underlay 172.31.77.0/24.
/// </summary>
public sealed record ClusterSpec
{
    public Ipv4Prefix Network { get; init; } = Ipv4Prefix.Parse("10.244.0.0/16");
    public int Workers { get; init; } = 3;
    public required IReadOnlyList<PodSpec> Pods { get; init; }
    public uint Vni { get; init; } = 1;
    public ushort VxlanPort { get; init; } = VxlanHeader.LinuxPort;
    public int PoolBuffers { get; init; } = 32768;

    /// <summary>
    /// The seed workload: three deployments, two with 3 replicas and one with 2, spread over three workers the
    /// way the default scheduler's spreading puts them (round robin here).
    /// </summary>
    public static ClusterSpec Seed()
    {
        var pods = new List<PodSpec>();
        var next = 0;
        foreach (var (app, replicas) in new[] { ("web", 3), ("api", 3), ("cache", 2) })
        {
            for (var r = 0; r < replicas; r++) pods.Add(new PodSpec($"{app}-{r}", next++ % 3));
        }
        return new ClusterSpec { Pods = pods };
    }

    public string NodeName(int node) => $"node{node + 1}";
    public Ipv4Prefix NodeSubnet(int node) => new(Network.Address | ((uint)(node + 1) << 8), 24);
    public Ipv4Address NodePublicIp(int node) => new(0xAC1F_4D00u + (uint)node + 1);
    // Locally administered unicast MACs (second-lowest bit of the first octet set); stable per node, as flannel
    // keeps a node's VtepMAC stable across restarts.
    public MacAddress NodeVtepMac(int node) => new(0x0EFD_0000_0000UL | ((ulong)(uint)(node + 1) << 8));
    public MacAddress NodeGatewayMac(int node) => new(0x0A58_0AF4_0001UL | ((ulong)(uint)(node + 1) << 8));
    public MacAddress NodeUnderlayMac(int node) => new(0x5254_0000_0000UL | (ulong)(uint)(node + 1));
}
