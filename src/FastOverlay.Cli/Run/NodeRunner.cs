using System.Diagnostics;
using System.Runtime.InteropServices;
using FastOverlay.Cli.Api;
using FastOverlay.Config;
using FastOverlay.Control;

namespace FastOverlay.Cli.Run;

/// <summary>
/// Runs a node: load and validate the configuration (nothing is opened if it is wrong), open the ports, start
/// the forwarder thread, print `ready`, then wait for a signal while printing counters and reloading the file;
/// on SIGINT/SIGTERM stop the thread, drain the forwarder, close the ports and check no buffer leaked.
/// Exit codes: 0 clean stop, 1 runtime failure (a port would not open, the loop died, buffers leaked), 2 bad configuration.
/// </summary>
internal sealed class NodeRunner(TextWriter output, TextWriter error, ApiSettings api)
{
    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitBadConfig = 2;

    private readonly ManualResetEventSlim _stop = new();

    public int Run(string configPath, double statsSeconds, int poolBuffers, IPortFactory ports, int workers = 1)
    {
        var interfaces = new SysfsInterfaceCatalog();
        OverlayConfig config;
        byte[] bytes;
        try
        {
            bytes = ReadConfig(configPath);
            config = ConfigLoader.Load(bytes, interfaces);
        }
        catch (ConfigException e)
        {
            error.WriteLine($"fastoverlay: {configPath}: {e.Message}");
            return ExitBadConfig;
        }

        var pods = api.LoadPods(interfaces, error);
        NodeController controller;
        try
        {
            controller = NodeController.Start(config, ports, poolBuffers, pods.PodConfigs, workers);
        }
        catch (IOException e)
        {
            error.WriteLine($"fastoverlay: cannot open the node's ports: {e.Message}");
            return ExitFailure;
        }

        var started = Stopwatch.GetTimestamp();
        var printer = new CounterPrinter(output, controller);
        // kube-proxy's health checks: matched to the Services now and after every applied reload.
        using var health = HealthCheckServer.Start(config.Node.PublicIp, api.HealthzPort, error);
        health.Reconcile(RunningServices(controller), config.Node.Name, config.Node.Subnet);
        // The node's kernel must not answer NodePorts and external addresses itself (RST, port unreachable): the
        // data path does, from its copy of each packet.
        if (controller.ExternalPortError is { } why) error.WriteLine($"fastoverlay: NodePorts and external addresses are not served from outside: {why}");
        // Without an external port nothing would answer: the kernel's refusal is then the honest answer.
        using var guard = controller.ExternalPortError is null ? ExternalGuard.Start(controller.ExternalTraffic, error) : null;
        controller.ServicesApplied += c =>
        {
            guard?.Update(c.ExternalTraffic);
            health.Reconcile(RunningServices(c), c.Config.Node.Name, c.Config.Node.Subnet);
        };
        using (controller)
        using (var loop = new ForwarderLoops(controller, api.Idle))
        using (var watcher = new ConfigWatcher(configPath, bytes, b => ConfigLoader.Load(b, interfaces), controller.Apply, error))
        {
            loop.Failed += _ => _stop.Set();
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnStopSignal);
            using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnStopSignal);
            using var hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
            {
                c.Cancel = true;
                watcher.ForceReload();
            });

            loop.Start();
            if (!loop.WaitUntilPolling(TimeSpan.FromSeconds(30)) || loop.Failure is not null) return Fail(loop, controller);
            printer.PrintStart(config);
            using var host = StartApi(new NodeApi(pods, api.PodOptions, () => controller, $"config {configPath}"), config);
            if (host is null)
            {
                loop.Stop();
                return ExitFailure;
            }
            output.WriteLine("ready");
            output.Flush();
            watcher.Start();

            var interval = statsSeconds > 0 ? TimeSpan.FromSeconds(statsSeconds) : Timeout.InfiniteTimeSpan;
            while (!_stop.Wait(interval)) printer.PrintInterval(Stopwatch.GetElapsedTime(started));

            watcher.Dispose();
            loop.Stop();
            if (loop.Failure is not null) return Fail(loop, controller);
            loop.Drain();
            printer.PrintFinal(Stopwatch.GetElapsedTime(started), loop.Sleeps);
        }
        // Ports are closed now; every buffer must be back in its pool.
        var leaked = controller.Workers.Sum(w => (long)w.Pool.InUse);
        output.WriteLine($"buffers in use after drain: {leaked}");
        output.Flush();
        if (leaked == 0) return ExitOk;
        error.WriteLine($"fastoverlay: {leaked} packet buffers leaked: a buffer ownership bug");
        return ExitFailure;
    }

    /// <summary>The node API (and subnet.env when asked for): without them the CNI plugin cannot attach pods, so a failure stops the node.</summary>
    private NodeServices? StartApi(NodeApi nodeApi, OverlayConfig config)
    {
        try
        {
            if (api.SubnetFile is { } file)
                Control.Subnets.SubnetFile.Write(file, config.Network, config.Node.Subnet, nodeApi.Controller!.Forwarder.State.Node.InnerMtu);
            return NodeServices.Start(api, nodeApi, output);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"fastoverlay: {e.Message}");
            return null;
        }
    }

    /// <summary>
    /// The Services the node runs: the file's, then the shared store's that the file does not define (the rule
    /// NodeController.MergeServices applies); the health checks follow it through NodeController.ServicesApplied.
    /// </summary>
    internal static IReadOnlyList<ServiceConfig> RunningServices(NodeController controller) =>
        NodeController.MergeServices(controller.Config, controller.StoreServices);

    /// <summary>The config file's bytes; an unreadable file is a ConfigException (exit 2), as a bad one is.</summary>
    internal static byte[] ReadConfig(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException("", $"cannot read it: {e.Message}");
        }
    }

    private void OnStopSignal(PosixSignalContext context)
    {
        // Cancel the default (immediate exit): the loop stops, drains and closes its sockets first.
        context.Cancel = true;
        _stop.Set();
    }

    private int Fail(ForwarderLoops loop, NodeController controller)
    {
        error.WriteLine(loop.Failure is { } e ? $"fastoverlay: the forwarder thread failed: {e}" : "fastoverlay: the forwarder thread did not start polling");
        loop.Stop();
        controller.Dispose();
        return ExitFailure;
    }
}
