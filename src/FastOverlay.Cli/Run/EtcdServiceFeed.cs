using FastOverlay.Config;
using FastOverlay.Control;
using FastOverlay.Control.Services;
using FastOverlay.Control.Subnets;
using FastOverlay.Wire;

namespace FastOverlay.Cli.Run;

/// <summary>
/// An etcd node's Services from the shared store (<c>--services-prefix</c>): a <see cref="ServiceWatcher"/> whose
/// sets go to whichever <see cref="NodeController"/> runs now. The data path comes and goes with the subnet lease,
/// the watch does not: the last accepted set is kept and handed to each new controller when it starts. A set the
/// controller refuses is logged by the watcher and the previous one stays.
/// </summary>
internal sealed class EtcdServiceFeed(EtcdServiceStore store, TextWriter log) : IDisposable
{
    private readonly object _gate = new();
    private NodeController? _controller;
    private IReadOnlyList<ServiceConfig>? _latest;
    private volatile ServiceWatcher? _watcher;
    private Task _running = Task.CompletedTask;

    public string Prefix => store.KeyPrefix;

    public ServiceWatcher? Watcher => _watcher;

    /// <summary>Starts watching once etcd's network is known (the rules check Service addresses against it).</summary>
    public void Start(FlannelNetwork network, Ipv4Address publicIp, ServiceOptionsConfig options, CancellationToken cancel)
    {
        var watcher = new ServiceWatcher(store, Rules(network, publicIp, options), log);
        _watcher = watcher;
        _running = Task.Run(() => watcher.RunAsync(Publish, cancel), CancellationToken.None);
        // The watcher catches the store's failures itself; anything else ending it must not go unnoticed until exit.
        _running.ContinueWith(t => log.WriteLine($"services: the watcher stopped: {t.Exception!.InnerException?.Message}; Services stay as they are until restart"),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    /// <summary>A reloaded file's ServiceOptions (the NodePort range): every stored Service is checked again.</summary>
    public void OptionsChanged(FlannelNetwork network, Ipv4Address publicIp, ServiceOptionsConfig options)
    {
        if (_watcher is { } watcher) watcher.Rules = Rules(network, publicIp, options);
    }

    /// <summary>A controller started (a lease is held): it gets the last accepted set at once.</summary>
    public void Attach(NodeController controller)
    {
        lock (_gate)
        {
            _controller = controller;
            if (_latest is not { } services) return;
            try
            {
                controller.SetStoreServices(services);
            }
            catch (Exception e) when (e is ConfigException or ArgumentException)
            {
                log.WriteLine($"services: the new data path refused the store's {services.Count} Services ({e.Message}); it runs without them until the next change");
            }
        }
    }

    /// <summary>The controller is stopping (lease lost, or exit): sets arriving meanwhile are kept for the next one.</summary>
    public void Detach()
    {
        lock (_gate) _controller = null;
    }

    /// <summary>Waits for the watcher to end after its token was cancelled (a failure was logged when it happened).</summary>
    public void Stop() => ((IAsyncResult)_running).AsyncWaitHandle.WaitOne();

    public void Dispose() => store.Dispose();

    /// <summary>Throws what SetStoreServices throws, so that the watcher keeps the previous set and says why.</summary>
    private void Publish(IReadOnlyList<ServiceConfig> services)
    {
        lock (_gate)
        {
            _controller?.SetStoreServices(services);
            _latest = services;
        }
    }

    private static ServiceConfigValidator Rules(FlannelNetwork network, Ipv4Address publicIp, ServiceOptionsConfig options) =>
        new(options, network.Network, publicIp, network.Backend.Port);
}
