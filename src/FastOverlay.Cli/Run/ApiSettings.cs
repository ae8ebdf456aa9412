using FastOverlay.Cli.Api;
using FastOverlay.Config;
using FastOverlay.Control;
using FastOverlay.Ports;

namespace FastOverlay.Cli.Run;

/// <summary>
/// The run command's node API flags. <paramref name="SubnetFile"/> is set in file mode only when --subnet-file was
/// given: then the node writes flannel's subnet.env for the CNI plugin as etcd mode always does.
/// <paramref name="HealthzPort"/> is the proxy health port on the public IP (0: off). <paramref name="Idle"/> is when
/// the forwarding threads sleep (null: the defaults).
/// </summary>
internal sealed record ApiSettings(string Socket, string PodState, AfPacketOptions PodOptions, string MetricsAddress, string? SubnetFile = null,
    int HealthzPort = HealthCheckServer.DefaultHealthzPort, IdleOptions? Idle = null)
{
    public const string DefaultPodState = "/run/fastoverlay/pods.json";

    /// <summary>Loads the stored API pods, leaving out those whose veth is gone (the pod went while we were down).</summary>
    public PodRegistry LoadPods(IInterfaceCatalog interfaces, TextWriter log)
    {
        var registry = new PodRegistry(PodState);
        registry.Load(log);
        foreach (var gone in registry.Pods.Where(p => !interfaces.Exists(p.Interface)))
        {
            log.WriteLine($"api: stored pod {gone.Interface} ({gone.Ip}) has no interface any more; forgetting it");
            registry.Remove(gone.Interface, controller: null);
        }
        return registry;
    }
}
