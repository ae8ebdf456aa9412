using FastOverlay.Ports;
using FastOverlay.Tables;
using FastOverlay.Tables.Services;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline;

/// <summary>A pod's port on the node. The IP and MAC, when known, pin what the port may send.</summary>
public sealed record PodAttachment(IPacketPort Port, Ipv4Address? Ip = null);

/// <summary>
/// Everything the data path reads, as one immutable version: routes, peers, their encap templates and the ports.
/// The control plane builds a new version and swaps one reference; the forwarder reads it once per poll, so a
/// burst never sees routes from one version and peers from another.
/// </summary>
public sealed class ForwardingState
{
    public const int UnderlayPort = 0;

    private ForwardingState(NodeOptions node, RouteTable routes, PeerTable peers, EncapTemplate[] templates, IPacketPort?[] ports, uint[] portAddresses, long version,
        ServiceTable services, ConntrackSet? conntrack, int externalPort, int hostPort)
    {
        HostPort = hostPort;
        Services = services;
        Conntrack = conntrack;
        ExternalPort = externalPort;
        Node = node;
        Routes = routes;
        Peers = peers;
        Templates = templates;
        Ports = ports;
        PortAddresses = portAddresses;
        Version = version;
    }

    public NodeOptions Node { get; }
    public RouteTable Routes { get; }
    public PeerTable Peers { get; }
    public EncapTemplate[] Templates { get; }
    /// <summary>Index 0 is the underlay; pod ports follow. A removed port leaves a null so ids stay stable.</summary>
    public IPacketPort?[] Ports { get; }
    /// <summary>The configured pod address per port (0 when the pod's address is learned, not configured).</summary>
    public uint[] PortAddresses { get; }
    public long Version { get; }
    /// <summary>The Services this node load-balances (shared by every worker's state of one build).</summary>
    public ServiceTable Services { get; }
    /// <summary>The node's flow tables; null until a Service exists (nothing is preallocated for a node without).</summary>
    public ConntrackSet? Conntrack { get; }
    /// <summary>The port id of the external port (NodePort and external-address traffic from outside), or -1.</summary>
    public int ExternalPort { get; }
    /// <summary>The port id of the host port (the node's own stack), or -1: then nothing outside the cluster is reachable.</summary>
    public int HostPort { get; }
    /// <summary>The node's own address on the overlay (the subnet's first address), behind the host port.</summary>
    public uint HostAddress => Node.Subnet.First;

    public int PortId(IPacketPort port) => Array.IndexOf(Ports, port);

