using Xunit.Abstractions;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// `fastoverlay run` on both nodes of the lab, on real veth interfaces: AF_PACKET ports to the pods, a UDP socket on
/// the underlay. Skipped (with the reason) where `run` does not exist in the build, or without root and the tools.
/// </summary>
[Collection("netns")]
public sealed class FastOverlayLabTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData("default")]
    [InlineData("off")]
    public void Pods_reach_each_other_on_one_node_and_across_nodes_and_the_underlay_carries_flannel_vxlan(string offloads)
    {
        LabRequirements.Require("ping", "iperf3", "tshark", "ss");
        LabRequirements.RequireFastOverlayRun();
        using var lab = LabRun.Up("fastoverlay", output, offloads: offloads);
        LabScenarios.PodsReachEachOther(lab);
        Assert.True(lab.FastOverlayRunning(1) && lab.FastOverlayRunning(2), "a FastOverlay node died during the traffic");
        // The pods' gateway is FastOverlay's own MAC, not the host end of the veth.
        var gateway = GatewayMac(lab, "p11");
        Assert.NotEqual(Mac(lab, "n1", lab.PodVeth("p11")), gateway);
    }

    [SkippableFact]
    public void Removing_a_peer_stops_traffic_to_it_as_NoRoute_while_other_traffic_goes_on_and_adding_it_back_restores_it()
    {
        LabRequirements.Require("ping");
        LabRequirements.RequireFastOverlayRun();
        using var lab = LabRun.Up("fastoverlay", output);
        lab.AssertPing("p11", "p21");
        var original = File.ReadAllText(lab.ConfigPath(1));

        // A steady flow to the peer's pod throughout the edits (no -w: ping would stop at the first ICMP error).
        using var flow = lab.Spawn("p11", "ping", "-n", "-i", "0.2", "-c", "600", LabRun.PodIp("p21"));
        NodeLog.WriteConfig(lab, 1, NodeLog.WithoutPeers(original));
        WaitForReload(lab, 1, "0 peers");
        LabScenarios.Eventually(() => !lab.Ping("p11", "p21", count: 1, deadlineSeconds: 2).Ok, TimeSpan.FromSeconds(10),
            () => $"traffic to node2's pods still flows after node2 left node1's config; log:\n{lab.NodeLog(1)}");
        // The gateway answers with ICMP net unreachable, rate-limited like the kernel's: the steady flow or this ping sees one.
        var unreachable = lab.Exec("p11", "ping", "-n", "-c", "3", "-i", "0.5", "-W", "1", LabRun.PodIp("p21"));
        Assert.Contains("Destination Net Unreachable", unreachable.Stdout + flow.Output, StringComparison.Ordinal);
        lab.AssertPing("p11", "p12");
        lab.AssertPing("p12", "p11");
        Assert.True(lab.FastOverlayRunning(1), "node1 died on the config change");

        NodeLog.WriteConfig(lab, 1, original);
        WaitForReload(lab, 1, "1 peers");
        LabScenarios.Eventually(() => lab.Ping("p11", "p21", count: 1, deadlineSeconds: 2).Ok, TimeSpan.FromSeconds(10),
            () => $"traffic to node2's pods did not come back after node2 was restored: {lab.Exec("p11", "ping", "-n", "-c", "3", "-i", "0.3", "-W", "1", LabRun.PodIp("p21"))}\nnode1 log:\n{lab.NodeLog(1)}");
        lab.AssertPing("p21", "p11");

        Thread.Sleep(500);
        flow.Interrupt(TimeSpan.FromSeconds(5));
        output.WriteLine(flow.Output[^Math.Min(flow.Output.Length, 400)..]);
        // The one flow went on, then was refused with net unreachable, then went on again.
        var lines = flow.Output.Split('\n');
        var firstRefused = Array.FindIndex(lines, l => l.Contains("Destination Net Unreachable", StringComparison.Ordinal));
        var lastRefused = Array.FindLastIndex(lines, l => l.Contains("Destination Net Unreachable", StringComparison.Ordinal));
        Assert.True(firstRefused > 0, $"the flow never saw net unreachable:\n{flow.Output}");
        Assert.Contains(lines[..firstRefused], l => l.Contains(" bytes from ", StringComparison.Ordinal));
        Assert.Contains(lines[lastRefused..], l => l.Contains(" bytes from ", StringComparison.Ordinal));
        var counters = NodeLog.LastDropCounters(lab.StopNode(1));
        Assert.True(counters.Count(DropReason.NoRoute) > 0, $"NoRoute did not count the dropped packets: {string.Join(", ", counters)}");
    }

    [SkippableFact]
    public void FastOverlay_keeps_forwarding_through_malformed_frames_and_a_bad_config_edit()
    {
        LabRequirements.Require("ping", "python3");
        LabRequirements.RequireFastOverlayRun();
        using var lab = LabRun.Up("fastoverlay", output);
        lab.AssertPing("p11", "p21");
        var garbage = Path.Combine(LabRequirements.ScriptsDir, "garbage.py");

        foreach (var (pod, dst) in new[] { ("p11", "p21"), ("p21", "p11") })
        {
            var r = lab.Exec(pod, TimeSpan.FromSeconds(60), "python3", garbage, "frames", "--iface", "eth0", "--gw-mac", GatewayMac(lab, pod),
                "--src-mac", Mac(lab, pod, "eth0"), "--src-ip", LabRun.PodIp(pod), "--dst-ip", LabRun.PodIp(dst), "--rounds", "60");
            Assert.True(r.Ok, r.ToString());
            output.WriteLine($"{pod}: {r.Stdout.Trim()} malformed frames");
        }
        foreach (var (from, to) in new[] { (2, 1), (1, 2) })
        {
            var r = lab.Exec($"n{from}", TimeSpan.FromSeconds(60), "python3", garbage, "vxlan", "--local-ip", LabRun.PublicIp(from), "--peer-ip", LabRun.PublicIp(to),
                "--local-vtep-mac", LabRun.VtepMac(from), "--peer-vtep-mac", LabRun.VtepMac(to), "--rounds", "60");
            Assert.True(r.Ok, r.ToString());
            output.WriteLine($"node{from} -> node{to}: {r.Stdout.Trim()} malformed datagrams");
        }
        Assert.True(lab.FastOverlayRunning(1) && lab.FastOverlayRunning(2), "a node died on malformed input");
        lab.AssertPing("p11", "p21");
        lab.AssertPing("p12", "p11");
        lab.AssertPing("p22", "p11");

        var original = File.ReadAllText(lab.ConfigPath(1));
        foreach (var (what, bad) in new[] { ("truncated JSON", original[..(original.Length / 2)]), ("not JSON", "this is not a config\n"), ("an invalid network", NodeLog.Invalid(original)) })
        {
            var before = lab.NodeLog(1).Length;
            NodeLog.WriteConfig(lab, 1, bad);
            LabScenarios.Eventually(() => NodeLog.ReportsConfigError(lab.NodeLog(1)[before..]), TimeSpan.FromSeconds(15),
                () => $"no error printed for a config with {what}; log since the edit:\n{lab.NodeLog(1)[before..]}");
            output.WriteLine($"{what}: {lab.NodeLog(1)[before..].Trim()}");
            Assert.True(lab.FastOverlayRunning(1), $"node1 died on a config with {what}");
            lab.AssertPing("p11", "p21");   // the old config still forwards
            lab.AssertPing("p11", "p12");
        }
        NodeLog.WriteConfig(lab, 1, original);
        lab.AssertPing("p11", "p21");

        var counters = NodeLog.LastDropCounters(lab.StopNode(1));
        output.WriteLine(string.Join(", ", counters.Where(c => c.Value > 0)));
        Assert.True(counters.Where(c => c.Key is not (DropReason.NoRoute or DropReason.ArpUnresolved)).Sum(c => c.Value) > 0,
            $"the malformed frames were not counted as drops: {string.Join(", ", counters)}");
    }

    /// <summary>FastOverlay polls its config file (once a second, then a debounce) and logs each reload it applies.</summary>
    private static void WaitForReload(LabRun lab, int node, string what) =>
        LabScenarios.Eventually(() => lab.NodeLog(node).Contains($"config: applied {lab.ConfigPath(node)}: {what}", StringComparison.Ordinal),
            TimeSpan.FromSeconds(15), () => $"node{node} did not apply its new config ({what}); log:\n{lab.NodeLog(node)}");

    internal static string GatewayMac(LabRun lab, string pod)
    {
        var gateway = $"10.244.{pod[1]}.1";
        lab.Ping(pod, gateway, count: 1, deadlineSeconds: 3);   // makes sure the pod has resolved its gateway
        var neigh = lab.Exec(pod, "ip", "neigh", "show", gateway, "dev", "eth0").Stdout;
        var at = neigh.IndexOf("lladdr ", StringComparison.Ordinal);
        Assert.True(at >= 0, $"{pod} has not resolved its gateway {gateway}: '{neigh}'");
        return neigh.Substring(at + 7, 17);
    }

    internal static string Mac(LabRun lab, string ns, string iface) =>
        lab.Exec(ns, "cat", $"/sys/class/net/{iface}/address").Stdout.Trim();
}
