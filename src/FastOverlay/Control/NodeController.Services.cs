using FastOverlay.Config;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Tables.Services;

namespace FastOverlay.Control;

/// <summary>
/// The Services side of the controller: the shared store's Services merged with the file's, the service table and
/// the connection-tracking tables each rebuild hands the workers, and the external ports' filter that follows them.
/// </summary>
public sealed partial class NodeController
{
    /// <summary>The Services the shared store holds (from any thread); replaced whole and rebuilt as a config reload is.</summary>
    public IReadOnlyList<ServiceConfig> StoreServices
    {
        get { lock (_gate) return _storeServices; }
    }

    /// <summary>Replaces the store's Services (the watcher's full, reconciled set) and rebuilds; on an error nothing changes.</summary>
    public void SetStoreServices(IReadOnlyList<ServiceConfig> services)
    {
        lock (_gate)
        {
            var before = _storeServices;
            _storeServices = services;
            try
            {
                Rebuild(Config, _apiPods);
            }
            catch
            {
                _storeServices = before;
                throw;
            }
        }
    }

    /// <summary>
    /// Called after every rebuild that took effect (file reload, API pods, store Services), on the thread that made
    /// it: the runner reconciles what follows the Services outside the data path (the nftables guard, the health
    /// checks). Not called for the first state; the runner does its own first reconcile.
    /// </summary>
    public event Action<NodeController>? ServicesApplied;

    /// <summary>The NodePorts and external addresses the running Services answer, as the external filter and the guard need them.</summary>
    public ExternalTraffic ExternalTraffic => ExternalTraffic.From(Config.Node.PublicIp, MergeServices(Config, _storeServices));

    /// <summary>One program for every worker's external socket (one fanout group must share one filter).</summary>
    private void UpdateExternalFilters()
    {
        if (_workers.All(w => w.External is not ExternalPort)) return;
        var program = ExternalFilter.Compile(ExternalTraffic);
        foreach (var worker in _workers)
        {
            if (worker.External is ExternalPort port) port.UpdateFilter(program);
        }
    }

    /// <summary>The file's Services, then the store's whose namespace/name the file does not define.</summary>
    public static IReadOnlyList<ServiceConfig> MergeServices(OverlayConfig config, IReadOnlyList<ServiceConfig> storeServices)
    {
        if (storeServices.Count == 0) return config.Services;
        var named = config.Services.Select(s => s.Key).ToHashSet(StringComparer.Ordinal);
        return [.. config.Services, .. storeServices.Where(s => !named.Contains(s.Key))];
    }

    private static ServiceTable BuildServices(OverlayConfig config, IReadOnlyList<ServiceConfig> storeServices, NodePlan plan, int workers, ServiceTable? previous)
    {
        var services = MergeServices(config, storeServices);
        // The file's set was checked when loaded, the store's by its watcher; together they must still not collide.
        if (storeServices.Count > 0)
            new ServiceConfigValidator(config.ServiceOptions, config.Network, config.Node.PublicIp, config.Backend.Port).CheckAll(services);
        if (services.Count == 0 && (previous is null || previous.IsEmpty)) return previous ?? ServiceTable.Empty;
        var options = config.ServiceOptions;
        var settings = new ServiceTableSettings(plan.Options.Name, plan.Options.Subnet, plan.Options.PublicIp.Value,
            options.HairpinAddress?.Value ?? plan.Options.GatewayIp, options.MaglevTableSize, workers, System.Diagnostics.Stopwatch.Frequency);
        return ServiceTableBuilder.Build(services, settings, previous);
    }

    private static ConntrackSet NewConntrack(ServiceOptionsConfig options, int workers) =>
        new(workers, options.ConntrackCapacity, new ConntrackTimeouts(
            TimeSpan.FromSeconds(options.TcpSynTimeoutSeconds), TimeSpan.FromSeconds(options.TcpEstablishedTimeoutSeconds),
            TimeSpan.FromSeconds(options.TcpClosingTimeoutSeconds), TimeSpan.FromSeconds(options.UdpTimeoutSeconds),
            TimeSpan.FromSeconds(options.UdpStreamTimeoutSeconds), TimeSpan.FromSeconds(options.IcmpTimeoutSeconds)));

    /// <summary>Why the node has no external port (NodePort and external-address traffic from outside unserved), or null.</summary>
    public string? ExternalPortError { get; private init; }

    /// <summary>The node's flow tables (null until the first Service).</summary>
    public ConntrackSet? Conntrack => _conntrack;
}
