using System.Diagnostics;
using FastOverlay.Control;
using FastOverlay.Ports;

namespace FastOverlay.Cli.Api;

/// <summary>
/// What the node API serves, as a thin layer over the running node: the controller (null while an etcd node holds
/// no lease), where its configuration comes from, and the API-managed pods. The runners create one and keep
/// <see cref="Controller"/> current; the routes and the metrics read it.
/// </summary>
internal sealed class NodeApi(PodRegistry pods, AfPacketOptions podOptions, Func<NodeController?> controller, string source)
{
    private readonly long _started = Stopwatch.GetTimestamp();

    public PodRegistry Pods { get; } = pods;
    public AfPacketOptions PodOptions { get; } = podOptions;
    public NodeController? Controller => controller();
    /// <summary>"config /etc/fastoverlay/node.json", or "etcd https://...": what the node runs from.</summary>
    public string Source { get; } = source;
    /// <summary>The etcd lease, when in etcd mode (subnet, expiry), and whether etcd answers.</summary>
    public Func<LeaseView?> Lease { get; init; } = () => null;
    public TimeSpan Uptime => Stopwatch.GetElapsedTime(_started);
}

/// <summary>An etcd node's lease as the status shows it.</summary>
internal sealed record LeaseView(string Subnet, DateTimeOffset Expires, bool Held, string Endpoints, bool? EtcdConnected = null);
