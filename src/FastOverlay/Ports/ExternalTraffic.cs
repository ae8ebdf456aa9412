using FastOverlay.Config;
using FastOverlay.Wire;

namespace FastOverlay.Ports;

/// <summary>One (address, protocol, port) a Service is reached on from outside: a LoadBalancer ingress IP or an externalIP.</summary>
public readonly record struct ExternalFrontend(Ipv4Address Ip, L4Protocol Protocol, ushort Port);

/// <summary>
/// What traffic from outside the cluster belongs to this node's Services, in the one shape the external socket's
/// BPF filter (<see cref="ExternalFilter"/>) and the netfilter guard (Control.ExternalGuard) both take: NodePorts
/// on the node's public IP, per protocol, and the (IP, protocol, port) frontends of LoadBalancer and external IPs.
/// Lists are sorted and free of duplicates.
/// </summary>
public sealed record ExternalTraffic
{
    public required Ipv4Address NodeIp { get; init; }
    public IReadOnlyList<ushort> TcpNodePorts { get; init; } = [];
    public IReadOnlyList<ushort> UdpNodePorts { get; init; } = [];
    public IReadOnlyList<ExternalFrontend> Frontends { get; init; } = [];

    public bool IsEmpty => TcpNodePorts.Count == 0 && UdpNodePorts.Count == 0 && Frontends.Count == 0;

    public IReadOnlyList<ushort> NodePorts(L4Protocol protocol) => protocol == L4Protocol.Tcp ? TcpNodePorts : UdpNodePorts;

    /// <summary>
    /// The NodePorts (of NodePort and LoadBalancer Services) and frontends (externalIPs of any Service but
    /// ExternalName; ingress IPs of LoadBalancer ones) of <paramref name="services"/>. Ports the kernel must keep
    /// serving itself are left out, also when a Service names them by mistake: every healthCheckNodePort and
    /// <paramref name="kernelTcpPorts"/> (the node's proxy health port, 10256), as TCP on any address.
    /// </summary>
    public static ExternalTraffic From(Ipv4Address nodeIp, IEnumerable<ServiceConfig> services, params ReadOnlySpan<ushort> kernelTcpPorts)
    {
        var tcp = new SortedSet<ushort>();
        var udp = new SortedSet<ushort>();
        var frontends = new SortedSet<ExternalFrontend>(Comparer<ExternalFrontend>.Create(Compare));
        var kept = new HashSet<ushort>(kernelTcpPorts.ToArray());
        foreach (var service in services)
        {
            if (service.Type == ServiceType.ExternalName) continue;
            if (service.HealthCheckNodePort is { } health) kept.Add(health);
            var nodePorts = service.Type is ServiceType.NodePort or ServiceType.LoadBalancer;
            foreach (var port in service.Ports)
            {
                if (nodePorts && port.NodePort is { } nodePort) (port.Protocol == L4Protocol.Tcp ? tcp : udp).Add(nodePort);
                foreach (var ip in service.ExternalIps) frontends.Add(new ExternalFrontend(ip, port.Protocol, port.Port));
                if (service.Type != ServiceType.LoadBalancer) continue;
                foreach (var ip in service.LoadBalancerIps) frontends.Add(new ExternalFrontend(ip, port.Protocol, port.Port));
            }
        }
        tcp.ExceptWith(kept);
        frontends.RemoveWhere(f => f.Protocol == L4Protocol.Tcp && kept.Contains(f.Port));
        return new ExternalTraffic { NodeIp = nodeIp, TcpNodePorts = [.. tcp], UdpNodePorts = [.. udp], Frontends = [.. frontends] };
    }

    internal static int Compare(ExternalFrontend a, ExternalFrontend b)
    {
        var c = a.Ip.Value.CompareTo(b.Ip.Value);
        if (c != 0) return c;
        c = ((byte)a.Protocol).CompareTo((byte)b.Protocol);
        return c != 0 ? c : a.Port.CompareTo(b.Port);
    }

    public override string ToString() =>
        $"node {NodeIp}: {TcpNodePorts.Count} TCP and {UdpNodePorts.Count} UDP NodePorts, {Frontends.Count} external frontends";
}
