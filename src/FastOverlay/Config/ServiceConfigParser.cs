using System.Globalization;
using System.Text.Json;

namespace FastOverlay.Config;

/// <summary>
/// JSON to <see cref="ServiceConfig"/> and <see cref="ServiceOptionsConfig"/>: keys, types, formats, ranges and
/// defaults, each error naming its JSON path. One object is the same whether it is an element of the file's
/// "Services" or the value of one etcd key (<see cref="ParseOne"/>). Relations between fields and between Services
/// are <see cref="ServiceConfigValidator"/>'s and <see cref="ServiceClaims"/>'.
/// </summary>
public static class ServiceConfigParser
{
    private static readonly string[] ServiceKeys =
    [
        "Name", "Namespace", "ClusterIP", "Type", "Ports", "ExternalTrafficPolicy", "InternalTrafficPolicy", "SessionAffinity",
        "SessionAffinityTimeoutSeconds", "LoadBalancerIPs", "LoadBalancerSourceRanges", "ExternalIPs", "HealthCheckNodePort", "ExternalName", "Endpoints",
    ];
    private static readonly string[] PortKeys = ["Name", "Protocol", "Port", "TargetPort", "NodePort"];
    private static readonly string[] EndpointKeys = ["IP", "Node", "Ready", "Serving", "Terminating"];
    private static readonly string[] OptionKeys =
    [
        "NodePortRange", "MaglevTableSize", "ConntrackCapacity", "TcpSynTimeoutSeconds", "TcpEstablishedTimeoutSeconds",
        "TcpClosingTimeoutSeconds", "UdpTimeoutSeconds", "UdpStreamTimeoutSeconds", "IcmpTimeoutSeconds", "HairpinAddress",
    ];

    // Kubernetes spells these values exactly so (core/v1 types.go); a case mismatch gets a hint, not a silent match.
    private static readonly (string, ServiceType)[] Types =
        [("ClusterIP", ServiceType.ClusterIP), ("NodePort", ServiceType.NodePort), ("LoadBalancer", ServiceType.LoadBalancer), ("ExternalName", ServiceType.ExternalName)];
    private static readonly (string, TrafficPolicy)[] Policies = [("Cluster", TrafficPolicy.Cluster), ("Local", TrafficPolicy.Local)];
    private static readonly (string, SessionAffinity)[] Affinities = [("None", SessionAffinity.None), ("ClientIP", SessionAffinity.ClientIP)];
    private static readonly (string, L4Protocol)[] Protocols = [("TCP", L4Protocol.Tcp), ("UDP", L4Protocol.Udp)];

    /// <summary>The largest Maglev table Cilium offers (bpf-lb-maglev-table-size): each Service port holds one.</summary>
    public const int MaxMaglevTableSize = 131071;
    public const int MinConntrackCapacity = 1024;
    public const int MaxConntrackCapacity = 16 * 1024 * 1024;

