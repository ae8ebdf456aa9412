using System.Diagnostics;
using FastOverlay.Cluster;
using FastOverlay.Pipeline;

namespace FastOverlay.Cli.Demo;

/// <summary>
/// Every pod sends UDP as fast as the pipeline takes it to one pod on its own node and one on the next node.
/// Everything runs on one thread (the nodes, the fabric and the pods), so the rates are what one core does for
/// the whole cluster, senders and receivers included.
/// </summary>
internal static class FullSpeed
{
    public sealed record Result(double Seconds, long SentSameNode, long SentOtherNode, long ReceivedSameNode, long ReceivedOtherNode, long AllocatedBytes, long SentService = 0, long ReceivedService = 0);

    public static readonly Wire.Ipv4Address BulkVip = Wire.Ipv4Address.Parse("10.96.0.20");
    public const ushort BulkPort = 5353;

    /// <summary>The Service every pod also sends to: a ClusterIP over all pods (Maglev spreads the senders).</summary>
    public static Config.ServiceConfig BulkService(InMemoryCluster cluster) => new()
    {
        Name = "bulk",
        ClusterIp = BulkVip,
        Ports = [new Config.ServicePortConfig("udp", Config.L4Protocol.Udp, BulkPort, PodEndpoint.ServiceTargetPort, null)],
        Endpoints = [.. cluster.Pods.Select(p => new Config.EndpointConfig(p.Ip, p.NodeName))],
    };

    public static Result Run(InMemoryCluster cluster, TimeSpan duration, CancellationToken cancel)
    {
        var flows = Flows(cluster);
        if (!cluster.Services.Any(s => s.Name == "bulk")) cluster.SetServices([.. cluster.Services, BulkService(cluster)]);
        const int burst = 32;
        // Resolve every flow's first hop before the clock starts.
        for (var i = 0; i < 3; i++)
        {
            foreach (var (from, to, _) in flows) from.SendUdp(to.Ip.Value, PodEndpoint.DiscardPort, 1);
            foreach (var pod in cluster.Pods) pod.SendUdp(BulkVip.Value, BulkPort, 1);
            cluster.RunUntilIdle();
        }
        // Warm-up (not counted): lets the JIT's tiered compilation reach optimized code.
        Blast(flows, cluster, burst, TimeSpan.FromSeconds(Math.Min(0.5, duration.TotalSeconds)), cancel, out _, out _, out _);
        cluster.RunUntilIdle();
        var baseSame = cluster.Pods.Sum(p => p.UdpReceivedSameNode);
        var baseOther = cluster.Pods.Sum(p => p.UdpReceivedOtherNode);
        var baseService = cluster.Pods.Sum(p => p.UdpReceivedThroughService);

        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var start = Stopwatch.GetTimestamp();
        Blast(flows, cluster, burst, duration, cancel, out var sentSame, out var sentOther, out var sentService);
        cluster.RunUntilIdle();
        var elapsed = Stopwatch.GetElapsedTime(start);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        return new Result(elapsed.TotalSeconds, sentSame, sentOther,
            cluster.Pods.Sum(p => p.UdpReceivedSameNode) - baseSame,
            cluster.Pods.Sum(p => p.UdpReceivedOtherNode) - baseOther, allocated,
            sentService, cluster.Pods.Sum(p => p.UdpReceivedThroughService) - baseService);
    }

    private static void Blast(List<(PodEndpoint From, PodEndpoint To, bool SameNode)> flows, InMemoryCluster cluster, int burst, TimeSpan duration, CancellationToken cancel, out long sentSame, out long sentOther, out long sentService)
    {
        sentSame = 0;
        sentOther = 0;
        sentService = 0;
        var pods = cluster.Pods;
        var deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var rounds = 0;
        while (!cancel.IsCancellationRequested)
        {
            for (var f = 0; f < flows.Count; f++)
            {
                var (from, to, sameNode) = flows[f];
                var sent = from.SendUdp(to.Ip.Value, PodEndpoint.DiscardPort, burst);
                if (sameNode) sentSame += sent;
                else sentOther += sent;
            }
            // Half a burst per pod through the ClusterIP: DNAT on the sender's node, then local delivery or VXLAN.
            for (var p = 0; p < pods.Length; p++) sentService += pods[p].SendUdp(BulkVip.Value, BulkPort, burst / 2);
            cluster.Step();
            if ((++rounds & 63) == 0 && Stopwatch.GetTimestamp() >= deadline) break;
        }
    }

