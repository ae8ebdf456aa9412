using System.Reflection;
using FastOverlay.Cli.Api;
using FastOverlay.Control;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using Prometheus;
using NodeCounter = FastOverlay.Pipeline.Counter;
using Counter = Prometheus.Counter;

namespace FastOverlay.Cli.Metrics;

/// <summary>
/// The node's Prometheus metrics, filled at scrape time from the counters' published snapshots (volatile reads of
/// what the forwarder flushes once per poll), so a scrape costs the forwarding thread nothing: no callback runs
/// there and nothing it owns is locked. Counters are carried with IncTo, the snapshot being the running total.
/// </summary>
internal sealed class NodeMetrics
{
    private readonly NodeApi _api;
    private readonly Counter _events;
    private readonly Counter _drops;
    private readonly Counter _portPackets;
    private readonly Counter _portBytes;
    private readonly Counter _portDrops;
    private readonly Counter _peerPackets;
    private readonly Counter _peerBytes;
    private readonly HashSet<string> _peerSeries = new(StringComparer.Ordinal);
    private readonly Gauge _arpEntries;
    private readonly Gauge _pods;
    private readonly Gauge _peers;
    private readonly Gauge _workers;
    private readonly Gauge _forwarding;
    private readonly Gauge _leaseHeld;
    private readonly Gauge _leaseExpiry;
    private readonly Gauge _etcdConnected;
    private readonly HashSet<string> _ports = new(StringComparer.Ordinal);
    private readonly ServiceMetrics _services;