    /// <summary>
    /// One Service from an etcd value: the JSON object of one element of "Services". Errors name paths under
    /// <paramref name="path"/> ("" gives <c>Ports[0].NodePort</c>). Throws <see cref="ConfigException"/>.
    /// </summary>
    public static ServiceConfig ParseOne(ReadOnlyMemory<byte> json, string path = "")
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new ConfigException(path, $"not valid JSON: {e.Message}");
        }
        using (document)
        {
            return ParseService(new JsonFields(document.RootElement, path, ServiceKeys));
        }
    }

    internal static IReadOnlyList<ServiceConfig> ParseServices(JsonFields top, string key = "Services") =>
        [.. top.Array(key).Select(s => ParseService(new JsonFields(s.Element, s.Path, ServiceKeys)))];

    internal static ServiceOptionsConfig ParseOptions(JsonFields top, string key = "ServiceOptions")
    {
        var defaults = new ServiceOptionsConfig();
        if (top.Optional(key) is not { } element) return defaults;
        var o = new JsonFields(element, top.PathOf(key), OptionKeys);
        var (min, max) = o.OptionalString("NodePortRange") is { } range ? ParsePortRange(range, o.PathOf("NodePortRange")) : (defaults.NodePortMin, defaults.NodePortMax);
        return new ServiceOptionsConfig
        {
            NodePortMin = min,
            NodePortMax = max,
            MaglevTableSize = (int?)o.OptionalInteger("MaglevTableSize", 7, MaxMaglevTableSize, $"7..{MaxMaglevTableSize}, a prime") ?? defaults.MaglevTableSize,
            ConntrackCapacity = (int?)o.OptionalInteger("ConntrackCapacity", MinConntrackCapacity, MaxConntrackCapacity, $"{MinConntrackCapacity}..{MaxConntrackCapacity} flows per worker") ?? defaults.ConntrackCapacity,
            TcpSynTimeoutSeconds = Seconds(o, "TcpSynTimeoutSeconds") ?? defaults.TcpSynTimeoutSeconds,
            TcpEstablishedTimeoutSeconds = Seconds(o, "TcpEstablishedTimeoutSeconds") ?? defaults.TcpEstablishedTimeoutSeconds,
            TcpClosingTimeoutSeconds = Seconds(o, "TcpClosingTimeoutSeconds") ?? defaults.TcpClosingTimeoutSeconds,
            UdpTimeoutSeconds = Seconds(o, "UdpTimeoutSeconds") ?? defaults.UdpTimeoutSeconds,
            UdpStreamTimeoutSeconds = Seconds(o, "UdpStreamTimeoutSeconds") ?? defaults.UdpStreamTimeoutSeconds,
            IcmpTimeoutSeconds = Seconds(o, "IcmpTimeoutSeconds") ?? defaults.IcmpTimeoutSeconds,
            HairpinAddress = o.OptionalAddress("HairpinAddress"),
        };
    }

    private static ServiceConfig ParseService(JsonFields s)
    {
        var type = Choice(s, "Type", ServiceType.ClusterIP, Types);
        var affinity = Choice(s, "SessionAffinity", SessionAffinity.None, Affinities);
        // kube-apiserver: "sessionAffinityConfig: must not be set when sessionAffinity is None".
        if (affinity == SessionAffinity.None && s.Optional("SessionAffinityTimeoutSeconds") is not null)
            throw new ConfigException(s.PathOf("SessionAffinityTimeoutSeconds"), "must not be set when SessionAffinity is None (the timeout is ClientIP affinity's)");
        return new ServiceConfig
        {
            Name = s.String("Name"),
            Namespace = s.OptionalString("Namespace") ?? "default",
            ClusterIp = ParseClusterIp(s, type),
            Type = type,
            Ports = [.. s.Array("Ports").Select(p => ParsePort(new JsonFields(p.Element, p.Path, PortKeys)))],
            ExternalTrafficPolicy = Choice(s, "ExternalTrafficPolicy", TrafficPolicy.Cluster, Policies),
            InternalTrafficPolicy = Choice(s, "InternalTrafficPolicy", TrafficPolicy.Cluster, Policies),
            SessionAffinity = affinity,
            SessionAffinityTimeoutSeconds = (int?)s.OptionalInteger("SessionAffinityTimeoutSeconds", 1, ServiceConfig.MaxAffinityTimeoutSeconds,
                $"1..{ServiceConfig.MaxAffinityTimeoutSeconds}, as Kubernetes' sessionAffinityConfig.clientIP.timeoutSeconds") ?? ServiceConfig.DefaultAffinityTimeoutSeconds,
            LoadBalancerIps = s.Addresses("LoadBalancerIPs"),
            LoadBalancerSourceRanges = ParseSourceRanges(s),
            ExternalIps = s.Addresses("ExternalIPs"),
            HealthCheckNodePort = (ushort?)s.OptionalInteger("HealthCheckNodePort", 1, 65535, "1..65535"),
            ExternalName = s.OptionalString("ExternalName"),
            Endpoints = [.. s.Array("Endpoints").Select(e => ParseEndpoint(new JsonFields(e.Element, e.Path, EndpointKeys)))],
        };
    }

    /// <summary>CIDRs as the API server takes them (Go's ParseCIDR): a.b.c.d/len, host bits allowed and dropped.</summary>
    private static IReadOnlyList<Wire.Ipv4Prefix> ParseSourceRanges(JsonFields s)
    {
        var ranges = new List<Wire.Ipv4Prefix>();
        foreach (var (element, path) in s.Array("LoadBalancerSourceRanges"))
        {
            var text = element.ValueKind == System.Text.Json.JsonValueKind.String ? element.GetString()! : null;
            var slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
            if (slash < 0 || !Wire.Ipv4Address.TryParse(text.AsSpan(0, slash), out var address)
                || !int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var length) || length > 32)
                throw new ConfigException(path, $"{(text is null ? $"expected a string, got {element.ValueKind}" : $"'{text}' is not an IPv4 CIDR")} (a.b.c.d/len, e.g. 203.0.113.0/24)");
            ranges.Add(new Wire.Ipv4Prefix(address.Value, length));
        }
        return ranges;
    }

    /// <summary>"None" is a headless Service (null). Nothing allocates addresses here, so a served Service must name its own.</summary>
    private static Wire.Ipv4Address? ParseClusterIp(JsonFields s, ServiceType type)
    {
        var text = s.OptionalString("ClusterIP");
        if (text is null)
        {
            if (type == ServiceType.ExternalName) return null;
            throw new ConfigException(s.PathOf("ClusterIP"), "required: the Service's IPv4 address (FastOverlay allocates none), or \"None\" for a headless Service");
        }
        if (text == "None") return null;
        return Wire.Ipv4Address.TryParse(text, out var ip) ? ip
            : throw new ConfigException(s.PathOf("ClusterIP"), $"'{text}' is not an IPv4 address or \"None\"");
    }

    private static ServicePortConfig ParsePort(JsonFields p)
    {
        if (p.OptionalString("Protocol") == "SCTP")
            throw new ConfigException(p.PathOf("Protocol"), "SCTP is not supported: FastOverlay's service path translates TCP and UDP only");
        var port = p.OptionalInteger("Port", 1, 65535, "1..65535") ?? throw new ConfigException(p.PathOf("Port"), "required");
        return new ServicePortConfig(
            p.OptionalString("Name"),
            Choice(p, "Protocol", L4Protocol.Tcp, Protocols),
            (ushort)port,
            ParseTargetPort(p) ?? (ushort)port,
            (ushort?)p.OptionalInteger("NodePort", 1, 65535, "1..65535"));
    }

    private static ushort? ParseTargetPort(JsonFields p)
    {
        if (p.Optional("TargetPort") is not { } v) return null;
        if (v.ValueKind == JsonValueKind.String)
        {
            throw new ConfigException(p.PathOf("TargetPort"), $"{JsonFields.Describe(v)} is a named port, which is not supported: an EndpointSlice " +
                "carries the resolved container port number, so give that number here");
        }
        return (ushort?)p.OptionalInteger("TargetPort", 1, 65535, "1..65535");
    }

    /// <summary>EndpointSlice conditions: Ready defaults to true, Serving to Ready, Terminating to false.</summary>
    private static EndpointConfig ParseEndpoint(JsonFields e)
    {
        var ready = e.OptionalBool("Ready", true);
        return new EndpointConfig(e.Address("IP"), e.OptionalString("Node"), ready, e.OptionalBool("Serving", ready), e.OptionalBool("Terminating", false));
    }

    /// <summary>kube-apiserver's --service-node-port-range form, "lo-hi" (30000-32767).</summary>
    private static (int Min, int Max) ParsePortRange(string text, string path)
    {
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0 || !int.TryParse(text.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var min)
                     || !int.TryParse(text.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var max))
            throw new ConfigException(path, $"'{text}' is not a port range (expected lo-hi, e.g. 30000-32767)");
        if (min < 1 || max > 65535 || min > max)
            throw new ConfigException(path, $"'{text}' is not a port range within 1..65535 with lo <= hi");
        return (min, max);
    }

    private static int? Seconds(JsonFields o, string key) => (int?)o.OptionalInteger(key, 1, int.MaxValue, "at least 1 second");

    private static T Choice<T>(JsonFields f, string key, T fallback, (string Name, T Value)[] choices)
    {
        if (f.OptionalString(key) is not { } text) return fallback;
        foreach (var (name, value) in choices)
        {
            if (name == text) return value;
        }
        var match = System.Array.Find(choices, c => string.Equals(c.Name, text, StringComparison.OrdinalIgnoreCase)).Name;
        var hint = match is not null ? $"; Kubernetes spells it '{match}'" : "";
        throw new ConfigException(f.PathOf(key), $"'{text}' is not one of {string.Join(", ", choices.Select(c => c.Name))}{hint}");
    }
}
