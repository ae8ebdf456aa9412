using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// Services in the lab: the "Services" array written into both nodes' config files (a Service is cluster-wide:
/// each node translates its own pods' traffic), a wait for both nodes to log that they applied it, and the
/// servers behind the endpoints (Scripts/svc_tool.py: TCP 8080 and UDP 5353, answering with their pod's name and
/// the client address they saw).
/// </summary>
internal static class ServiceLab
{
    public const int ServerTcpPort = 8080;
    public const int ServerUdpPort = 5353;

    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true };

    public static string Tool => Path.Combine(LabRequirements.ScriptsDir, "svc_tool.py");

    /// <summary>What every Service test needs: root, the tools, and `fastoverlay run`.</summary>
    public static void Require(params string[] tools)
    {
        LabRequirements.Require(["python3", .. tools]);
        LabRequirements.RequireFastOverlayRun();
    }

    /// <summary>
    /// One port of a Service (Protocol "TCP" or "UDP"). Kubernetes requires names once a Service has two ports.
    /// </summary>
    public static object Port(string name, string protocol, int port, int targetPort, int? nodePort = null) =>
        new { Name = name, Protocol = protocol, Port = port, TargetPort = targetPort, NodePort = nodePort };

    /// <summary>The pods as ready endpoints, each with its node's name (what makes it local to that node).</summary>
    public static object[] Endpoints(params string[] pods) =>
        [.. pods.Select(p => new { IP = LabRun.PodIp(p), Node = NodeOf(p) })];

    public static string NodeOf(string pod) => $"node{pod[1]}";

    /// <summary>
    /// Replaces the Services on both nodes (objects serialised as the config's JSON, nulls left out) and waits until
    /// both logged "config: applied" for it. Returns when the second one did: both forward with the new Services.
    /// </summary>
    public static DateTime ApplyServices(this LabRun lab, params object[] services)
    {
        var array = JsonSerializer.SerializeToNode(services, Json)!.AsArray();
        var before = new int[3];
        for (var node = 1; node <= 2; node++)
        {
            before[node] = Applied(lab, node);
            var config = JsonNode.Parse(File.ReadAllText(lab.ConfigPath(node)))!;
            config["Services"] = array.DeepClone();
            NodeLog.WriteConfig(lab, node, config.ToJsonString(Json));
        }
        for (var node = 1; node <= 2; node++)
        {
            var n = node;
            LabScenarios.Eventually(() => Applied(lab, n) > before[n] || Rejected(lab, n) is not null, TimeSpan.FromSeconds(15),
                () => $"node{n} did not apply its new Services within 15 s; log:\n{lab.NodeLog(n)}");
            Assert.True(Rejected(lab, n) is null, $"node{n} rejected the Services: {Rejected(lab, n)}\n{array.ToJsonString(Json)}");
        }
        lab.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} Services applied on both nodes: {string.Join(", ", array.Select(Describe))}");
        return DateTime.UtcNow;
    }

    /// <summary>
    /// svc_tool.py serve in each pod (or other lab namespace: n1, c), named after it, listening on TCP 8080 and UDP 5353
    /// (killed with the lab).
    /// </summary>
    public static void Serve(this LabRun lab, params string[] pods)
    {
        var servers = pods.Select(p => (Pod: p, Process: lab.Spawn(p, "python3", "-u", Tool, "serve", p))).ToList();
        foreach (var (pod, server) in servers)
            Assert.True(server.WaitForOutput($"serving {pod}", TimeSpan.FromSeconds(30)), $"svc_tool serve did not start in {pod}: {server.Output}");
    }

    private static int Applied(LabRun lab, int node)
    {
        var (log, line, count) = (lab.NodeLog(node), $"config: applied {lab.ConfigPath(node)}:", 0);
        for (var at = log.IndexOf(line, StringComparison.Ordinal); at >= 0; at = log.IndexOf(line, at + line.Length, StringComparison.Ordinal)) count++;
        return count;
    }

    /// <summary>The last "config: rejected" line, if it is newer than the last "config: applied" one.</summary>
    private static string? Rejected(LabRun lab, int node)
    {
        var log = lab.NodeLog(node);
        var rejected = log.LastIndexOf("config: rejected", StringComparison.Ordinal);
        if (rejected < 0 || rejected < log.LastIndexOf("config: applied", StringComparison.Ordinal)) return null;
        var end = log.IndexOf('\n', rejected);
        return end < 0 ? log[rejected..] : log[rejected..end];
    }

    private static string Describe(JsonNode? s) =>
        $"{s?["Name"]} {s?["ClusterIP"]} -> [{string.Join(" ", s?["Endpoints"]?.AsArray().Select(e => e?["IP"]?.ToString()) ?? [])}]";
}