    public NodeMetrics(NodeApi api)
    {
        _api = api;
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var f = Prometheus.Metrics.WithCustomRegistry(Registry);
        _events = f.CreateCounter("fastoverlay_packets_total", "Packets through the pipeline by what happened to them (rx, tx, encapsulated, decapsulated, delivered to pods, ARP, ICMP)", "event");
        _drops = f.CreateCounter("fastoverlay_drops_total", "Packets the pipeline dropped, by reason (one reason per line of DropReason)", "reason");
        _portPackets = f.CreateCounter("fastoverlay_port_packets_total", "Frames received and sent per port (pod veths and the underlay socket)", "port", "direction");
        _portBytes = f.CreateCounter("fastoverlay_port_bytes_total", "Bytes received and sent per port", "port", "direction");
        _peerPackets = f.CreateCounter("fastoverlay_peer_packets_total", "VXLAN packets sent to (tx) and received from (rx) each peer node, by its pod subnet", "peer", "direction");
        _peerBytes = f.CreateCounter("fastoverlay_peer_bytes_total", "Bytes sent to each peer (VXLAN datagrams) and received from it (inner frames)", "peer", "direction");
        _portDrops = f.CreateCounter("fastoverlay_port_kernel_drops_total", "Frames the kernel dropped on a port's socket (ring full)", "port");
        _arpEntries = f.CreateGauge("fastoverlay_arp_entries", "Entries in the node's ARP table");
        _pods = f.CreateGauge("fastoverlay_pods", "Pod ports, by where they came from (config file or node API)", "source");
        _peers = f.CreateGauge("fastoverlay_peers", "Peer nodes with a route and a VXLAN template");
        _workers = f.CreateGauge("fastoverlay_workers", "Forwarding threads");
        _forwarding = f.CreateGauge("fastoverlay_forwarding", "1 while the data path runs (an etcd node without a lease: 0)");
        _leaseHeld = f.CreateGauge("fastoverlay_lease_held", "etcd mode: 1 while this node holds its subnet lease (and so reaches etcd)");
        _etcdConnected = f.CreateGauge("fastoverlay_etcd_connected", "etcd mode: 1 while the peer watch reaches etcd, 0 while it does not (forwarding goes on with the last known peers)");
        _leaseExpiry = f.CreateGauge("fastoverlay_lease_expiry_timestamp_seconds", "etcd mode: when the held lease expires unless renewed");
        var version = typeof(NodeMetrics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        f.CreateGauge("fastoverlay_build_info", "Build of the running fastoverlay (always 1)", "version", "runtime").WithLabels(version, Environment.Version.ToString()).Set(1);
        _services = new ServiceMetrics(f);
        Registry.AddBeforeCollectCallback(Collect);
    }

    public CollectorRegistry Registry { get; }

    // Two scrapes at once must not interleave their port bookkeeping.
    private void Collect()
    {
        lock (_ports) CollectLocked();
    }

    private void CollectLocked()
    {
        var controller = _api.Controller;
        _forwarding.Set(controller is null ? 0 : 1);
        _workers.Set(controller?.Workers.Count ?? 0);
        if (_api.Lease() is { } lease)
        {
            _leaseHeld.Set(lease.Held ? 1 : 0);
            _leaseExpiry.Set(lease.Expires.ToUnixTimeSeconds());
            _etcdConnected.Set(lease.EtcdConnected == true ? 1 : 0);
        }
        if (controller is null) return;
        var c = controller.TotalCounters();
        foreach (var counter in Enum.GetValues<NodeCounter>())
        {
            if (counter != NodeCounter.Polls) _events.WithLabels(counter.ToString()).IncTo(c[counter]);
        }
        foreach (var (reason, count) in c.NonZeroDrops()) _drops.WithLabels(reason.ToString()).IncTo(count);
        // Each worker keeps its own ARP cache (neighbours are shared between them): the fullest one is the node's.
        _arpEntries.Set(controller.Workers.Max(w => w.Forwarder.Arp.Count));
        var state = controller.Forwarder.State;
        _peers.Set(state.Peers.Count);
        var fromFile = controller.Config.Node.Pods.Count;
        _pods.WithLabels("config").Set(fromFile);
        _pods.WithLabels("api").Set(state.Ports.Count(p => p is not null) - 1 - fromFile);
        CollectPorts(controller);
        CollectPeers(controller);
        _services.Collect(controller);
    }

    /// <summary>Each peer's counters summed over the workers; a peer that left loses its series.</summary>
    private void CollectPeers(NodeController controller)
    {
        var totals = new Dictionary<string, (long TxPackets, long TxBytes, long RxPackets, long RxBytes)>(StringComparer.Ordinal);
        foreach (var worker in controller.Workers)
        {
            foreach (var template in worker.Forwarder.State.Templates)
            {
                var name = template.Peer.Subnet.ToString();
                var c = template.Counters;
                var t = totals.GetValueOrDefault(name);
                totals[name] = (t.TxPackets + c.TxPackets, t.TxBytes + c.TxBytes, t.RxPackets + c.RxPackets, t.RxBytes + c.RxBytes);
            }
        }
        foreach (var (name, t) in totals)
        {
            _peerPackets.WithLabels(name, "tx").IncTo(t.TxPackets);
            _peerPackets.WithLabels(name, "rx").IncTo(t.RxPackets);
            _peerBytes.WithLabels(name, "tx").IncTo(t.TxBytes);
            _peerBytes.WithLabels(name, "rx").IncTo(t.RxBytes);
        }
        foreach (var gone in _peerSeries.Except(totals.Keys).ToList())
        {
            foreach (var direction in new[] { "tx", "rx" })
            {
                _peerPackets.RemoveLabelled(gone, direction);
                _peerBytes.RemoveLabelled(gone, direction);
            }
            _peerSeries.Remove(gone);
        }
        _peerSeries.UnionWith(totals.Keys);
    }

    /// <summary>
    /// Ports of the current states, summed over the workers (each has its own socket per port, same name); a port
    /// that left loses its series (a new port of that name starts again from 0).
    /// </summary>
    private void CollectPorts(NodeController controller)
    {
        var totals = new Dictionary<string, (long RxFrames, long TxFrames, long RxBytes, long TxBytes, long Drops)>(StringComparer.Ordinal);
        foreach (var worker in controller.Workers)
        {
            foreach (var port in worker.Forwarder.State.Ports)
            {
                if (port is not ISocketPort socket) continue;
                var p = socket.Counters;
                var t = totals.GetValueOrDefault(port.Name);
                totals[port.Name] = (t.RxFrames + p.RxFrames, t.TxFrames + p.TxFrames, t.RxBytes + p.RxBytes, t.TxBytes + p.TxBytes, t.Drops + p.KernelDrops);
            }
        }
        foreach (var (name, t) in totals)
        {
            _portPackets.WithLabels(name, "rx").IncTo(t.RxFrames);
            _portPackets.WithLabels(name, "tx").IncTo(t.TxFrames);
            _portBytes.WithLabels(name, "rx").IncTo(t.RxBytes);
            _portBytes.WithLabels(name, "tx").IncTo(t.TxBytes);
            _portDrops.WithLabels(name).IncTo(t.Drops);
        }
        var seen = totals.Keys.ToHashSet(StringComparer.Ordinal);
        foreach (var gone in _ports.Except(seen).ToList())
        {
            _portPackets.RemoveLabelled(gone, "rx");
            _portPackets.RemoveLabelled(gone, "tx");
            _portBytes.RemoveLabelled(gone, "rx");
            _portBytes.RemoveLabelled(gone, "tx");
            _portDrops.RemoveLabelled(gone);
            _ports.Remove(gone);
        }
        _ports.UnionWith(seen);
    }
}
