using System.Text.Json;
using System.Text.Json.Nodes;

namespace FastOverlay.Cli.Cni;

/// <summary>
/// The network configuration on stdin:
/// {"cniVersion":"1.0.0","name":"fastoverlay","type":"fastoverlay","ipam":{"type":"host-local"}}, plus this
/// plugin's optional keys: "subnetFile" (flannel's subnet.env, default /run/flannel/subnet.env), "apiSocket"
/// (the node API) and "mtu" (overrides FLANNEL_MTU).
/// </summary>
internal sealed record CniConfig(string CniVersion, string Name, JsonObject Ipam, string SubnetFile, string ApiSocket, int? Mtu, JsonObject Raw)
{
    public static readonly string[] SupportedVersions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

    public string IpamType => (string)Ipam["type"]!;

    public static CniConfig Parse(byte[] stdin)
    {
        JsonObject raw;
        try
        {
            raw = JsonNode.Parse(stdin) as JsonObject ?? throw new CniError(CniError.DecodeFailure, "the network configuration is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new CniError(CniError.DecodeFailure, "the network configuration is not valid JSON", e.Message);
        }
        var version = Text(raw, "cniVersion") ?? throw Invalid("cniVersion is missing");
        if (!SupportedVersions.Contains(version))
            throw new CniError(CniError.IncompatibleVersion, $"cniVersion {version} is not supported", $"supported: {string.Join(", ", SupportedVersions)}");
        var name = Text(raw, "name") ?? throw Invalid("name is missing");
        if (Text(raw, "type") != "fastoverlay") throw Invalid($"type is '{Text(raw, "type")}', not fastoverlay");
        if (raw["ipam"] is not JsonObject ipam || Text(ipam, "type") is not { Length: > 0 } ipamType)
            throw Invalid("ipam.type is missing: name the IPAM plugin (host-local)");
        if (ipamType.Contains('/', StringComparison.Ordinal) || ipamType.Contains("..", StringComparison.Ordinal)) throw Invalid($"ipam.type '{ipamType}' is not a plugin name");
        int? mtu = null;
        if (raw["mtu"] is JsonNode m)
        {
            if (m.GetValueKind() != JsonValueKind.Number || m.GetValue<double>() is < 576 or > 9000) throw Invalid("mtu must be a number from 576 to 9000");
            mtu = (int)m.GetValue<double>();
        }
        return new CniConfig(version, name, ipam, Text(raw, "subnetFile") ?? "/run/flannel/subnet.env", Text(raw, "apiSocket") ?? Api.NodeApiHost.DefaultSocket, mtu, raw);
    }

    private static string? Text(JsonObject o, string key)
    {
        if (o[key] is not JsonNode n) return null;
        if (n.GetValueKind() != JsonValueKind.String) throw Invalid($"{key} must be a string");
        return n.GetValue<string>();
    }

    private static CniError Invalid(string message) => new(CniError.InvalidConfig, message);
}

/// <summary>flannel's subnet.env: FLANNEL_NETWORK, FLANNEL_SUBNET (gateway/len), FLANNEL_MTU, FLANNEL_IPMASQ.</summary>
internal sealed record SubnetEnv(string Network, string Subnet, string Gateway, int Mtu)
{
    public static SubnetEnv Read(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // flannel's plugin fails the same way while flanneld has not written it yet: the node is starting.
            throw new CniError(CniError.TryAgainLater, $"cannot read {path}: is fastoverlay running?", e.Message);
        }
        var values = lines.Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0].Trim(), p => p[1].Trim());
        // FLANNEL_SUBNET is the gateway with the subnet's length (10.244.1.1/24), host bits set.
        var parts = values.GetValueOrDefault("FLANNEL_SUBNET", "").Split('/');
        if (parts.Length != 2 || !Wire.Ipv4Address.TryParse(parts[0], out var gateway) || !int.TryParse(parts[1], out var length) || length is < 1 or > 30)
            throw new CniError(CniError.InvalidConfig, $"{path}: FLANNEL_SUBNET is missing or malformed");
        var subnet = new Wire.Ipv4Prefix(gateway.Value, length);
        var mtu = values.TryGetValue("FLANNEL_MTU", out var m) && int.TryParse(m, out var parsed) ? parsed : 1450;
        return new SubnetEnv(values.GetValueOrDefault("FLANNEL_NETWORK", ""), subnet.ToString(), gateway.ToString(), mtu);
    }
}
