using FastOverlay.Pipeline;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Config;

/// <summary>A loaded configuration in the data plane's terms: the node's options, its peers and its pods.</summary>
public sealed record NodePlan(NodeOptions Options, IReadOnlyList<Peer> Peers, IReadOnlyList<PodConfig> Pods, string? UnderlayInterface, string? HostInterface = null)
{
    public static NodePlan From(OverlayConfig config)
    {
        var node = config.Node;
        var options = new NodeOptions
        {
            Name = node.Name,
            PublicIp = node.PublicIp,
            Subnet = node.Subnet,
            VtepMac = node.VtepMac,
            GatewayMac = node.GatewayMac ?? throw new ArgumentException("configuration not resolved: load it with ConfigLoader", nameof(config)),
            // The UDP underlay leaves outer Ethernet to the kernel; no MAC of ours appears on the wire.
            UnderlayMac = MacAddress.Zero,
            Vni = config.Backend.Vni,
            VxlanPort = config.Backend.Port,
            UnderlayMtu = (config.Backend.Mtu ?? ConfigLoader.DefaultMtu) + VxlanHeader.OverheadIpv4,
        };
        var peers = config.Peers.Select(p => new Peer(p.Name, p.PublicIp, p.Subnet, p.VtepMac)).ToArray();
        return new NodePlan(options, peers, config.Node.Pods, node.Underlay, node.HostInterface);
    }
}