    /// <summary>Each pod → the next pod on its node (if any) and → a pod on the next node.</summary>
    public static List<(PodEndpoint From, PodEndpoint To, bool SameNode)> Flows(InMemoryCluster cluster)
    {
        var flows = new List<(PodEndpoint, PodEndpoint, bool)>();
        var byNode = cluster.Pods.GroupBy(p => p.NodeName).ToDictionary(g => g.Key, g => g.ToArray());
        var nodeNames = cluster.Nodes.Select(n => n.Name).ToArray();
        for (var i = 0; i < cluster.Pods.Length; i++)
        {
            var pod = cluster.Pods[i];
            var local = byNode[pod.NodeName];
            if (local.Length > 1) flows.Add((pod, local[(Array.IndexOf(local, pod) + 1) % local.Length], true));
            var nextNode = nodeNames[(Array.IndexOf(nodeNames, pod.NodeName) + 1) % nodeNames.Length];
            var remote = byNode[nextNode];
            flows.Add((pod, remote[i % remote.Length], false));
        }
        return flows;
    }

    public static void Print(InMemoryCluster cluster, Result r, TextWriter output)
    {
        output.WriteLine($"Full speed: every pod sends 64-byte UDP frames to a pod on its node, to a pod on the next node and to a ClusterIP ({BulkVip}, all pods behind it), {r.Seconds:0.00} s, one thread for the whole cluster");
        output.WriteLine($"  {"path",-34} {"sent",12} {"delivered",12} {"rate",12}");
        output.WriteLine($"  {"pod to pod, same node",-34} {r.SentSameNode,12:N0} {r.ReceivedSameNode,12:N0} {Formatting.Rate(r.ReceivedSameNode / r.Seconds),12}");
        output.WriteLine($"  {"pod to pod, other node (VXLAN)",-34} {r.SentOtherNode,12:N0} {r.ReceivedOtherNode,12:N0} {Formatting.Rate(r.ReceivedOtherNode / r.Seconds),12}");
        output.WriteLine($"  {"pod to ClusterIP (DNAT, conntrack)",-34} {r.SentService,12:N0} {r.ReceivedService,12:N0} {Formatting.Rate(r.ReceivedService / r.Seconds),12}");
        var packets = r.SentSameNode + r.SentOtherNode + r.SentService;
        var received = r.ReceivedSameNode + r.ReceivedOtherNode + r.ReceivedService;
        output.WriteLine($"  {"all paths",-34} {packets,12:N0} {received,12:N0} {Formatting.Rate(received / r.Seconds),12}");
        output.WriteLine($"  bytes allocated during the run (this thread): {r.AllocatedBytes:N0} ({(packets == 0 ? 0 : (double)r.AllocatedBytes / packets):0.######} per packet)");
        output.WriteLine();
        output.WriteLine($"  {"node",-8} {"rx",12} {"tx",12} {"encap",12} {"decap",12} {"to pods",12} {"drops",8}");
        foreach (var node in cluster.Nodes)
        {
            var c = node.Counters;
            output.WriteLine($"  {node.Name,-8} {c[Counter.RxPackets],12:N0} {c[Counter.TxPackets],12:N0} {c[Counter.Encapsulated],12:N0} {c[Counter.Decapsulated],12:N0} {c[Counter.DeliveredToPods],12:N0} {c.TotalDrops,8:N0}");
        }
        var drops = cluster.Nodes.SelectMany(n => n.Counters.NonZeroDrops().Select(d => (n.Name, d.Reason, d.Count))).ToList();
        output.WriteLine(drops.Count == 0 ? "  drops by reason: none" : "  drops by reason:");
        foreach (var (node, reason, count) in drops) output.WriteLine($"    {node,-8} {reason,-24} {count,10:N0}  {DropReasons.Describe(reason)}");
        output.WriteLine();
    }
}
