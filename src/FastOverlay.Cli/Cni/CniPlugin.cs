using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using FastOverlay.Cli.Api;

namespace FastOverlay.Cli.Cni;

/// <summary>
/// The `fastoverlay` CNI plugin (spec 1.0.0): started by the runtime with CNI_COMMAND set and the network config
/// on stdin. It attaches a pod straight to the running forwarder, with no bridge: a veth pair whose pod end is
/// CNI_IFNAME in CNI_NETNS (IP from the IPAM plugin, default route via the node's gateway, MTU from subnet.env,
/// offloads left at their defaults) and whose host end becomes an AF_PACKET port through the node API.
/// Shaped as the containernetworking bridge plugin: ADD, DEL and CHECK are separate, and ADD undoes every step
/// it took when a later one fails.
/// </summary>
internal sealed class CniPlugin(IReadOnlyDictionary<string, string?> env, TextWriter stdout)
{
    public static int Invoke(TextReader stdin, TextWriter stdout)
    {
        var env = new Dictionary<string, string?>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables()) env[(string)e.Key] = (string?)e.Value;
        return new CniPlugin(env, stdout).Run(Encoding.UTF8.GetBytes(stdin.ReadToEnd()));
    }

    public int Run(byte[] input)
    {
        var version = "1.0.0";
        try
        {
            var command = Env("CNI_COMMAND");
            if (command == "VERSION")
            {
                stdout.WriteLine(new JsonObject { ["cniVersion"] = version, ["supportedVersions"] = new JsonArray([.. CniConfig.SupportedVersions.Select(v => (JsonNode)v)]) }.ToJsonString());
                return 0;
            }
            var config = CniConfig.Parse(input);
            version = config.CniVersion;
            var pod = new PodSetup(config, Env("CNI_CONTAINERID"), Env("CNI_NETNS", required: command == "ADD"), Env("CNI_IFNAME"), env.GetValueOrDefault("CNI_PATH") ?? "/opt/cni/bin:/usr/lib/cni");
            switch (command)
            {
                case "ADD":
                    stdout.WriteLine(pod.Add().ToJsonString());
                    return 0;
                case "DEL":
                    pod.Delete();
                    return 0;
                case "CHECK":
                    pod.Check();
                    return 0;
                default:
                    throw new CniError(CniError.InvalidEnvironment, $"CNI_COMMAND '{command}' is not ADD, DEL, CHECK or VERSION");
            }
        }
        catch (CniError e)
        {
            stdout.WriteLine(e.ToJson(version));
            return 1;
        }
    }

    private string Env(string name, bool required = true)
    {
        var value = env.GetValueOrDefault(name);
        if (string.IsNullOrEmpty(value) && required) throw new CniError(CniError.InvalidEnvironment, $"{name} is not set");
        return value ?? "";
    }

    /// <summary>The host end's name: the same for ADD and DEL of one attachment, at most 15 characters (IFNAMSIZ).</summary>
    public static string HostInterface(string containerId, string ifName) =>
        "fo" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{containerId}/{ifName}")))[..11];

    /// <summary>Kubernetes' pod MAC convention (0a:58 + the IPv4 address): stable across restarts of the pod.</summary>
    public static string PodMac(string ip) => "0a:58:" + string.Join(':', ip.Split('.').Select(o => byte.Parse(o, System.Globalization.CultureInfo.InvariantCulture).ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
}
