using System.Diagnostics;
using System.Runtime.InteropServices;
using FastOverlay.Cli.Api;
using FastOverlay.Config;
using FastOverlay.Control;
using FastOverlay.Control.Etcd;
using FastOverlay.Control.Services;
using FastOverlay.Control.Subnets;

using FastOverlay.Ports;

namespace FastOverlay.Cli.Run;

/// <summary>
/// `fastoverlay run` in etcd mode: join the cluster the way flanneld does (network config from etcd, a subnet lease,
/// peers from the other nodes' leases), then forward exactly as with a file. The data path is started when the
/// lease is held, rebuilt on every peer change, and stopped when the lease is lost until it is held again; etcd
/// itself is never on the data path. Exit codes as <see cref="NodeRunner"/>.
/// </summary>
internal sealed class EtcdNodeRunner(TextWriter output, TextWriter error, ApiSettings api)
{
    private readonly ManualResetEventSlim _stop = new();
    private readonly CancellationTokenSource _cancel = new();
    private ForwarderLoops? _loop;
    private CounterPrinter? _printer;
    private EtcdServiceFeed? _services;
    private bool _ready;
    private long _leaked;
    private HealthCheckServer? _health;
    private ExternalGuard? _guard;

    public int Run(string? configPath, EtcdFlags flags, double statsSeconds, int poolBuffers, IPortFactory ports, int workers = 1)
    {
        var interfaces = new SysfsInterfaceCatalog();
        var source = configPath ?? "etcd mode";
        EtcdNodeFile file;
        byte[] bytes = [];
        EtcdOptions options;
        Wire.Ipv4Address publicIp;
        string? underlay;
        string? servicesPrefix;
        EtcdServiceStore? serviceStore;
        try
        {
            if (configPath is not null) bytes = NodeRunner.ReadConfig(configPath);
            file = configPath is null ? new EtcdNodeFile(null, new NodeTemplate()) : EtcdNodeFile.Parse(bytes);
            options = flags.Options(file.Etcd);
            underlay = flags.Iface ?? file.Node.Underlay;
            publicIp = flags.ResolvePublicIp(file.Node, underlay);
            servicesPrefix = flags.ServicesStorePrefix();
        }
        catch (ConfigException e)
        {
            error.WriteLine($"fastoverlay: {source}: {e.Message}");
            return NodeRunner.ExitBadConfig;
        }

        EtcdSubnetStore store;
        try
        {
            store = new EtcdSubnetStore(options);
            serviceStore = servicesPrefix is null ? null : new EtcdServiceStore(options, servicesPrefix);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            error.WriteLine($"fastoverlay: cannot load the etcd TLS files: {e.Message}");
            return NodeRunner.ExitBadConfig;
        }
        using var storeLifetime = store;
        var log = TextWriter.Synchronized(error);
        _services = serviceStore is null ? null : new EtcdServiceFeed(serviceStore, log);
        using var servicesLifetime = _services;
        // Open for the whole run; the Services' ports follow the data path (closed while no lease is held).
        using var health = _health = HealthCheckServer.Start(publicIp, api.HealthzPort, log);
        var membership = new SubnetMembership(store, publicIp, new MembershipOptions
        {
            SubnetFilePath = flags.SubnetFile,
            PreferredSubnet = file.Node.Subnet,
            VtepMac = file.Node.VtepMac,
        }, log);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnStopSignal);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnStopSignal);
        log.WriteLine($"etcd: {string.Join(',', options.Endpoints)} prefix {options.Prefix}, public IP {publicIp}, " +
            (_services is { } feed ? $"Services from {feed.Prefix}" : "no Services from etcd (--no-etcd-services)"));

        var current = file;
        var started = Stopwatch.GetTimestamp();
        var pods = api.LoadPods(interfaces, log);
        var node = new MembershipNode(
            lease => ConfigLoader.Complete(current.ToConfig(Network!, lease, publicIp, underlay, Environment.MachineName), interfaces),
            config => NodeController.Start(config, ports, poolBuffers, pods.PodConfigs, workers),
            log,
            started: Started,
            stopping: controller => Stopping(controller, final: false));
        var running = Task.Run(async () =>
        {
            Network = await membership.LoadNetworkAsync(_cancel.Token).ConfigureAwait(false);
            _services?.Start(Network, publicIp, current.ServiceOptions, _cancel.Token);
            var mtu = ConfigLoader.ResolveMtu(Network.Backend.Mtu, underlay, interfaces);
            await membership.RunAsync(Network, mtu, node, _cancel.Token).ConfigureAwait(false);
        });
        running.ContinueWith(_ => _stop.Set(), TaskScheduler.Default);
        var endpoints = string.Join(',', options.Endpoints);
        NodeServices host;
        try
        {
            host = NodeServices.Start(api, new NodeApi(pods, api.PodOptions, () => node.Controller, $"etcd {endpoints} prefix {options.Prefix}")
            {
                Lease = () => node.Lease is { } l ? new LeaseView(l.Subnet.ToString(), l.Expires, node.Controller is not null, endpoints, membership.EtcdConnected) : null,
            }, log);
        }
        catch (IOException e)
        {
            error.WriteLine($"fastoverlay: {e.Message}");
            _cancel.Cancel();
            _stop.Set();
            return NodeRunner.ExitFailure;
        }
        using var hostLifetime = host;

        using var watcher = configPath is null ? null : new ConfigWatcher(configPath, bytes, b =>
        {
            var next = EtcdNodeFile.Parse(b);
            var lease = node.Lease ?? throw new ConfigException("", "no lease held yet; try again");
            var config = ConfigLoader.Complete(next.ToConfig(Network!, lease, publicIp, underlay, Environment.MachineName), interfaces);
            current = next;
            _services?.OptionsChanged(Network!, publicIp, next.ServiceOptions);
            return config;
        }, config =>
        {
            node.BaseChanged(_ => config);
            if (node.Controller is { } running) ReconcileHealth(running);
        }, log);
        using var hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
        {
            c.Cancel = true;
            watcher?.ForceReload();
        });
        watcher?.Start();

        var interval = statsSeconds > 0 ? TimeSpan.FromSeconds(statsSeconds) : Timeout.InfiniteTimeSpan;
        while (!_stop.Wait(interval)) _printer?.PrintInterval(Stopwatch.GetElapsedTime(started));

        watcher?.Dispose();
        _cancel.Cancel();
        var code = Outcome(running, source);
        _services?.Stop();
        var last = node.Controller;
        if (last is not null)
        {
            Stopping(last, final: true);
            _printer?.PrintFinal(Stopwatch.GetElapsedTime(started), _loop?.Sleeps ?? 0);
        }
        node.Dispose();
        if (last is not null) _leaked = last.Workers.Sum(w => w.Pool.InUse);
        output.WriteLine($"buffers in use after drain: {_leaked}");
        output.Flush();
        if (_leaked != 0)
        {
            error.WriteLine($"fastoverlay: {_leaked} packet buffers leaked: a buffer ownership bug");
            return NodeRunner.ExitFailure;
        }
        return code;
    }

    private FlannelNetwork? Network { get; set; }

    private void Started(NodeController controller)
    {
        _loop = new ForwarderLoops(controller, api.Idle);
        _loop.Failed += _ => _stop.Set();
        _loop.Start();
        if (!_loop.WaitUntilPolling(TimeSpan.FromSeconds(30)) || _loop.Failure is not null)
            throw new IOException($"the forwarder thread failed: {_loop.Failure}");
        ReconcileHealth(controller);
        if (controller.ExternalPortError is { } why) output.WriteLine($"fastoverlay: NodePorts and external addresses are not served from outside: {why}");
        // Without an external port nothing would answer: the kernel's refusal is then the honest answer.
        if (controller.ExternalPortError is null)
        {
            if (_guard is null) _guard = ExternalGuard.Start(controller.ExternalTraffic, output);
            else _guard.Update(controller.ExternalTraffic);
        }
        controller.ServicesApplied += c =>
        {
            if (c.ExternalPortError is null) _guard?.Update(c.ExternalTraffic);
            ReconcileHealth(c);
        };
        _printer = new CounterPrinter(output, controller);
        _printer.PrintStart(controller.Config);
        _services?.Attach(controller);
        if (!_ready) output.WriteLine("ready");
        _ready = true;
        output.Flush();
    }

    private void ReconcileHealth(NodeController controller) =>
        _health?.Reconcile(NodeRunner.RunningServices(controller), controller.Config.Node.Name, controller.Config.Node.Subnet);

    /// <summary>Stops the thread and drains before the controller closes the ports (on a lost lease, and at exit).</summary>
    private void Stopping(NodeController controller, bool final)
    {
        _services?.Detach();
        // Without a data path no Service is served here: its health check must fail (refused), not say 200.
        if (!final) _health?.Reconcile([], controller.Config.Node.Name, controller.Config.Node.Subnet);
        // Nothing translates while the data path is down: let the kernel refuse instead of a silent drop.
        if (!final) _guard?.Update(ExternalTraffic.From(controller.Config.Node.PublicIp, []));
        else
        {
            _guard?.Dispose();
            _guard = null;
        }
        if (_loop is null) return;
        _loop.Stop();
        _loop.Dispose();
        _loop = null;
        foreach (var worker in controller.Workers) worker.Forwarder.Drain();
        if (!final) _printer = null;
    }

    private int Outcome(Task running, string source)
    {
        try
        {
            running.GetAwaiter().GetResult();
            return NodeRunner.ExitOk;
        }
        catch (OperationCanceledException)
        {
            return NodeRunner.ExitOk;
        }
        catch (ConfigException e)
        {
            error.WriteLine($"fastoverlay: {source}: {e.Message}");
            return NodeRunner.ExitBadConfig;
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or StoreUnavailableException)
        {
            error.WriteLine($"fastoverlay: {e.Message}");
            return NodeRunner.ExitFailure;
        }
    }

    private void OnStopSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        _stop.Set();
    }
}
