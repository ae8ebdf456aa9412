using System.Text.Json;
using Xunit.Abstractions;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// The lab itself and its kernel side: the flannel-style nodes FastOverlay must interoperate with, and the
/// lab's own guarantees (unique names, complete teardown). These need root and iproute2, not FastOverlay.
/// </summary>
[Collection("netns")]
public sealed class KernelLabTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData("default")]
    [InlineData("off")]
    public void Kernel_lab_pods_reach_each_other_and_the_underlay_carries_flannel_vxlan(string offloads)
    {
        LabRequirements.Require("ping", "iperf3", "tshark", "ss");
        using var lab = LabRun.Up("kernel", output, offloads: offloads);
        LabScenarios.PodsReachEachOther(lab);
    }

    [SkippableTheory]
    [InlineData("kernel", "default")]
    [InlineData("mixed", "default")]   // node1 bare with its config file, node2 flannel-style
    [InlineData("kernel", "off")]
    public void Nodes_are_programmed_as_flannel_leaves_them_or_left_bare_for_FastOverlay(string mode, string offloads)
    {
        LabRequirements.Require("bridge");
        using var lab = LabRun.Up(mode, output, start: false, offloads: offloads);
        for (var node = 1; node <= 2; node++)
        {
            if (mode == "kernel" || (mode == "mixed" && node == 2)) AssertFlannelNode(lab, node);
            else AssertBareNodeWithConfig(lab, node);
            foreach (var k in new[] { 1, 2 })
            {
                var pod = $"p{node}{k}";
                var link = lab.Exec(pod, "ip", "-d", "link", "show", "eth0").Stdout;
                Assert.Contains("mtu 1450", link, StringComparison.Ordinal);
                Assert.Contains($"inet {LabRun.PodIp(pod)}/24", lab.Exec(pod, "ip", "-4", "addr", "show", "eth0").Stdout, StringComparison.Ordinal);
                Assert.Contains($"default via 10.244.{node}.1 dev eth0", lab.Exec(pod, "ip", "route").Stdout, StringComparison.Ordinal);
                AssertOffloads(lab, pod, "eth0");
                AssertOffloads(lab, $"n{node}", lab.PodVeth(pod));
            }
            AssertOffloads(lab, $"n{node}", lab.Underlay(node));
            Assert.Contains($"inet {LabRun.PublicIp(node)}/24", lab.Exec($"n{node}", "ip", "-4", "addr", "show", lab.Underlay(node)).Stdout, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// The interop contract from the kernel's side: a userspace VTEP on node1 (a Python stand-in for FastOverlay,
    /// with a UDP socket on 172.31.77.1:8472) sends flannel-framed echo requests to a pod on the kernel node2; the
    /// kernel decapsulates them, delivers them, and sends the replies back VTEP MAC to VTEP MAC in VNI 1.
    /// </summary>
    [SkippableFact]
    public void Kernel_flannel_node_accepts_vxlan_from_a_userspace_vtep_and_answers_in_kind()
    {
        LabRequirements.Require("python3");
        using var lab = LabRun.Up("mixed", output, start: false);
        var r = lab.Exec("n1", TimeSpan.FromSeconds(30), "python3", Path.Combine(LabRequirements.ScriptsDir, "vxlan_echo.py"),
            "--local-ip", LabRun.PublicIp(1), "--peer-ip", LabRun.PublicIp(2), "--local-vtep-mac", LabRun.VtepMac(1), "--peer-vtep-mac", LabRun.VtepMac(2),
            "--src-ip", LabRun.PodIp("p11"), "--dst-ip", LabRun.PodIp("p21"), "--count", "3");
        Assert.True(r.Ok, r.ToString());
        output.WriteLine(r.Stdout);
        using var doc = JsonDocument.Parse(r.Stdout);
        var replies = doc.RootElement.GetProperty("replies").EnumerateArray()
            .Where(e => e.TryGetProperty("icmp_type", out var t) && t.GetInt32() == 0).ToList();
        Assert.Equal(3, replies.Count);
        Assert.All(replies, e =>
        {
            Assert.Equal(LabRun.PublicIp(2), e.GetProperty("outer_src").GetString());
            Assert.Equal(0x08, e.GetProperty("vxlan_flags").GetInt32());
            Assert.Equal(1, e.GetProperty("vni").GetInt32());
            Assert.Equal(LabRun.VtepMac(2), e.GetProperty("inner_src_mac").GetString());
            Assert.Equal(LabRun.VtepMac(1), e.GetProperty("inner_dst_mac").GetString());
            Assert.Equal(LabRun.PodIp("p21"), e.GetProperty("src").GetString());
            Assert.Equal(LabRun.PodIp("p11"), e.GetProperty("dst").GetString());
            Assert.Equal(63, e.GetProperty("ttl").GetInt32());   // the pod's 64, routed once by node2
            Assert.True(e.GetProperty("ip_checksum_ok").GetBoolean());
        });
    }

    [SkippableFact]
    public void Two_labs_run_side_by_side_and_down_removes_everything_even_without_its_state()
    {
        LabRequirements.Require("ping");
        using var a = LabRun.Up("kernel", output);
        using var b = LabRun.Up("kernel", output);
        a.AssertPing("p11", "p21");
        b.AssertPing("p11", "p21");
        var status = a.Script(TimeSpan.FromSeconds(30), "status");
        Assert.Contains($"lab {a.Prefix}: mode kernel", status.Stdout, StringComparison.Ordinal);

        // As after a killed run: a process left inside the lab and the state directory gone.
        using var sleeper = b.Spawn("p22", "sleep", "300");
        Thread.Sleep(200);
        Directory.Delete(b.StateDir, recursive: true);
        var down = b.Script(TimeSpan.FromSeconds(60), "down");
        Assert.True(down.Ok, down.ToString());
        Assert.Empty(LabRun.LabNamespaces(b.Prefix));
        Assert.True(sleeper.Process.WaitForExit(5000), "the process inside the lab survived lab.sh down");
        Assert.DoesNotContain(b.Prefix, Cmd.Run("ip", "-o", "link", "show").Stdout, StringComparison.Ordinal);

        a.AssertPing("p11", "p21");   // the other lab did not notice
    }

    [SkippableFact]
    public void An_interrupted_up_removes_its_partial_lab()
    {
        LabRequirements.Require();
        var prefix = LabRun.NewPrefix();
        var env = new Dictionary<string, string> { ["LAB_PREFIX"] = prefix };
        using var up = new BackgroundProcess(Cmd.Start(["bash", LabRequirements.LabScript, "up", "kernel"], env), "lab.sh up kernel");
        try
        {
            // Interrupt it while it builds: once the first namespaces exist and well before it finishes.
            Assert.True(up.WaitForOutput("LAB_PREFIX=", TimeSpan.FromSeconds(30)), up.Output);
            LabScenarios.Eventually(() => LabRun.LabNamespaces(prefix).Count > 0 || up.Process.HasExited, TimeSpan.FromSeconds(30), () => "no namespace appeared");
            Cmd.Signal(up.Process.Id, "TERM");
            Assert.True(up.Process.WaitForExit(60_000), "lab.sh up did not stop");
            up.Process.WaitForExit();   // drains the redirected output
            Skip.If(up.Output.Contains($"lab {prefix} up", StringComparison.Ordinal), "lab.sh up finished before it could be interrupted (a fast machine); nothing to check");
            Assert.Contains("removing the partial lab", up.Output, StringComparison.Ordinal);
            Assert.Empty(LabRun.LabNamespaces(prefix));
            Assert.False(Directory.Exists($"/tmp/fastoverlay-lab.{prefix}"));
        }
        finally
        {
            Cmd.Run(["bash", LabRequirements.LabScript, "down"], TimeSpan.FromSeconds(60), env);
        }
    }

    private void AssertFlannelNode(LabRun lab, int node)
    {
        var ns = $"n{node}";
        var peer = 3 - node;
        var link = lab.Exec(ns, "ip", "-d", "link", "show", "flannel.1").Stdout;
        output.WriteLine(link);
        Assert.Matches($@"vxlan id 1 local {LabRun.PublicIp(node).Replace(".", @"\.", StringComparison.Ordinal)} dev {lab.Underlay(node)} .*dstport 8472 nolearning", link);
        Assert.Contains("mtu 1450", link, StringComparison.Ordinal);
        Assert.Contains($"link/ether {LabRun.VtepMac(node)}", link, StringComparison.Ordinal);
        Assert.Contains($"inet 10.244.{node}.0/32", lab.Exec(ns, "ip", "-4", "addr", "show", "flannel.1").Stdout, StringComparison.Ordinal);
        Assert.Equal($"10.244.{peer}.0/24 via 10.244.{peer}.0 dev flannel.1 onlink", lab.Exec(ns, "ip", "route", "show", $"10.244.{peer}.0/24").Stdout.Trim());
        Assert.Contains($"10.244.{peer}.0 lladdr {LabRun.VtepMac(peer)} PERMANENT", lab.Exec(ns, "ip", "neigh", "show", "dev", "flannel.1").Stdout, StringComparison.Ordinal);
        Assert.Contains($"{LabRun.VtepMac(peer)} dst {LabRun.PublicIp(peer)} self permanent", lab.Exec(ns, "bridge", "fdb", "show", "dev", "flannel.1").Stdout, StringComparison.Ordinal);
        Assert.Contains($"inet 10.244.{node}.1/24", lab.Exec(ns, "ip", "-4", "addr", "show", "cbr0").Stdout, StringComparison.Ordinal);
        foreach (var k in new[] { 1, 2 })
            Assert.Contains("master cbr0", lab.Exec(ns, "ip", "link", "show", lab.PodVeth($"p{node}{k}")).Stdout, StringComparison.Ordinal);
        Assert.Equal("1", lab.Exec(ns, "cat", "/proc/sys/net/ipv4/ip_forward").Stdout.Trim());
    }

    private static void AssertBareNodeWithConfig(LabRun lab, int node)
    {
        var ns = $"n{node}";
        // The kernel holds no pod-network address (FastOverlay answers ARP for the gateway), no bridge, no VXLAN device.
        Assert.DoesNotContain("10.244.", lab.Exec(ns, "ip", "-4", "addr").Stdout, StringComparison.Ordinal);
        Assert.False(lab.Exec(ns, "ip", "link", "show", "cbr0").Ok);
        Assert.False(lab.Exec(ns, "ip", "link", "show", "flannel.1").Ok);
        using var doc = JsonDocument.Parse(File.ReadAllText(lab.ConfigPath(node)));
        var root = doc.RootElement;
        Assert.Equal("10.244.0.0/16", root.GetProperty("Network").GetString());
        Assert.Equal(1, root.GetProperty("Backend").GetProperty("VNI").GetInt32());
        Assert.Equal(8472, root.GetProperty("Backend").GetProperty("Port").GetInt32());
        var me = root.GetProperty("Node");
        Assert.Equal(LabRun.PublicIp(node), me.GetProperty("PublicIP").GetString());
        Assert.Equal($"10.244.{node}.0/24", me.GetProperty("Subnet").GetString());
        Assert.Equal(LabRun.VtepMac(node), me.GetProperty("VtepMAC").GetString());
        Assert.Equal(lab.Underlay(node), me.GetProperty("Underlay").GetString());
        foreach (var pod in me.GetProperty("Pods").EnumerateArray())
        {
            var veth = pod.GetProperty("Interface").GetString()!;
            var link = lab.Exec(ns, "ip", "-4", "addr", "show", veth);
            Assert.True(link.Ok, link.ToString());
            Assert.DoesNotContain("inet ", link.Stdout, StringComparison.Ordinal);   // host ends of pod veths carry no IP
            Assert.Contains(pod.GetProperty("IP").GetString()!, new[] { LabRun.PodIp($"p{node}1"), LabRun.PodIp($"p{node}2") });
        }
        var peer = root.GetProperty("Peers")[0];
        Assert.Equal(LabRun.PublicIp(3 - node), peer.GetProperty("PublicIP").GetString());
        Assert.Equal(LabRun.VtepMac(3 - node), peer.GetProperty("VtepMAC").GetString());
    }

    /// <summary>By default a veth keeps what Linux gives it (checksum offload, TSO, GSO on); LAB_OFFLOADS=off turns them off.</summary>
    private static void AssertOffloads(LabRun lab, string ns, string iface)
    {
        var k = lab.Exec(ns, "ethtool", "-k", iface).Stdout;
        var features = lab.Offloads == "off"
            ? new[] { "rx-checksumming", "tx-checksumming", "tcp-segmentation-offload", "generic-segmentation-offload", "generic-receive-offload" }
            : ["rx-checksumming", "tx-checksumming", "tcp-segmentation-offload", "generic-segmentation-offload"];
        var state = lab.Offloads == "off" ? "off" : "on";
        foreach (var feature in features)
            Assert.Contains($"{feature}: {state}", k, StringComparison.Ordinal);
    }
}
