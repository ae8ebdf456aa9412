using FastOverlay.Config;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Tables.Services;

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
public sealed partial class NodeController : IDisposable
{
    private readonly object _gate = new();
    private readonly IPortFactory _factory;
    private readonly NodeWorker[] _workers;
    private volatile bool _hasRetired;
    private bool _disposed;
    // Pods the node API added (the CNI plugin's): merged with the file's pods at every rebuild. A pod the file also
    // names is the file's; the API's entry is ignored while it does.
    private IReadOnlyList<PodConfig> _apiPods = [];
    private volatile LiveTrace? _trace;
    private ConntrackSet? _conntrack;
    // Services from the shared store (etcd's /fastoverlay/services/): merged with the file's at every rebuild; a
    // Service the file also defines (same namespace/name) is the file's.
    private IReadOnlyList<ServiceConfig> _storeServices = [];

    private NodeController(OverlayConfig config, IPortFactory factory, NodeWorker[] workers)
    {
        Config = config;
        _factory = factory;
        _workers = workers;
    }

    public OverlayConfig Config { get; private set; }
    /// <summary>The forwarding workers, one thread each (<see cref="ForwarderLoop"/>); index 0 always exists.</summary>
    public IReadOnlyList<NodeWorker> Workers => _workers;
    /// <summary>Worker 0's pool and forwarder: all there is with one worker.</summary>
    public PacketPool Pool => _workers[0].Pool;
    public NodeForwarder Forwarder => _workers[0].Forwarder;

    /// <summary>Every worker's counters added up (a new object per call: for display, not the data path).</summary>
    public NodeCounters TotalCounters() => NodeCounters.Sum(_workers.Select(w => w.Forwarder.Counters));

    /// <summary>
    /// Opens every port of every worker (closing them again if any fails) and builds the first states.
    /// <paramref name="poolBuffers"/> is the node's total, divided among the workers.
    /// </summary>
    public static NodeController Start(OverlayConfig config, IPortFactory factory, int poolBuffers = 16384, IReadOnlyList<PodConfig>? apiPods = null, int workers = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        var plan = NodePlan.From(Merge(config, apiPods ?? []));
        var exchange = workers > 1 ? new NeighbourExchange(workers) : null;
        var services = BuildServices(config, [], plan, workers, null);
        var conntrack = services.IsEmpty ? null : NewConntrack(config.ServiceOptions, workers);
        var opened = new List<IPacketPort>();
        string? externalError = null;
        try
        {
            var all = new NodeWorker[workers];
            // The buffers are the node's, divided among the workers (at least 2048 each: a few bursts of segments).
            var perWorker = Math.Max(Math.Min(poolBuffers, 2048), poolBuffers / workers);
            for (var w = 0; w < workers; w++)
            {
                var pool = new PacketPool(perWorker);
                var underlay = factory.OpenUnderlay(plan.Options, plan.UnderlayInterface, pool);
                opened.Add(underlay);
                // In worker order: each joins the previous one's fanout group while that one is open. A node that
                // cannot have one (no interface holds its public IP: a cloud NAT address) still forwards pods and
                // ClusterIPs; only traffic from outside to NodePorts and external addresses goes unserved.
                IPacketPort? external = null;
                if (externalError is null)
                {
                    try
                    {
                        external = factory.OpenExternal(plan.Options, plan.UnderlayInterface, pool);
                    }
                    // All workers or none (a fanout group missing a member would leave its share of flows unserved):
                    // only the first may fail softly; the others open the same interface.
                    catch (IOException e) when (w == 0)
                    {
                        externalError = e.Message;
                    }
                }
                if (external is not null) opened.Add(external);
                // The host port is a veth like a pod's, opened the same way (vnet header, fanout over the workers).
                IPacketPort? host = null;
                if (plan.HostInterface is { } hostInterface)
                {
                    host = factory.OpenPod(hostInterface, pool);
                    opened.Add(host);
                }
                var worker = new NodeWorker(w, pool, underlay) { External = external, Host = host };
                foreach (var pod in plan.Pods)
                {
                    var port = factory.OpenPod(pod.Interface, pool);
                    opened.Add(port);
                    worker.Pods[pod.Interface] = port;
                }
                var state = ForwardingState.Build(plan.Options, underlay, Attachments(plan, worker.Pods), plan.Peers, services: services, conntrack: conntrack, external: external, host: host);
                worker.Forwarder = new NodeForwarder(pool, state, exchange: exchange, worker: w);
                all[w] = worker;
            }
            var controller = new NodeController(config, factory, all) { _apiPods = apiPods ?? [], _conntrack = conntrack, ExternalPortError = externalError };
            controller.UpdateExternalFilters();
            return controller;
        }
        catch
        {
            foreach (var port in opened) (port as IDisposable)?.Dispose();
            throw;
        }
    }

    /// <summary>Every port a forwarder may still call: the underlays, the pods, and retired ones not yet closed.</summary>
    public IReadOnlyList<IPacketPort> Ports
    {
        get
        {
            lock (_gate) return [.. _workers.SelectMany(w => w.Ports)];
        }
    }

