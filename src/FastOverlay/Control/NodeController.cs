using FastOverlay.Config;
using FastOverlay.Pipeline;
using FastOverlay.Ports;

namespace FastOverlay.Control;

/// <summary>
/// Owns one node's ports and turns configurations into forwarding states. <see cref="Apply"/> (any thread)
/// opens ports for new pods, builds the next state from the previous one (pods that stay keep their port object
/// and id, so their traffic is not disturbed) and publishes it. A removed pod's port is closed only after the
/// forwarder has polled with a state that no longer holds it: the forwarder thread reports each poll through
/// <see cref="AfterPoll"/>, and ports retired at or before that state's version are disposed there.
///
/// Changes to the node itself (name, public IP, subnet, MACs, underlay, backend, Network) need the underlay
/// socket and every template rebuilt: they are refused live, and the running configuration stays in force.
/// </summary>
public sealed class NodeController : IDisposable
{
    private readonly object _gate = new();
    private readonly IPortFactory _factory;
    private readonly IPacketPort _underlay;
    private readonly Dictionary<string, IPacketPort> _pods = new(StringComparer.Ordinal);
    private readonly List<(long Version, IPacketPort Port)> _retired = [];
    private volatile bool _hasRetired;
    private bool _disposed;
    // Pods the node API added (the CNI plugin's): merged with the file's pods at every rebuild. A pod the file also
    // names is the file's; the API's entry is ignored while it does.
    private IReadOnlyList<PodConfig> _apiPods = [];
    private volatile LiveTrace? _trace;

    private NodeController(OverlayConfig config, IPortFactory factory, PacketPool pool, IPacketPort underlay, NodeForwarder forwarder)
    {
        Config = config;
        _factory = factory;
        Pool = pool;
        _underlay = underlay;
        Forwarder = forwarder;
    }

    public OverlayConfig Config { get; private set; }
    public PacketPool Pool { get; }
    public NodeForwarder Forwarder { get; }

    /// <summary>Opens every port (closing them again if any fails) and builds the first forwarding state.</summary>
    public static NodeController Start(OverlayConfig config, IPortFactory factory, int poolBuffers = 16384, IReadOnlyList<PodConfig>? apiPods = null)
    {
        var plan = NodePlan.From(Merge(config, apiPods ?? []));
        var pool = new PacketPool(poolBuffers);
        var opened = new List<IPacketPort>();
        try
        {
            var underlay = factory.OpenUnderlay(plan.Options, plan.UnderlayInterface, pool);
            opened.Add(underlay);
            var pods = new Dictionary<string, IPacketPort>(StringComparer.Ordinal);
            foreach (var pod in plan.Pods)
            {
                var port = factory.OpenPod(pod.Interface, pool);
                opened.Add(port);
                pods[pod.Interface] = port;
            }
            var state = ForwardingState.Build(plan.Options, underlay, Attachments(plan, pods), plan.Peers);
            var controller = new NodeController(config, factory, pool, underlay, new NodeForwarder(pool, state));
            foreach (var (name, port) in pods) controller._pods[name] = port;
            controller._apiPods = apiPods ?? [];
            return controller;
        }
        catch
        {
            foreach (var port in opened) (port as IDisposable)?.Dispose();
            throw;
        }
    }

    /// <summary>Every port the forwarder may still call: the underlay, the pods, and retired ones not yet closed.</summary>
    public IReadOnlyList<IPacketPort> Ports
    {
        get
        {
            lock (_gate) return [_underlay, .. _pods.Values, .. _retired.Select(r => r.Port)];
        }
    }

    /// <summary>
    /// Makes <paramref name="next"/> the running configuration. Throws <see cref="ConfigException"/> for a change that
    /// cannot be applied live, or the port's error when a new pod interface cannot be opened; either way the
    /// running configuration and state stay as they were.
    /// </summary>
    public void Apply(OverlayConfig next)
    {
        lock (_gate) Rebuild(next, _apiPods);
    }

    /// <summary>The pods the node API manages (from any thread); rebuilt and swapped as a config reload is.</summary>
    public IReadOnlyList<PodConfig> ApiPods
    {
        get { lock (_gate) return _apiPods; }
    }

    /// <summary>
    /// Replaces the API-managed pods and rebuilds, with the same guarantees as <see cref="Apply"/>: on an error
    /// (an interface that cannot be opened, an address the state refuses) nothing changes.
    /// </summary>
    public void SetApiPods(IReadOnlyList<PodConfig> pods)
    {
        lock (_gate) Rebuild(Config, pods);
    }

    /// <summary>The file's pods first, then the API's whose interface the file does not name.</summary>
    public static OverlayConfig Merge(OverlayConfig config, IReadOnlyList<PodConfig> apiPods)
    {
        if (apiPods.Count == 0) return config;
        var named = config.Node.Pods.Select(p => p.Interface).ToHashSet(StringComparer.Ordinal);
        return config with { Node = config.Node with { Pods = [.. config.Node.Pods, .. apiPods.Where(p => !named.Contains(p.Interface))] } };
    }

