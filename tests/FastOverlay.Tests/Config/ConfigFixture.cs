using System.Text;
using System.Text.Json.Nodes;
using FastOverlay.Config;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Config;

/// <summary>The brief's example configuration, a fake interface catalog, and a way to change one field by path.</summary>
internal static class ConfigFixture
{
    public const string Example = """
        {
          "Network": "10.244.0.0/16",
          "SubnetLen": 24,
          "Backend": { "Type": "vxlan", "VNI": 1, "Port": 8472, "MTU": 1450 },
          "Node": { "Name": "node1", "PublicIP": "172.31.77.1", "Subnet": "10.244.1.0/24",
                    "VtepMAC": "0a:58:0a:f4:01:00", "Underlay": "eth0",
                    "Pods": [ { "Interface": "veth-pod1", "IP": "10.244.1.2" } ] },
          "Peers": [ { "Name": "node2", "PublicIP": "172.31.77.2", "Subnet": "10.244.2.0/24", "VtepMAC": "0a:58:0a:f4:02:00" } ]
        }
        """;

    public static FakeInterfaces Interfaces() => new() { ["eth0"] = (1500, MacAddress.Parse("02:fc:00:00:00:01")), ["veth-pod1"] = (1500, MacAddress.Parse("ee:ee:00:00:00:01")), ["veth-pod2"] = (1500, null) };

    public static OverlayConfig Load(string json, IInterfaceCatalog? interfaces = null) =>
        ConfigLoader.Load(Encoding.UTF8.GetBytes(json), interfaces ?? Interfaces());

    /// <summary>The example with the value at a JSON path (Peers[0].VtepMAC) replaced by raw JSON, or removed when null.</summary>
    public static string With(string path, string? valueJson, string json = Example)
    {
        var root = JsonNode.Parse(json)!;
        var segments = path.Split('.');
        var node = root;
        for (var i = 0; i < segments.Length - 1; i++) node = Step(node, segments[i]);
        var last = segments[^1];
        var parent = node.AsObject();
        if (valueJson is null) parent.Remove(last);
        else parent[last] = JsonNode.Parse(valueJson);
        return root.ToJsonString();
    }

    private static JsonNode Step(JsonNode node, string segment)
    {
        var bracket = segment.IndexOf('[');
        if (bracket < 0) return node[segment]!;
        var index = int.Parse(segment[(bracket + 1)..^1], System.Globalization.CultureInfo.InvariantCulture);
        return node[segment[..bracket]]![index]!;
    }
}

internal sealed class FakeInterfaces : Dictionary<string, (int Mtu, MacAddress? Mac)>, IInterfaceCatalog
{
    public bool Exists(string name) => ContainsKey(name);
    public int? Mtu(string name) => TryGetValue(name, out var v) ? v.Mtu : null;
    public MacAddress? Mac(string name) => TryGetValue(name, out var v) ? v.Mac : null;
}
