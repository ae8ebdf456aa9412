using FastOverlay.Config;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Tables;
using FastOverlay.Tables.Services;

namespace FastOverlay.Cluster;

/// <summary>
/// A whole cluster in one process: worker nodes each running the real <see cref="NodeForwarder"/>, pods attached
/// to them by ring ports, and an <see cref="UnderlayFabric"/> between the nodes. Every node knows every other one
/// as a peer, with the data a flannel lease carries. Polled by one thread, so one pool serves everything.
/// </summary>
public sealed class InMemoryCluster
{
    private InMemoryCluster(ClusterSpec spec, PacketPool pool, UnderlayFabric fabric, NodeForwarder[] nodes, PodEndpoint[] pods)
    {
        Spec = spec;
        Pool = pool;
        Fabric = fabric;
        Nodes = nodes;
        Pods = pods;
    }

    public ClusterSpec Spec { get; }
    public PacketPool Pool { get; }
    public UnderlayFabric Fabric { get; }
    public NodeForwarder[] Nodes { get; }
    public PodEndpoint[] Pods { get; }

    public static InMemoryCluster Create(ClusterSpec spec, NodeClock? clock = null)
    {
        var pool = new PacketPool(spec.PoolBuffers);
        var addresses = Enumerable.Range(0, spec.Workers).Select(spec.NodePublicIp).ToArray();
        var fabric = new UnderlayFabric(pool, addresses);
        var nodes = new NodeForwarder[spec.Workers];
        var pods = new List<PodEndpoint>();
        for (var n = 0; n < spec.Workers; n++)
        {
            var options = NodeOptionsFor(spec, n);
            var attachments = new List<PodAttachment>();
            var host = 2u;
            foreach (var podSpec in spec.Pods.Where(p => p.Node == n))
            {
                var ip = new Wire.Ipv4Address(options.Subnet.Address + host++);
                var (nodeEnd, podEnd) = RingPort.CreatePair($"veth-{podSpec.Name}", $"{podSpec.Name}/eth0");
                pods.Add(new PodEndpoint(podSpec.Name, options.Name, ip, options.Subnet, podEnd, pool));
                attachments.Add(new PodAttachment(nodeEnd, ip));
            }
            var peers = Enumerable.Range(0, spec.Workers).Where(p => p != n).Select(p => PeerFor(spec, p)).ToArray();
            var state = ForwardingState.Build(options, fabric.PortFor(n, $"{options.Name}/underlay"), attachments, peers);
            nodes[n] = new NodeForwarder(pool, state, clock);
        }
        return new InMemoryCluster(spec, pool, fabric, nodes, [.. pods]);
    }

    public static NodeOptions NodeOptionsFor(ClusterSpec spec, int node) => new()
    {
        Name = spec.NodeName(node),
        PublicIp = spec.NodePublicIp(node),
        Subnet = spec.NodeSubnet(node),
        VtepMac = spec.NodeVtepMac(node),
        GatewayMac = spec.NodeGatewayMac(node),
        UnderlayMac = spec.NodeUnderlayMac(node),
        Vni = spec.Vni,
        VxlanPort = spec.VxlanPort,
    };

    /// <summary>What node <paramref name="node"/>'s lease tells the others.</summary>
    public static Peer PeerFor(ClusterSpec spec, int node) =>
        new(spec.NodeName(node), spec.NodePublicIp(node), spec.NodeSubnet(node), spec.NodeVtepMac(node)) { UnderlayMac = spec.NodeUnderlayMac(node) };

    public PodEndpoint Pod(string name) => Pods.First(p => p.Name == name);

    private ConntrackSet?[]? _conntrack;

    /// <summary>The Services last set on every node.</summary>
    public IReadOnlyList<ServiceConfig> Services { get; private set; } = [];

    /// <summary>
    /// Makes <paramref name="services"/> every node's Services (each node builds its own table, as every real node
    /// does, and they agree: Maglev tables are built from sorted backends).
    /// </summary>
    public void SetServices(IReadOnlyList<ServiceConfig> services)
    {
        Services = services;
        _conntrack ??= new ConntrackSet?[Nodes.Length];
        for (var n = 0; n < Nodes.Length; n++)
        {
            var node = Nodes[n];
            var state = node.State;
            var o = state.Node;
            var settings = new ServiceTableSettings(o.Name, o.Subnet, o.PublicIp.Value, o.GatewayIp, MaglevTable.DefaultSize, 1, System.Diagnostics.Stopwatch.Frequency);
            var table = ServiceTableBuilder.Build(services, settings, state.Services);
            _conntrack[n] ??= new ConntrackSet(1, 65536, ConntrackTimeouts.Default);
            var pods = new List<PodAttachment>();
            for (var p = 1; p < state.Ports.Length; p++)
            {
                if (state.Ports[p] is { } port) pods.Add(new PodAttachment(port, state.PortAddresses[p] == 0 ? null : new Wire.Ipv4Address(state.PortAddresses[p])));
            }
            node.Publish(ForwardingState.Build(o, state.Ports[0]!, pods, state.Peers.All.ToArray(), previous: state, services: table, conntrack: _conntrack[n]));
        }
    }

    public NodeForwarder Node(string name) => Nodes.First(n => n.Name == name);

    /// <summary>Polls every node and pod once. Returns the number of frames that moved.</summary>
    public int Step()
    {
        var moved = 0;
        foreach (var node in Nodes) moved += node.Poll();
        foreach (var pod in Pods) moved += pod.Poll();
        return moved;
    }

    /// <summary>Steps until nothing moves (or a bound is hit). Returns the number of steps taken.</summary>
    public int RunUntilIdle(int maxSteps = 1000)
    {
        for (var i = 0; i < maxSteps; i++)
        {
            if (Step() == 0) return i + 1;
        }
        return maxSteps;
    }

    public PacketTracer EnableTracing(int capacity = 8192)
    {
        var tracer = new PacketTracer(capacity);
        foreach (var node in Nodes) node.Tracer = tracer;
        foreach (var pod in Pods) pod.Tracer = tracer;
        return tracer;
    }

    public void DisableTracing()
    {
        foreach (var node in Nodes) node.Tracer = null;
        foreach (var pod in Pods) pod.Tracer = null;
    }
}
