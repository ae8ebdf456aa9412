using FastOverlay.Pipeline;
using FastOverlay.Ports;

namespace FastOverlay.Cli.Api;

/// <summary>The JSON documents of the node API (status, pods, counters), built from snapshots on the API thread.</summary>
internal static class StatusReport
{
    public static object Status(NodeApi api)
    {
        var controller = api.Controller;
        var state = controller?.Forwarder.State;
        var node = state?.Node;
        return new
        {
            node = node is null ? null : new
            {
                name = node.Name,
                publicIp = node.PublicIp.ToString(),
                subnet = node.Subnet.ToString(),
                gateway = Wire.Ipv4Address.Format(node.GatewayIp),
                gatewayMac = node.GatewayMac.ToString(),
                vtepMac = node.VtepMac.ToString(),
                vni = node.Vni,
                port = node.VxlanPort,
                mtu = node.InnerMtu,
            },
            forwarding = controller is not null,
            source = api.Source,
            lease = api.Lease(),
            peers = Peers(state),
            pods = Pods(api),
            features = new
            {
                vnetHeader = api.PodOptions.VnetHeader,
                coalesce = api.PodOptions.Coalesce,
                podRing = api.PodOptions.Ring.ToString(),
                proxyArp = node?.ProxyArp ?? false,
            },
            workers = controller?.Workers.Count ?? 0,
            uptimeSeconds = Math.Round(api.Uptime.TotalSeconds, 1),
            podStateFile = api.Pods.StateFile,
        };
    }

    public static object[] Peers(ForwardingState? state) => state is null ? [] :
        [.. state.Peers.All.ToArray().Select(p => new { name = p.Name, publicIp = p.PublicIp.ToString(), subnet = p.Subnet.ToString(), vtepMac = p.VtepMac.ToString() })];

    public static object[] Pods(NodeApi api)
    {
        var controller = api.Controller;
        if (controller is null) return [.. api.Pods.Pods.Select(p => Pod(p.Interface, p.Ip, p.Mac, p.ContainerId, "api", null))];
        var ports = Latest(controller.Ports);
        var apiPods = api.Pods.Pods.ToDictionary(p => p.Interface, StringComparer.Ordinal);
        var merged = Control.NodeController.Merge(controller.Config, controller.ApiPods).Node.Pods;
        return [.. merged.Select(p =>
        {
            apiPods.TryGetValue(p.Interface, out var a);
            var fromFile = controller.Config.Node.Pods.Any(f => f.Interface == p.Interface);
            return Pod(p.Interface, p.Ip?.ToString(), a?.Mac, a?.ContainerId, fromFile ? "config" : "api", ports.GetValueOrDefault(p.Interface));
        })];
    }

    private static object Pod(string name, string? ip, string? mac, string? containerId, string source, IPacketPort? port) => new
    {
        @interface = name,
        ip,
        mac,
        containerId,
        source,
        port = port is AfPacketPort af ? new { vnetHeader = af.VnetHeader, coalescing = af.Coalescing, offloads = af.OffloadSummary, rxFrames = af.Counters.RxFrames, txFrames = af.Counters.TxFrames } : null,
    };

    public static object Counters(NodeApi api)
    {
        var controller = api.Controller;
        if (controller is null) return new { forwarding = false };
        var c = controller.TotalCounters();
        return new
        {
            forwarding = true,
            node = Enum.GetValues<Counter>().ToDictionary(k => k.ToString(), k => c[k]),
            drops = c.NonZeroDrops().ToDictionary(d => d.Reason.ToString(), d => d.Count),
            arpEntries = controller.Workers.Max(w => w.Forwarder.Arp.Count),
            ports = Latest(controller.Ports).Values.OfType<ISocketPort>().ToDictionary(p => p.Name, p => Port(p.Counters)),
        };
    }

    /// <summary>By name; a retired port not yet closed may share its name with its successor, which wins.</summary>
    private static Dictionary<string, IPacketPort> Latest(IReadOnlyList<IPacketPort> ports)
    {
        var byName = new Dictionary<string, IPacketPort>(StringComparer.Ordinal);
        foreach (var port in ports) byName.TryAdd(port.Name, port);
        return byName;
    }

    private static object Port(PortCounters p) => new
    {
        rxFrames = p.RxFrames, rxBytes = p.RxBytes, txFrames = p.TxFrames, txBytes = p.TxBytes,
        rxErrors = p.RxErrors, txErrors = p.TxErrors, kernelDrops = p.KernelDrops,
        drops = p.NonZeroDrops().ToDictionary(d => d.Reason.ToString(), d => d.Count),
    };
}
