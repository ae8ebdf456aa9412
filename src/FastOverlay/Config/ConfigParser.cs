using System.Text.Json;
using FastOverlay.Wire;

namespace FastOverlay.Config;

/// <summary>
/// JSON to <see cref="OverlayConfig"/>: syntax, keys, types and formats, each error naming its JSON path. Field
/// relations (subnets inside Network, overlaps, duplicates, interfaces) are <see cref="ConfigValidator"/>'s.
/// </summary>
internal static class ConfigParser
{
    // flannel's net-conf.json keys (Documentation/configuration.md), then FastOverlay's sections.
    private static readonly string[] TopKeys =
    [
        "Network", "SubnetLen", "SubnetMin", "SubnetMax", "Backend", "EnableIPv4", "EnableIPv6", "IPv6Network",
        "IPv6SubnetLen", "IPv6SubnetMin", "IPv6SubnetMax", "EnableNFTables", "Node", "Peers", "Services", "ServiceOptions",
    ];
    // flannel's vxlan backend keys (Documentation/backends.md).
    private static readonly string[] BackendKeys = ["Type", "VNI", "Port", "MTU", "GBP", "Learning", "DirectRouting"];
    private static readonly string[] NodeKeys = ["Name", "PublicIP", "Subnet", "VtepMAC", "Underlay", "HostInterface", "GatewayMAC", "Pods"];
    private static readonly string[] PodKeys = ["Interface", "IP"];
    private static readonly string[] PeerKeys = ["Name", "PublicIP", "Subnet", "VtepMAC"];

    public static OverlayConfig Parse(byte[] json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new ConfigException("", $"not valid JSON: {e.Message}");
        }
        using (document)
        {
            return ParseRoot(new JsonFields(document.RootElement, "", TopKeys));
        }
    }

    private static OverlayConfig ParseRoot(JsonFields top)
    {
        var network = top.Prefix("Network");
        // flannel: /24 leases unless Network is smaller than a /22, then Network's length + 2.
        var subnetLen = (int?)top.OptionalInteger("SubnetLen", 1, 30, "1..30") ?? (network.Length > 22 ? network.Length + 2 : 24);
        if (!top.OptionalBool("EnableIPv4", true)) throw new ConfigException("EnableIPv4", "false is not supported: FastOverlay forwards IPv4 only");
        if (top.OptionalBool("EnableIPv6", false)) throw new ConfigException("EnableIPv6", "true is not supported: FastOverlay forwards IPv4 only");
        // Accepted so that a flannel file loads unchanged; with IPv6 off flannel ignores them too.
        top.OptionalString("IPv6Network");
        top.OptionalInteger("IPv6SubnetLen", 1, 128, "1..128");
        top.OptionalString("IPv6SubnetMin");
        top.OptionalString("IPv6SubnetMax");
        top.OptionalBool("EnableNFTables", false);
        if (!top.Has("Backend")) throw new ConfigException("Backend", "required (FastOverlay implements flannel's {\"Type\": \"vxlan\"} backend)");
        if (!top.Has("Node")) throw new ConfigException("Node", "required: this node's Name, PublicIP, Subnet and VtepMAC");
        return new OverlayConfig
        {
            Network = network,
            SubnetLen = subnetLen,
            SubnetMin = top.OptionalAddress("SubnetMin"),
            SubnetMax = top.OptionalAddress("SubnetMax"),
            Backend = ParseBackend(new JsonFields(top.Required("Backend"), "Backend", BackendKeys)),
            Node = ParseNode(new JsonFields(top.Required("Node"), "Node", NodeKeys)),
            Peers = [.. top.Array("Peers").Select(p => ParsePeer(new JsonFields(p.Element, p.Path, PeerKeys)))],
            Services = ServiceConfigParser.ParseServices(top),
            ServiceOptions = ServiceConfigParser.ParseOptions(top),
        };
    }

    private static BackendConfig ParseBackend(JsonFields b)
    {
        // flannel's default backend is udp; say so rather than "required".
        if (!b.Has("Type")) throw new ConfigException("Backend.Type", "required (flannel would default to \"udp\"); FastOverlay implements \"vxlan\"");
        var type = b.String("Type");
        if (!string.Equals(type, "vxlan", StringComparison.OrdinalIgnoreCase))
            throw new ConfigException("Backend.Type", $"'{type}' is not supported; FastOverlay implements flannel's vxlan backend");
        var port = b.OptionalInteger("Port", 0, 65535, "1..65535, or 0 for the kernel default 8472");
        var backend = new BackendConfig
        {
            Type = "vxlan",
            Vni = (uint)(b.OptionalInteger("VNI", 0, VxlanHeader.MaxVni, "0..16777215, 24 bits") ?? 1),
            Port = port is null or 0 ? VxlanHeader.LinuxPort : (ushort)port.Value,
            Mtu = (int?)b.OptionalInteger("MTU", ConfigLoader.MinMtu, ConfigLoader.MaxMtu,
                $"{ConfigLoader.MinMtu}..{ConfigLoader.MaxMtu}: the underlay needs 50 bytes more, and a packet buffer holds {Pipeline.PacketPool.MaxFrameLength}-byte frames"),
            DirectRouting = b.OptionalBool("DirectRouting", false),
            Gbp = b.OptionalBool("GBP", false),
            Learning = b.OptionalBool("Learning", false),
        };
        if (backend.DirectRouting) throw new ConfigException("Backend.DirectRouting", "true is not supported: FastOverlay reaches every peer through VXLAN; remove it or set false");
        if (backend.Gbp) throw new ConfigException("Backend.GBP", "true is not supported: FastOverlay does not implement the VXLAN Group Based Policy extension");
        if (backend.Learning) throw new ConfigException("Backend.Learning", "true is not supported: peers are configured, never learned (flannel runs flannel.1 with nolearning too)");
        return backend;
    }

    private static NodeConfig ParseNode(JsonFields n) => new()
    {
        Name = n.String("Name"),
        PublicIp = n.Address("PublicIP"),
        Subnet = n.Prefix("Subnet"),
        VtepMac = n.Mac("VtepMAC"),
        Underlay = n.OptionalString("Underlay"),
        HostInterface = n.OptionalString("HostInterface"),
        GatewayMac = n.OptionalMac("GatewayMAC"),
        Pods = [.. n.Array("Pods").Select(p => ParsePod(new JsonFields(p.Element, p.Path, PodKeys)))],
    };

    private static PodConfig ParsePod(JsonFields p) => new(p.String("Interface"), p.OptionalAddress("IP"));

    private static PeerConfig ParsePeer(JsonFields p) => new(p.String("Name"), p.Address("PublicIP"), p.Prefix("Subnet"), p.Mac("VtepMAC"));
}
