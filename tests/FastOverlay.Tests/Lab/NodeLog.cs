using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace FastOverlay.Tests.Lab;

/// <summary>What the lab tests read from and write to a running FastOverlay node: its config file and its log.</summary>
internal static partial class NodeLog
{
    /// <summary>
    /// The drop counters FastOverlay printed last (on exit, or the latest periodic report): one line per reason with
    /// its enum name and count.
    /// </summary>
    public static Dictionary<DropReason, long> LastDropCounters(string log)
    {
        var counters = new Dictionary<DropReason, long>();
        foreach (var reason in Enum.GetValues<DropReason>())
        {
            if (reason == DropReason.None) continue;
            var matches = Regex.Matches(log, $@"\b{reason}\b[\s:=]+([\d,_]+)");
            if (matches.Count > 0)
                counters[reason] = long.Parse(matches[^1].Groups[1].Value.Replace(",", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
        }
        return counters;
    }

    public static long Count(this Dictionary<DropReason, long> counters, DropReason reason) => counters.GetValueOrDefault(reason);

    /// <summary>
    /// Replaces the config file the way a config manager does: a complete new file renamed over the old one, so the
    /// node never reads half a file.
    /// </summary>
    public static void WriteConfig(LabRun lab, int node, string text)
    {
        var path = lab.ConfigPath(node);
        var temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }

    public static string WithoutPeers(string config)
    {
        var json = JsonNode.Parse(config)!;
        json["Peers"] = new JsonArray();
        return json.ToJsonString();
    }

    /// <summary>Valid JSON that no node can run with: a subnet outside the network, a SubnetLen past 32.</summary>
    public static string Invalid(string config)
    {
        var json = JsonNode.Parse(config)!;
        json["SubnetLen"] = 40;
        json["Node"]!["Subnet"] = "192.168.7.0/24";
        return json.ToJsonString();
    }

    public static bool ReportsConfigError(string logSince) =>
        ConfigError().IsMatch(logSince);

    [GeneratedRegex("(error|invalid|reject|ignor|keep|failed)", RegexOptions.IgnoreCase)]
    private static partial Regex ConfigError();
}
