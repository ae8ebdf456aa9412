using System.Text.Json;
using FastOverlay.Control.Subnets;
using FastOverlay.Wire;

namespace FastOverlay.Config;

/// <summary>The file's optional "Etcd" section: flanneld's --etcd-endpoints and --etcd-prefix (flags override it).</summary>
public sealed record EtcdFileSettings(IReadOnlyList<string> Endpoints, string? Prefix);

/// <summary>This node as the file describes it in etcd mode: everything but the lease is optional (the lease comes from etcd).</summary>
public sealed record NodeTemplate
{
    public string? Name { get; init; }
    public Ipv4Address? PublicIp { get; init; }
    /// <summary>When given, the subnet to ask for, and the lease must be this one.</summary>
    public Ipv4Prefix? Subnet { get; init; }
    public MacAddress? VtepMac { get; init; }
    public string? Underlay { get; init; }
    public string? HostInterface { get; init; }
    public MacAddress? GatewayMac { get; init; }
    public IReadOnlyList<PodConfig> Pods { get; init; } = [];
}

/// <summary>
/// A configuration file in etcd mode: <c>{"Etcd": {...}, "Node": {...}}</c>. Network, SubnetLen/Min/Max, Backend and
/// Peers are refused: they come from etcd (<c>&lt;prefix&gt;/config</c> and the other nodes' leases), and two sources
/// of truth would disagree sooner or later. "Services" and "ServiceOptions" are the node's own, as in a static
/// file: the file's Services are merged with etcd's <c>/fastoverlay/services/</c> (a Service in both is the file's).
/// </summary>
public sealed record EtcdNodeFile(EtcdFileSettings? Etcd, NodeTemplate Node)
{
    public IReadOnlyList<ServiceConfig> Services { get; init; } = [];
    public ServiceOptionsConfig ServiceOptions { get; init; } = new();

    private static readonly string[] FromEtcd = ["Network", "SubnetLen", "SubnetMin", "SubnetMax", "Backend", "Peers", "EnableIPv4", "EnableIPv6", "IPv6Network", "IPv6SubnetLen", "IPv6SubnetMin", "IPv6SubnetMax", "EnableNFTables"];
    private static readonly string[] TopKeys = ["Etcd", "Node", "Services", "ServiceOptions", .. FromEtcd];
    private static readonly string[] EtcdKeys = ["Endpoints", "Prefix"];
    private static readonly string[] NodeKeys = ["Name", "PublicIP", "Subnet", "VtepMAC", "Underlay", "HostInterface", "GatewayMAC", "Pods"];
    private static readonly string[] PodKeys = ["Interface", "IP"];

    /// <summary>True when the file has a top-level "Etcd" key (then it is parsed here, not by the static-peers parser).</summary>
    public static bool HasEtcdSection(byte[] json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("Etcd", out _);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    public static EtcdNodeFile Parse(byte[] json)
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
            var top = new JsonFields(document.RootElement, "", TopKeys);
            foreach (var key in FromEtcd)
            {
                if (top.Has(key)) throw new ConfigException(key, "not allowed in etcd mode: the network config comes from etcd's <prefix>/config and the peers from the other nodes' leases");
            }
            EtcdFileSettings? etcd = null;
            if (top.Optional("Etcd") is { } e)
            {
                var fields = new JsonFields(e, "Etcd", EtcdKeys);
                etcd = new EtcdFileSettings([.. fields.Array("Endpoints").Select(x => ReadString(x.Element, x.Path))], fields.OptionalString("Prefix"));
            }
            var node = top.Optional("Node") is { } n ? ParseNode(new JsonFields(n, "Node", NodeKeys)) : new NodeTemplate();
            return new EtcdNodeFile(etcd, node)
            {
                Services = ServiceConfigParser.ParseServices(top),
                ServiceOptions = ServiceConfigParser.ParseOptions(top),
            };
        }
    }

    /// <summary>The full configuration once etcd's network and our lease are known; pods outside the lease are refused by validation.</summary>
    public OverlayConfig ToConfig(FlannelNetwork network, AcquiredLease lease, Ipv4Address publicIp, string? underlay, string defaultName)
    {
        if (Node.Subnet is { } wanted && wanted != lease.Subnet)
            throw new ConfigException("Node.Subnet", $"{wanted} is not the subnet etcd leased to this node ({lease.Subnet}); remove Node.Subnet or free that subnet");
        return new OverlayConfig
        {
            Network = network.Network,
            SubnetLen = network.SubnetLen,
            SubnetMin = network.SubnetMin,
            SubnetMax = network.SubnetMax,
            Backend = network.Backend,
            Node = new NodeConfig
            {
                Name = Node.Name ?? defaultName,
                PublicIp = publicIp,
                Subnet = lease.Subnet,
                VtepMac = lease.Attrs.VtepMac!.Value,
                Underlay = underlay ?? Node.Underlay,
                HostInterface = Node.HostInterface,
                GatewayMac = Node.GatewayMac,
                Pods = Node.Pods,
            },
            Services = Services,
            ServiceOptions = ServiceOptions,
        };
    }

    private static NodeTemplate ParseNode(JsonFields n) => new()
    {
        Name = n.OptionalString("Name"),
        PublicIp = n.OptionalAddress("PublicIP"),
        Subnet = n.Has("Subnet") ? n.Prefix("Subnet") : null,
        VtepMac = n.OptionalMac("VtepMAC"),
        Underlay = n.OptionalString("Underlay"),
        HostInterface = n.OptionalString("HostInterface"),
        GatewayMac = n.OptionalMac("GatewayMAC"),
        Pods = [.. n.Array("Pods").Select(p => new JsonFields(p.Element, p.Path, PodKeys)).Select(p => new PodConfig(p.String("Interface"), p.OptionalAddress("IP")))],
    };

    private static string ReadString(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new ConfigException(path, "expected a URL string");
}
