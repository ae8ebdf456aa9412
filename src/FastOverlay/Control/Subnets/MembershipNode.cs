using FastOverlay.Config;
using FastOverlay.Tables;

namespace FastOverlay.Control.Subnets;

/// <summary>
/// The data path under a lease: starts a <see cref="NodeController"/> when a lease is held, applies the peer set
/// through the controller's rebuild-and-swap (unchanged peers keep their routes and templates: only what changed
/// differs between two forwarding states), and stops routing when the lease is lost. The base configuration
/// (pods, from the file) and the peers (from etcd) are combined under one lock, so a file reload and a watch event
/// never apply each other's stale half.
/// </summary>
public sealed class MembershipNode(
    Func<AcquiredLease, OverlayConfig> configFor,
    Func<OverlayConfig, NodeController> start,
    TextWriter log,
    Action<NodeController>? started = null,
    Action<NodeController>? stopping = null) : IMembershipHost, IDisposable
{
    private readonly object _gate = new();
    private OverlayConfig? _base;
    private IReadOnlyList<PeerConfig> _peers = [];
    private NodeController? _controller;

    public NodeController? Controller { get { lock (_gate) return _controller; } }
    public AcquiredLease? Lease { get; private set; }
    public int Applied { get; private set; }

    public void LeaseAcquired(AcquiredLease lease)
    {
        lock (_gate)
        {
            _base = configFor(lease);
            _peers = [];
            _controller = start(_base);
            Lease = lease;
            started?.Invoke(_controller);
        }
    }

    public void PeersChanged(IReadOnlyList<Peer> peers)
    {
        lock (_gate)
        {
            _peers = [.. peers.Select(p => new PeerConfig(p.Name, p.PublicIp, p.Subnet, p.VtepMac))];
            Reconcile();
        }
    }

    /// <summary>A reloaded file (pods): rebuilt against the current lease and applied with the current peers.</summary>
    public void BaseChanged(Func<AcquiredLease, OverlayConfig> next)
    {
        lock (_gate)
        {
            if (Lease is not { } lease || _controller is null) return;
            var candidate = next(lease);
            var previous = _base;
            _base = candidate;
            if (!Reconcile()) _base = previous;
        }
    }

    public void LeaseLost(AcquiredLease lease)
    {
        lock (_gate) Stop();
    }

    public void Dispose()
    {
        lock (_gate) Stop();
    }

    private bool Reconcile()
    {
        if (_controller is null || _base is null) return false;
        try
        {
            _controller.Apply(_base with { Peers = _peers });
            Applied++;
            return true;
        }
        catch (Exception e) when (e is ConfigException or ArgumentException or IOException)
        {
            log.WriteLine($"node: could not apply the new state ({e.Message}); the running state stays");
            return false;
        }
    }

    private void Stop()
    {
        if (_controller is null) return;
        stopping?.Invoke(_controller);
        _controller.Dispose();
        _controller = null;
        Lease = null;
    }
}
