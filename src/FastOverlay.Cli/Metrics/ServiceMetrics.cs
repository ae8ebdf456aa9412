using FastOverlay.Control;
using FastOverlay.Tables.Services;
using Prometheus;

namespace FastOverlay.Cli.Metrics;

/// <summary>
/// Per Service port and per backend, from the counters the workers publish (summed over their rows at scrape time),
/// and the connection-tracking table's fill. A service port or backend that leaves loses its series.
/// </summary>
internal sealed class ServiceMetrics
{
    private static readonly string[] PortLabels = ["namespace", "service", "port", "protocol"];
    private readonly Counter _packets;
    private readonly Counter _bytes;
    private readonly Counter _flows;
    private readonly Counter _noEndpoint;
    private readonly Counter _backendFlows;
    private readonly Gauge _endpoints;
    private readonly Gauge _conntrackEntries;
    private readonly Gauge _conntrackCapacity;
    private readonly Counter _conntrackFailures;
    private readonly HashSet<string[]> _portSeries = new(LabelComparer.Instance);
    private readonly HashSet<string[]> _backendSeries = new(LabelComparer.Instance);

    public ServiceMetrics(MetricFactory f)
    {
        _packets = f.CreateCounter("fastoverlay_service_packets_total", "Packets translated per Service port: toward a backend (forward) and back to the client (reply)", [.. PortLabels, "direction"]);
        _bytes = f.CreateCounter("fastoverlay_service_bytes_total", "IPv4 bytes translated per Service port and direction", [.. PortLabels, "direction"]);
        _flows = f.CreateCounter("fastoverlay_service_flows_total", "Flows created per Service port (a backend chosen)", PortLabels);
        _noEndpoint = f.CreateCounter("fastoverlay_service_no_endpoint_total", "New flows refused per Service port for want of a usable endpoint (rejected, or dropped under a Local policy)", PortLabels);
        _backendFlows = f.CreateCounter("fastoverlay_service_backend_flows_total", "Flows created per backend of a Service port", [.. PortLabels, "backend"]);
        _endpoints = f.CreateGauge("fastoverlay_service_endpoints", "Endpoints per Service port by condition (ready, terminating, local)", [.. PortLabels, "condition"]);
        _conntrackEntries = f.CreateGauge("fastoverlay_conntrack_entries", "Service flows in the connection-tracking tables (live, or expired and not yet reclaimed)");
        _conntrackCapacity = f.CreateGauge("fastoverlay_conntrack_capacity", "Flows the connection-tracking tables hold (per worker times workers)");
        _conntrackFailures = f.CreateCounter("fastoverlay_conntrack_insert_failures_total", "New service flows refused because the table was full (fail closed)");
    }

    public void Collect(NodeController controller)
    {
        var services = controller.Forwarder.State.Services;
        var ports = new HashSet<string[]>(LabelComparer.Instance);
        var backends = new HashSet<string[]>(LabelComparer.Instance);
        foreach (var port in services.Ports)
        {
            string[] labels = [port.Namespace, port.Name, port.PortName, port.Protocol == 6 ? "TCP" : "UDP"];
            ports.Add(labels);
            var c = port.Counters;
            _packets.WithLabels([.. labels, "forward"]).IncTo(c[ServiceCounter.Packets]);
            _packets.WithLabels([.. labels, "reply"]).IncTo(c[ServiceCounter.ReplyPackets]);
            _bytes.WithLabels([.. labels, "forward"]).IncTo(c[ServiceCounter.Bytes]);
            _bytes.WithLabels([.. labels, "reply"]).IncTo(c[ServiceCounter.ReplyBytes]);
            _flows.WithLabels(labels).IncTo(c[ServiceCounter.Flows]);
            _noEndpoint.WithLabels(labels).IncTo(c[ServiceCounter.NoEndpoint]);
            _endpoints.WithLabels([.. labels, "ready"]).Set(port.Backends.Count(b => b.Ready));
            _endpoints.WithLabels([.. labels, "terminating"]).Set(port.Backends.Count(b => b.Terminating));
            _endpoints.WithLabels([.. labels, "local"]).Set(port.Backends.Count(b => b.Local));
            foreach (var b in port.Backends)
            {
                string[] backend = [.. labels, b.Name];
                backends.Add(backend);
                _backendFlows.WithLabels(backend).IncTo(b.Counters[ServiceCounter.Flows]);
            }
        }
        foreach (var gone in _portSeries.Where(s => !ports.Contains(s)).ToList())
        {
            foreach (var direction in new[] { "forward", "reply" })
            {
                _packets.RemoveLabelled([.. gone, direction]);
                _bytes.RemoveLabelled([.. gone, direction]);
            }
            _flows.RemoveLabelled(gone);
            _noEndpoint.RemoveLabelled(gone);
            foreach (var condition in new[] { "ready", "terminating", "local" }) _endpoints.RemoveLabelled([.. gone, condition]);
            _portSeries.Remove(gone);
        }
        foreach (var gone in _backendSeries.Where(s => !backends.Contains(s)).ToList())
        {
            _backendFlows.RemoveLabelled(gone);
            _backendSeries.Remove(gone);
        }
        _portSeries.UnionWith(ports);
        _backendSeries.UnionWith(backends);

        if (controller.Conntrack is { } conntrack)
        {
            _conntrackEntries.Set(conntrack.Count);
            _conntrackCapacity.Set((long)conntrack.CapacityPerWorker * conntrack.Workers);
            _conntrackFailures.IncTo(conntrack.InsertFailures);
        }
    }

    private sealed class LabelComparer : IEqualityComparer<string[]>
    {
        public static readonly LabelComparer Instance = new();
        public bool Equals(string[]? a, string[]? b) => a is not null && b is not null && a.AsSpan().SequenceEqual(b);
        public int GetHashCode(string[] labels)
        {
            var h = new HashCode();
            foreach (var l in labels) h.Add(l, StringComparer.Ordinal);
            return h.ToHashCode();
        }
    }
}