    /// <summary>
    /// Makes <paramref name="next"/> the running configuration on every worker. Throws <see cref="ConfigException"/>
    /// for a change that cannot be applied live, or the port's error when a new pod interface cannot be opened;
    /// either way the running configuration and states stay as they were.
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
    /// Records the next <paramref name="packets"/> packets through worker 0's pipeline. The tracer is attached and
    /// detached on that worker's thread (in <see cref="AfterPoll(int, ForwardingState)"/>), so its records are never
    /// read while written. With several workers only the flows the kernel hands worker 0 are traced.
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
        RefuseNodeChanges(Config, next, _conntrack is not null);
        var plan = NodePlan.From(Merge(next, apiPods));
        var services = BuildServices(next, _storeServices, plan, _workers.Length, _workers[0].Forwarder.State.Services);
        // Preallocated once, the first time a Service appears; its size is fixed for the process's life.
        var conntrack = _conntrack ?? (services.IsEmpty ? null : NewConntrack(next.ServiceOptions, _workers.Length));
        var opened = new List<IPacketPort>();
        var built = new (Dictionary<string, IPacketPort> Ports, ForwardingState State)[_workers.Length];
        try
        {
            // Everything is opened and built first, so a failure on any worker changes none.
            for (var w = 0; w < _workers.Length; w++)
            {
                var worker = _workers[w];
                var ports = new Dictionary<string, IPacketPort>(StringComparer.Ordinal);
                foreach (var pod in plan.Pods)
                {
                    if (worker.Pods.TryGetValue(pod.Interface, out var kept)) ports[pod.Interface] = kept;
                    else
                    {
                        var port = _factory.OpenPod(pod.Interface, worker.Pool);
                        opened.Add(port);
                        ports[pod.Interface] = port;
                    }
                }
                built[w] = (ports, ForwardingState.Build(plan.Options, worker.Underlay, Attachments(plan, ports), plan.Peers, previous: worker.Forwarder.State,
                    services: services, conntrack: conntrack, external: worker.External, host: worker.Host));
            }
        }
        catch
        {
            foreach (var port in opened) (port as IDisposable)?.Dispose();
            throw;
        }
        for (var w = 0; w < _workers.Length; w++)
        {
            var worker = _workers[w];
            var (ports, state) = built[w];
            worker.Forwarder.Publish(state);
            foreach (var (name, port) in worker.Pods)
            {
                if (!ports.ContainsKey(name)) worker.Retired.Add((state.Version, port));
            }
            worker.Pods.Clear();
            foreach (var (name, port) in ports) worker.Pods[name] = port;
        }
        _hasRetired = _workers.Any(w => w.Retired.Count > 0);
        _conntrack = conntrack;
        Config = next;
        _apiPods = apiPods;
        UpdateExternalFilters();
        ServicesApplied?.Invoke(this);
    }

    /// <summary>Worker 0's <see cref="AfterPoll(int, ForwardingState)"/>.</summary>
    public void AfterPoll(ForwardingState polled) => AfterPoll(0, polled);

    /// <summary>
    /// Called on a worker's thread after each poll, with the state read just before it (the poll used that one
    /// or a newer one). Closes that worker's ports it can no longer call. One volatile read when there is nothing to do.
    /// </summary>
    public void AfterPoll(int worker, ForwardingState polled)
    {
        if (worker == 0 && _trace is { } trace && trace.Service(Forwarder)) Interlocked.CompareExchange(ref _trace, null, trace);
        if (!_hasRetired) return;
        lock (_gate)
        {
            var retired = _workers[worker].Retired;
            for (var i = retired.Count - 1; i >= 0; i--)
            {
                if (retired[i].Version > polled.Version) continue;
                (retired[i].Port as IDisposable)?.Dispose();
                retired.RemoveAt(i);
            }
            _hasRetired = _workers.Any(w => w.Retired.Count > 0);
        }
    }

    private static List<PodAttachment> Attachments(NodePlan plan, Dictionary<string, IPacketPort> ports) =>
        [.. plan.Pods.Select(p => new PodAttachment(ports[p.Interface], p.Ip))];

    private static void RefuseNodeChanges(OverlayConfig current, OverlayConfig next, bool connectionTables)
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
        Check(a.HostInterface, b.HostInterface, "Node.HostInterface");
        if (!connectionTables) return;
        // The connection tables were preallocated with these, and live flows were translated to this address.
        var (o, p) = (current.ServiceOptions, next.ServiceOptions);
        Check(o.ConntrackCapacity, p.ConntrackCapacity, "ServiceOptions.ConntrackCapacity");
        Check((o.TcpSynTimeoutSeconds, o.TcpEstablishedTimeoutSeconds, o.TcpClosingTimeoutSeconds, o.UdpTimeoutSeconds, o.UdpStreamTimeoutSeconds, o.IcmpTimeoutSeconds),
            (p.TcpSynTimeoutSeconds, p.TcpEstablishedTimeoutSeconds, p.TcpClosingTimeoutSeconds, p.UdpTimeoutSeconds, p.UdpStreamTimeoutSeconds, p.IcmpTimeoutSeconds), "ServiceOptions timeouts");
        Check(o.HairpinAddress, p.HairpinAddress, "ServiceOptions.HairpinAddress");

        static void Check<T>(T before, T after, string path)
        {
            if (!EqualityComparer<T>.Default.Equals(before, after))
                throw new ConfigException(path, $"changed from {before} to {after}: only Peers, Node.Pods, Services and the other ServiceOptions apply live; restart fastoverlay for this change");
        }
    }

    /// <summary>Closes every port. Call after the forwarders' last polls and <see cref="NodeForwarder.Drain"/>.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _trace?.Abandon();
            _trace = null;
            foreach (var worker in _workers)
            {
                foreach (var (_, port) in worker.Retired) (port as IDisposable)?.Dispose();
                foreach (var port in worker.Pods.Values) (port as IDisposable)?.Dispose();
                (worker.Underlay as IDisposable)?.Dispose();
                (worker.External as IDisposable)?.Dispose();
                (worker.Host as IDisposable)?.Dispose();
                worker.Retired.Clear();
                worker.Pods.Clear();
            }
            _hasRetired = false;
        }
    }
}
