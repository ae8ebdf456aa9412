using System.Text.Json;
using System.Text.Json.Nodes;

namespace FastOverlay.Cli.Cni;

/// <summary>
/// Delegation to the IPAM plugin the config names (host-local), found on CNI_PATH, run with our environment and
/// the network config on stdin, as the spec's delegation section says. When "ipam" gives no subnet or ranges, the
/// node's subnet from subnet.env is filled in, as flannel's plugin does.
/// </summary>
internal sealed class Ipam(CniConfig config, string cniPath)
{
    public string ConfigWithSubnet(SubnetEnv? subnet)
    {
        var raw = config.Raw.DeepClone().AsObject();
        var ipam = raw["ipam"]!.AsObject();
        if (subnet is not null && ipam["subnet"] is null && ipam["ranges"] is null)
        {
            ipam["subnet"] = subnet.Subnet;
            ipam["gateway"] ??= subnet.Gateway;
        }
        return raw.ToJsonString();
    }

    /// <summary>Runs the plugin for ADD, DEL or CHECK; returns its result on success, throws its error otherwise.</summary>
    public JsonObject? Run(string command, string stdin)
    {
        var plugin = Find();
        var r = Exec.Run(plugin, [], stdin, new Dictionary<string, string?> { ["CNI_COMMAND"] = command });
        JsonObject? body = null;
        try
        {
            body = r.Stdout.Trim().Length == 0 ? null : JsonNode.Parse(r.Stdout) as JsonObject;
        }
        catch (JsonException)
        {
            // Not JSON: reported below with its stderr.
        }
        if (r.Ok) return body;
        if (body?["code"] is JsonNode code && body["msg"] is JsonNode msg)
            throw new CniError(code.GetValue<int>(), $"{config.IpamType}: {msg.GetValue<string>()}", body["details"]?.ToString());
        throw new CniError(CniError.SetupFailed, $"{config.IpamType} {command} failed (exit {r.Code})", (r.Stdout + r.Stderr).Trim());
    }

    /// <summary>The first address of an ADD result: ("10.244.1.5/24", gateway or null).</summary>
    public (string Address, string? Gateway) FirstIp(JsonObject? result)
    {
        if (result?["ips"] is JsonArray { Count: > 0 } ips && ips[0]?["address"]?.GetValue<string>() is { } address)
            return (address, ips[0]!["gateway"]?.GetValue<string>());
        throw new CniError(CniError.SetupFailed, $"{config.IpamType} returned no IPv4 address", result?.ToJsonString());
    }

    private string Find()
    {
        foreach (var dir in cniPath.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.Combine(dir, config.IpamType);
            if (File.Exists(path)) return path;
        }
        throw new CniError(CniError.InvalidConfig, $"IPAM plugin {config.IpamType} not found on CNI_PATH ({cniPath})", "Debian: apt-get install containernetworking-plugins (it is in /usr/lib/cni)");
    }
}
