using FastOverlay.Pipeline;
using FastOverlay.Ports;

namespace FastOverlay.Control;

/// <summary>
/// One forwarding worker of a node (DPDK's lcore, VPP's worker thread): its own buffer pool, forwarder, underlay
/// socket and one socket per pod, so nothing on the packet path is shared or locked. What the workers share is
/// built per worker from the same plan (the routes, peers and templates of each state are equal).
/// </summary>
public sealed class NodeWorker
{
    internal NodeWorker(int index, PacketPool pool, IPacketPort underlay)
    {
        Index = index;
        Pool = pool;
        Underlay = underlay;
    }

    public int Index { get; }
    public PacketPool Pool { get; }
    public IPacketPort Underlay { get; }
    /// <summary>The worker's socket for NodePort and external-address traffic from outside (null where the factory has none).</summary>
    public IPacketPort? External { get; internal set; }
    /// <summary>The worker's socket on the host port (Node.HostInterface), opened at start; null without one.</summary>
    public IPacketPort? Host { get; internal set; }
    public NodeForwarder Forwarder { get; internal set; } = null!;
    internal Dictionary<string, IPacketPort> Pods { get; } = new(StringComparer.Ordinal);
    internal List<(long Version, IPacketPort Port)> Retired { get; } = [];

    internal IEnumerable<IPacketPort> Ports => [Underlay, .. External is null ? [] : new[] { External }, .. Host is null ? [] : new[] { Host }, .. Pods.Values, .. Retired.Select(r => r.Port)];
}
