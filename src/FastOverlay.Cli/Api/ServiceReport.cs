using FastOverlay.Tables.Services;
using FastOverlay.Wire;

namespace FastOverlay.Cli.Api;

/// <summary>The Services the running node load-balances, with their endpoints and counters, for /v1/services.</summary>
internal static class ServiceReport
{
    public static object Services(NodeApi api)
    {
        if (api.Controller is not { } controller) return new { services = Array.Empty<object>() };
        var table = controller.Forwarder.State.Services;
        var conntrack = controller.Conntrack;
        return new
        {
            services = table.Ports.Select(p => new
            {
                @namespace = p.Namespace,
                name = p.Name,
                port = p.PortName,
                protocol = p.Protocol == 6 ? "TCP" : "UDP",
                clusterIp = p.ClusterIp == 0 ? null : Ipv4Address.Format(p.ClusterIp),
                servicePort = p.Port,
                nodePort = p.NodePort == 0 ? (int?)null : p.NodePort,
                externalTrafficPolicy = p.ExternalPolicy.ToString(),
                internalTrafficPolicy = p.InternalPolicy.ToString(),
                sessionAffinity = p.Affinity ? "ClientIP" : "None",
                packets = p.Counters[ServiceCounter.Packets],
                replyPackets = p.Counters[ServiceCounter.ReplyPackets],
                flows = p.Counters[ServiceCounter.Flows],
                noEndpoint = p.Counters[ServiceCounter.NoEndpoint],
                endpoints = p.Backends.Select(b => new
                {
                    address = b.Name,
                    local = b.Local,
                    ready = b.Ready,
                    serving = b.Serving,
                    terminating = b.Terminating,
                    // In the Maglev table new cluster-wide flows use (ready, or the terminating fallback).
                    selectable = p.Internal.Members.Contains(b) || p.External.Members.Contains(b),
                    flows = b.Counters[ServiceCounter.Flows],
                }),
            }),
            conntrack = conntrack is null ? null : new
            {
                entries = conntrack.Count,
                capacity = (long)conntrack.CapacityPerWorker * conntrack.Workers,
                insertFailures = conntrack.InsertFailures,
            },
        };
    }
}
