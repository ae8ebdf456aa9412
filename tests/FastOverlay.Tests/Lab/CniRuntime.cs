using System.Text.Json;
using System.Text.Json.Nodes;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// Calls the `fastoverlay` CNI plugin as containerd does: CNI_* in the environment, the network config on stdin,
/// run in the node's namespace (the runtime's), with Debian's host-local on CNI_PATH and its data kept in the
/// lab's state directory. Container namespaces are named with the lab's prefix, so the lab's teardown removes them.
/// </summary>
internal sealed class CniRuntime(LabRun lab, int node = 1)
{
    public const string DebianPluginDir = "/usr/lib/cni";

    public string Network { get; } = $"fo{lab.Prefix}";
    public string DataDir => Path.Combine(lab.StateDir, $"ipam{node}");
    public string ApiSocket { get; set; } = Path.Combine(lab.StateDir, $"node{node}.sock");

    public string Config(Action<JsonObject>? edit = null)
    {
        var config = new JsonObject
        {
            ["cniVersion"] = "1.0.0",
            ["name"] = Network,
            ["type"] = "fastoverlay",
            ["apiSocket"] = ApiSocket,
            ["subnetFile"] = Path.Combine(lab.StateDir, $"subnet{node}.env"),
            // The subnet comes from subnet.env; the start keeps clear of the lab's own pods (.2 and .3).
            ["ipam"] = new JsonObject { ["type"] = "host-local", ["dataDir"] = DataDir, ["rangeStart"] = $"10.244.{node}.10" },
        };
        edit?.Invoke(config);
        return config.ToJsonString();
    }

    public string NetnsPath(string container) => $"/var/run/netns/{lab.Ns(container)}";

    public void CreateContainer(string container)
    {
        var r = Cmd.Run(["ip", "netns", "add", lab.Ns(container)], TimeSpan.FromSeconds(10));
        Assert.True(r.Ok, r.ToString());
        Cmd.Run(["ip", "netns", "exec", lab.Ns(container), "ip", "link", "set", "lo", "up"], TimeSpan.FromSeconds(10));
    }

    public CmdResult Invoke(string command, string container, string? config = null, string ifName = "eth0", string? netns = null)
    {
        var file = Path.Combine(lab.StateDir, $"cni-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, config ?? Config());
        try
        {
            var env = new Dictionary<string, string>
            {
                ["CNI_COMMAND"] = command,
                ["CNI_CONTAINERID"] = $"{lab.Prefix}-{container}",
                ["CNI_NETNS"] = netns ?? NetnsPath(container),
                ["CNI_IFNAME"] = ifName,
                ["CNI_PATH"] = $"/opt/cni/bin:{DebianPluginDir}",
            };
            return Cmd.Run(["ip", "netns", "exec", lab.Ns($"n{node}"), "bash", "-c", "exec dotnet \"$0\" < \"$1\"", LabRequirements.FastOverlayDll, file], TimeSpan.FromSeconds(60), env);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>ADD that must succeed; returns the pod's address (without the length).</summary>
    public string Add(string container)
    {
        var r = Invoke("ADD", container);
        Assert.True(r.Ok, r.ToString());
        var result = JsonNode.Parse(r.Stdout)!;
        return result["ips"]![0]!["address"]!.GetValue<string>().Split('/')[0];
    }

    public static JsonElement Error(CmdResult r)
    {
        Assert.False(r.Ok, $"expected a CNI error: {r}");
        return JsonDocument.Parse(r.Stdout).RootElement;
    }

    /// <summary>Addresses host-local holds for this network (one file per address in its data directory).</summary>
    public List<string> HeldAddresses() =>
        Directory.Exists(Path.Combine(DataDir, Network))
            ? [.. Directory.GetFiles(Path.Combine(DataDir, Network)).Select(f => Path.GetFileName(f)).Where(n => n.Count(c => c == '.') == 3)]
            : [];

    public List<string> NodeLinks() =>
        [.. lab.Exec($"n{node}", "ip", "-o", "link", "show").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')[1].Trim().Split('@')[0])];
}