    /// <summary>
    /// Records the next <paramref name="packets"/> packets through the pipeline. The tracer is attached and
    /// detached on the forwarder thread (in <see cref="AfterPoll"/>), so its records are never read while written.
    /// </summary>
    public Task<LiveTrace> TraceAsync(int packets, TimeSpan timeout)
    {
        var trace = new LiveTrace(packets, timeout);
        // A trace the forwarder never serviced (its thread stopped: an etcd node that lost its lease) is replaced.
        var current = _trace;
        if (current is not null && !current.Stale) throw new InvalidOperationException("a trace is already running on this node; try again when it ends");
        if (Interlocked.CompareExchange(ref _trace, trace, current) != current) throw new InvalidOperationException("a trace is already running on this node; try again when it ends");
        return trace.Completion.WaitAsync(timeout + TimeSpan.FromSeconds(5));
    }

    private void Rebuild(OverlayConfig next, IReadOnlyList<PodConfig> apiPods)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        RefuseNodeChanges(Config, next);
        var plan = NodePlan.From(Merge(next, apiPods));
        var opened = new Dictionary<string, IPacketPort>(StringComparer.Ordinal);
        ForwardingState state;
        try
        {
            var ports = new Dictionary<string, IPacketPort>(StringComparer.Ordinal);
            foreach (var pod in plan.Pods)
            {
                if (_pods.TryGetValue(pod.Interface, out var kept)) ports[pod.Interface] = kept;
                else ports[pod.Interface] = opened[pod.Interface] = _factory.OpenPod(pod.Interface, Pool);
            }
            state = ForwardingState.Build(plan.Options, _underlay, Attachments(plan, ports), plan.Peers, previous: Forwarder.State);
            Forwarder.Publish(state);
            foreach (var (name, port) in _pods)
            {
                if (!ports.ContainsKey(name)) _retired.Add((state.Version, port));
            }
            _pods.Clear();
            foreach (var (name, port) in ports) _pods[name] = port;
        }
        catch
        {
            foreach (var port in opened.Values) (port as IDisposable)?.Dispose();
            throw;
        }
        _hasRetired = _retired.Count > 0;
        Config = next;
        _apiPods = apiPods;
    }

    /// <summary>
    /// Called on the forwarder thread after each poll, with the state read just before it (the poll used that one
    /// or a newer one). Closes ports the forwarder can no longer call. One volatile read when there is nothing to do.
    /// </summary>
    public void AfterPoll(ForwardingState polled)
    {
        if (_trace is { } trace && trace.Service(Forwarder)) Interlocked.CompareExchange(ref _trace, null, trace);
        if (!_hasRetired) return;
        lock (_gate)
        {
            for (var i = _retired.Count - 1; i >= 0; i--)
            {
                if (_retired[i].Version > polled.Version) continue;
                (_retired[i].Port as IDisposable)?.Dispose();
                _retired.RemoveAt(i);
            }
            _hasRetired = _retired.Count > 0;
        }
    }

    private static List<PodAttachment> Attachments(NodePlan plan, Dictionary<string, IPacketPort> ports) =>
        [.. plan.Pods.Select(p => new PodAttachment(ports[p.Interface], p.Ip))];

    private static void RefuseNodeChanges(OverlayConfig current, OverlayConfig next)
    {
        Check(current.Network, next.Network, "Network");
        Check(current.SubnetLen, next.SubnetLen, "SubnetLen");
        Check(current.Backend, next.Backend, "Backend");
        var (a, b) = (current.Node, next.Node);
        Check(a.Name, b.Name, "Node.Name");
        Check(a.PublicIp, b.PublicIp, "Node.PublicIP");
        Check(a.Subnet, b.Subnet, "Node.Subnet");
        Check(a.VtepMac, b.VtepMac, "Node.VtepMAC");
        Check(a.GatewayMac, b.GatewayMac, "Node.GatewayMAC");
        Check(a.Underlay, b.Underlay, "Node.Underlay");

        static void Check<T>(T before, T after, string path)
        {
            if (!EqualityComparer<T>.Default.Equals(before, after))
                throw new ConfigException(path, $"changed from {before} to {after}: only Peers and Node.Pods apply live; restart fastoverlay for this change");
        }
    }

    /// <summary>Closes every port. Call after the forwarder's last poll and <see cref="NodeForwarder.Drain"/>.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _trace?.Abandon();
            _trace = null;
            foreach (var (_, port) in _retired) (port as IDisposable)?.Dispose();
            foreach (var port in _pods.Values) (port as IDisposable)?.Dispose();
            (_underlay as IDisposable)?.Dispose();
            _retired.Clear();
            _pods.Clear();
            _hasRetired = false;
        }
    }
}