    /// <summary>
    /// Builds a version from the whole desired state (reconcile, not apply events: a missed event can never
    /// leave a stale route behind, flannel #2554). Unchanged routes keep their table chunks; ports keep their ids.
    /// </summary>
    public static ForwardingState Build(NodeOptions node, IPacketPort underlay, IReadOnlyList<PodAttachment> pods, IReadOnlyList<Peer> peers, IReadOnlyList<(Ipv4Prefix Prefix, RouteKind Kind)>? extraRoutes = null, ForwardingState? previous = null,
        ServiceTable? services = null, ConntrackSet? conntrack = null, IPacketPort? external = null, IPacketPort? host = null)
    {
        node.Validate();
        var peerTable = new PeerTable(peers);
        var templates = new EncapTemplate[peerTable.Count];
        Dictionary<Ipv4Prefix, PeerCounters>? kept = null;
        if (previous is { Templates.Length: > 0 })
        {
            kept = new Dictionary<Ipv4Prefix, PeerCounters>(previous.Templates.Length);
            foreach (var t in previous.Templates) kept[t.Peer.Subnet] = t.Counters;
        }
        for (var i = 0; i < templates.Length; i++)
        {
            var peer = peerTable[i];
            if (peer.Subnet.Overlaps(node.Subnet)) throw new ArgumentException($"peer {peer.Name}: subnet {peer.Subnet} overlaps this node's subnet {node.Subnet}");
            if (peer.PublicIp == node.PublicIp) throw new ArgumentException($"peer {peer.Name}: public IP {peer.PublicIp} is this node's own");
            templates[i] = new EncapTemplate(node, peer, kept?.GetValueOrDefault(peer.Subnet));
        }
        CheckNoOverlap(peerTable);

        var attached = external is null ? pods : [.. pods, new PodAttachment(external)];
        if (host is not null) attached = [.. attached, new PodAttachment(host)];
        var ports = AssignPorts(underlay, attached, previous);
        var portAddresses = new uint[ports.Length];
        var desired = new Dictionary<Ipv4Prefix, uint>
        {
            [node.Subnet] = RouteTarget.Encode(RouteKind.LocalSubnet),
            [new Ipv4Prefix(node.GatewayIp, 32)] = RouteTarget.Encode(RouteKind.Local),
            [new Ipv4Prefix(node.VtepIp, 32)] = RouteTarget.Encode(RouteKind.Local),
        };
        foreach (var pod in pods)
        {
            if (pod.Ip is not { } ip) continue;
            if (!node.Subnet.Contains(ip.Value)) throw new ArgumentException($"pod on {pod.Port.Name}: address {ip} is outside the node subnet {node.Subnet}");
            var id = Array.IndexOf(ports, pod.Port);
            portAddresses[id] = ip.Value;
            desired[new Ipv4Prefix(ip.Value, 32)] = RouteTarget.Encode(RouteKind.LocalPod, id);
        }
        for (var i = 0; i < peerTable.Count; i++)
            desired[peerTable[i].Subnet] = RouteTarget.Encode(RouteKind.Peer, i);
        var hostPort = host is null ? -1 : Array.IndexOf(ports, host);
        if (host is not null)
        {
            // What cbr0 and the node's routes give flannel's pods: the node's stack at its overlay address, and the
            // default route through it (the node forwards, and masquerades what leaves the cluster).
            portAddresses[hostPort] = node.Subnet.First;
            desired[new Ipv4Prefix(node.Subnet.First, 32)] = RouteTarget.Encode(RouteKind.Host);
            desired[new Ipv4Prefix(0, 0)] = RouteTarget.Encode(RouteKind.Host);
        }
        if (extraRoutes is not null)
        {
            foreach (var (prefix, kind) in extraRoutes) desired.TryAdd(prefix, RouteTarget.Encode(kind));
        }

        var builder = new RouteTableBuilder(previous?.Routes ?? RouteTable.Empty);
        foreach (var (prefix, _) in (previous?.Routes ?? RouteTable.Empty).Routes.ToArray())
        {
            if (!desired.ContainsKey(prefix)) builder.Remove(prefix);
        }
        var before = previous?.Routes ?? RouteTable.Empty;
        foreach (var (prefix, value) in desired)
        {
            if (!before.TryGetRoute(prefix, out var old) || old != value) builder.Add(prefix, value);
        }
        services ??= ServiceTable.Empty;
        if (!services.IsEmpty && conntrack is null) throw new ArgumentException("a state with Services needs a connection-tracking set");
        return new ForwardingState(node, builder.Build(), peerTable, templates, ports, portAddresses, (previous?.Version ?? 0) + 1,
            services, conntrack, external is null ? -1 : Array.IndexOf(ports, external), hostPort);
    }

    /// <summary>Sorted by first address, two subnets overlap only if neighbours do: O(n log n), 10,000 etcd peers (issue 9) made the pairwise check 50M comparisons per rebuild.</summary>
    private static void CheckNoOverlap(PeerTable peers)
    {
        var order = new int[peers.Count];
        for (var i = 0; i < order.Length; i++) order[i] = i;
        Array.Sort(order, (a, b) => peers[a].Subnet.First.CompareTo(peers[b].Subnet.First));
        for (var k = 1; k < order.Length; k++)
        {
            var (before, peer) = (peers[order[k - 1]], peers[order[k]]);
            if (before.Subnet.Last >= peer.Subnet.First)
            {
                var (first, second) = order[k - 1] < order[k] ? (before, peer) : (peer, before);
                throw new ArgumentException($"peers {first.Name} and {second.Name}: subnets {first.Subnet} and {second.Subnet} overlap");
            }
        }
    }

    private static IPacketPort?[] AssignPorts(IPacketPort underlay, IReadOnlyList<PodAttachment> pods, ForwardingState? previous)
    {
        var slots = new List<IPacketPort?> { underlay };
        if (previous is not null)
        {
            for (var i = 1; i < previous.Ports.Length; i++)
            {
                var old = previous.Ports[i];
                var kept = false;
                foreach (var pod in pods) kept |= ReferenceEquals(pod.Port, old);
                slots.Add(kept ? old : null);
            }
        }
        foreach (var pod in pods)
        {
            if (slots.Contains(pod.Port)) continue;
            var free = slots.IndexOf(null);
            if (free > 0) slots[free] = pod.Port;
            else slots.Add(pod.Port);
        }
        if (slots.Count > ushort.MaxValue) throw new ArgumentException("too many ports");
        while (slots.Count > 1 && slots[^1] is null) slots.RemoveAt(slots.Count - 1);
        return [.. slots];
    }
}
