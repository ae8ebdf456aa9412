using System.Net.Http;
using System.Text.Json;
using System.Text.Json.Nodes;
using FastOverlay.Cli.Api;

namespace FastOverlay.Cli.Cni;

/// <summary>ADD, DEL and CHECK of one attachment (container id + interface name).</summary>
internal sealed class PodSetup(CniConfig config, string containerId, string netns, string ifName, string cniPath)
{
    private readonly string _host = CniPlugin.HostInterface(containerId, ifName);
    private readonly Ipam _ipam = new(config, cniPath);

    public JsonObject Add()
    {
        if (!File.Exists(netns)) throw new CniError(CniError.UnknownContainer, $"CNI_NETNS {netns} does not exist");
        using var api = new ApiClient(config.ApiSocket, TimeSpan.FromSeconds(10));
        // The daemon first: while it is down nothing is allocated, and the runtime retries (11).
        Daemon(() => api.Send(HttpMethod.Get, "v1/status"));
        var subnet = SubnetEnv.Read(config.SubnetFile);
        var ipamConfig = _ipam.ConfigWithSubnet(subnet);
        var result = _ipam.Run("ADD", ipamConfig);
        try
        {
            var (address, gateway) = _ipam.FirstIp(result);
            gateway ??= subnet.Gateway;
            var ip = address.Split('/')[0];
            var mac = CniPlugin.PodMac(ip);
            var mtu = config.Mtu ?? subnet.Mtu;
            Exec.Ip(null, $"link add {_host} mtu {mtu} type veth peer name {ifName} mtu {mtu} netns {netns}", $"link set {_host} up");
            Exec.Ip(netns,
                $"link set {ifName} address {mac}",
                $"addr add {address} dev {ifName}",
                $"link set {ifName} up",
                $"route add default via {gateway} dev {ifName}");
            var (status, body) = Daemon(() => api.Send(HttpMethod.Put, $"v1/pods/{_host}", new { ip, mac, containerId }));
            if (status / 100 != 2) throw new CniError(status == 503 ? CniError.TryAgainLater : CniError.SetupFailed, $"fastoverlay refused the port {_host}: {ApiClient.ErrorText(status, body)}");
            var hostMac = File.ReadAllText($"/sys/class/net/{_host}/address").Trim();
            return new JsonObject
            {
                ["cniVersion"] = config.CniVersion,
                ["interfaces"] = new JsonArray(
                    new JsonObject { ["name"] = _host, ["mac"] = hostMac },
                    new JsonObject { ["name"] = ifName, ["mac"] = mac, ["sandbox"] = netns }),
                ["ips"] = new JsonArray(new JsonObject { ["address"] = address, ["gateway"] = gateway, ["interface"] = 1 }),
                ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0", ["gw"] = gateway }),
                ["dns"] = result?["dns"]?.DeepClone() ?? new JsonObject(),
            };
        }
        catch (Exception e) when (e is CniError or IOException)
        {
            // Leave nothing behind: the veth (its pod end goes with it) and the address.
            DeleteLink();
            TryIgnore(() => _ipam.Run("DEL", ipamConfig));
            if (e is CniError) throw;
            throw new CniError(CniError.IoFailure, e.Message);
        }
    }

    /// <summary>Idempotent: whatever is already gone is skipped. The daemon being down does not fail DEL (its restart forgets ports whose veth is gone).</summary>
    public void Delete()
    {
        using (var api = new ApiClient(config.ApiSocket, TimeSpan.FromSeconds(10)))
            TryIgnore(() => api.Send(HttpMethod.Delete, $"v1/pods/{_host}"));
        DeleteLink();
        SubnetEnv? subnet = null;
        TryIgnore(() => subnet = SubnetEnv.Read(config.SubnetFile));
        _ipam.Run("DEL", _ipam.ConfigWithSubnet(subnet));
    }

    /// <summary>The pod is as ADD left it: the address held, both ends there and up, the address and route set, the port registered.</summary>
    public void Check()
    {
        if (!File.Exists(netns)) throw new CniError(CniError.UnknownContainer, $"CNI_NETNS {netns} does not exist");
        var subnet = SubnetEnv.Read(config.SubnetFile);
        var ipamConfig = _ipam.ConfigWithSubnet(subnet);
        if (!Directory.Exists($"/sys/class/net/{_host}")) throw Broken($"the host end {_host} is gone");
        var addr = Exec.Run("nsenter", [$"--net={netns}", "ip", "-j", "-4", "addr", "show", "dev", ifName]);
        if (!addr.Ok) throw Broken($"{ifName} is gone from {netns}: {addr.Stderr.Trim()}");
        var ips = JsonNode.Parse(addr.Stdout)!.AsArray().SelectMany(l => l!["addr_info"]!.AsArray()).Select(a => a!["local"]!.GetValue<string>()).ToList();
        if (ips.Count == 0) throw Broken($"{ifName} in {netns} has no IPv4 address");
        var route = Exec.Run("nsenter", [$"--net={netns}", "ip", "-j", "-4", "route", "show", "default"]);
        if (!route.Ok || !route.Stdout.Contains(subnet.Gateway, StringComparison.Ordinal)) throw Broken($"{netns} has no default route via {subnet.Gateway}");
        using var api = new ApiClient(config.ApiSocket, TimeSpan.FromSeconds(10));
        var (_, pods) = Daemon(() => api.Send(HttpMethod.Get, "v1/pods"));
        var registered = pods.GetProperty("pods").EnumerateArray().FirstOrDefault(p => p.GetProperty("interface").GetString() == _host);
        if (registered.ValueKind != JsonValueKind.Object) throw Broken($"fastoverlay has no port for {_host}");
        if (!ips.Contains(registered.GetProperty("ip").GetString()!)) throw Broken($"{ifName} has {string.Join(", ", ips)}, but fastoverlay routes {registered.GetProperty("ip")} to it");
        _ipam.Run("CHECK", ipamConfig);
    }

    private void DeleteLink()
    {
        if (Directory.Exists($"/sys/class/net/{_host}")) TryIgnore(() => Exec.Ip(null, $"link del {_host}"));
    }

    private static (int, JsonElement) Daemon(Func<(int, JsonElement)> call)
    {
        try
        {
            return call();
        }
        catch (ApiUnavailableException e)
        {
            throw new CniError(CniError.TryAgainLater, e.Message);
        }
    }

    private static CniError Broken(string message) => new(CniError.PodBroken, message);

    private static void TryIgnore(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is CniError or ApiUnavailableException or IOException or InvalidOperationException)
        {
            // Best effort: cleanup and DEL go on with the next step.
        }
    }
}
