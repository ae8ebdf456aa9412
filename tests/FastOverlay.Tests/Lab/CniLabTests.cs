using System.Text.Json;
using FastOverlay.Cli;
using Xunit.Abstractions;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// The CNI plugin against a running node in the lab, invoked as a runtime would, with Debian's host-local.
/// Skipped (with the reason) without root, the lab's tools or containernetworking-plugins.
/// </summary>
[Collection("netns")]
public sealed class CniLabTests(ITestOutputHelper output)
{
    private static void Require()
    {
        LabRequirements.Require("ping", "nsenter");
        LabRequirements.RequireFastOverlayRun();
        Skip.IfNot(File.Exists(Path.Combine(CniRuntime.DebianPluginDir, "host-local")), "host-local is not installed (apt-get install containernetworking-plugins); .ci/run installs it");
    }

    [SkippableFact]
    public void Pods_added_by_the_plugin_reach_each_other_and_other_nodes_and_DEL_ADD_CHECK_behave()
    {
        Require();
        using var lab = LabRun.Up("fastoverlay", output);
        var cni = new CniRuntime(lab);
        cni.CreateContainer("c1");
        cni.CreateContainer("c2");
        var ip1 = cni.Add("c1");
        var ip2 = cni.Add("c2");
        output.WriteLine($"c1 {ip1}, c2 {ip2}");
        Assert.Equal(2, cni.HeldAddresses().Count);

        // Same node (CNI pod to CNI pod and to a pod of the file), and across to node2.
        AssertPing(lab, "c1", ip2);
        AssertPing(lab, "c2", LabRun.PodIp("p11"));
        AssertPing(lab, "c1", LabRun.PodIp("p21"));
        var back = lab.Exec("p21", "ping", "-n", "-c", "2", "-W", "2", ip1);
        Assert.True(back.Ok, back.ToString());

        // status names the new pods, as API pods, with the plugin's MAC.
        var status = Status(lab);
        var apiPods = status.GetProperty("pods").EnumerateArray().Where(p => p.GetProperty("source").GetString() == "api").Select(p => p.GetProperty("ip").GetString()).ToList();
        Assert.Equal([ip1, ip2], apiPods);
        Assert.True(File.Exists(Path.Combine(lab.StateDir, "pods1.json")), "the API's pods are not in the state file");

        Assert.True(cni.Invoke("CHECK", "c1").Ok, cni.Invoke("CHECK", "c1").ToString());

        // DEL frees the address and the port; a second DEL is fine; ADD after DEL works again.
        var linksWithC2 = cni.NodeLinks();
        var del = cni.Invoke("DEL", "c2");
        Assert.True(del.Ok, del.ToString());
        Assert.Equal([ip1], cni.HeldAddresses());
        Assert.Equal(linksWithC2.Count - 1, cni.NodeLinks().Count);
        Assert.DoesNotContain(ip2, Status(lab).GetProperty("pods").EnumerateArray().Select(p => p.GetProperty("ip").GetString()));
        Assert.True(cni.Invoke("DEL", "c2").Ok);
        var again = cni.Add("c2");
        AssertPing(lab, "c2", ip1);
        output.WriteLine($"c2 again {again}");

        // The API's pods survive a restart of the daemon (the state file); the runtime does not ADD again.
        lab.StopNode(1);
        var start = lab.Script(TimeSpan.FromSeconds(90), "start", "1");
        Assert.True(start.Ok, start.ToString());
        AssertPing(lab, "c1", again);
        AssertPing(lab, "c2", LabRun.PodIp("p21"));

        // CHECK reports a pod whose address was taken away.
        lab.Exec("c1", "ip", "addr", "flush", "dev", "eth0");
        var broken = CniRuntime.Error(cni.Invoke("CHECK", "c1"));
        Assert.Equal(100, broken.GetProperty("code").GetInt32());
        output.WriteLine(broken.ToString());
    }

    [SkippableFact]
    public void Pods_added_by_the_plugin_on_two_nodes_carry_ping_UDP_and_TCP_across()
    {
        Require();
        LabRequirements.Require("iperf3");
        using var lab = LabRun.Up("fastoverlay", output);
        var (node1, node2) = (new CniRuntime(lab, node: 1), new CniRuntime(lab, node: 2));
        node1.CreateContainer("c1");
        node2.CreateContainer("d1");
        var ip1 = node1.Add("c1");
        var ip2 = node2.Add("d1");
        Assert.StartsWith("10.244.2.", ip2, StringComparison.Ordinal);
        AssertPing(lab, "c1", ip2);
        AssertPing(lab, "d1", ip1);
        // iperf3's servers are the lab's pods: CNI pods as clients, same node and across, both directions.
        lab.AssertUdp("c1", "p21");
        lab.AssertTcp("c1", "p21");
        lab.AssertTcp("d1", "p11", reverse: true);
        lab.AssertUdp("c1", "p12");
        lab.AssertTcp("c1", "p12");
    }

    [SkippableFact]
    public void Bad_configs_a_missing_netns_and_a_stopped_daemon_give_CNI_errors_and_leave_nothing_behind()
    {
        Require();
        using var lab = LabRun.Up("fastoverlay", output);
        var cni = new CniRuntime(lab);
        cni.CreateContainer("c1");
        var links = cni.NodeLinks();

        Assert.Equal(6, CniRuntime.Error(cni.Invoke("ADD", "c1", config: "{not json")).GetProperty("code").GetInt32());
        Assert.Equal(7, CniRuntime.Error(cni.Invoke("ADD", "c1", config: cni.Config(c => c.Remove("ipam")))).GetProperty("code").GetInt32());
        Assert.Equal(7, CniRuntime.Error(cni.Invoke("ADD", "c1", config: cni.Config(c => c["ipam"]!["type"] = "no-such-ipam"))).GetProperty("code").GetInt32());
        Assert.Equal(1, CniRuntime.Error(cni.Invoke("ADD", "c1", config: cni.Config(c => c["cniVersion"] = "9.9.9"))).GetProperty("code").GetInt32());
        Assert.Equal(3, CniRuntime.Error(cni.Invoke("ADD", "c1", netns: "/var/run/netns/" + lab.Ns("absent"))).GetProperty("code").GetInt32());
        // An address outside the node's subnet: host-local hands it out, the daemon refuses the port, and ADD undoes it all.
        var refused = CniRuntime.Error(cni.Invoke("ADD", "c1", config: cni.Config(c =>
        {
            c["ipam"]!["subnet"] = "10.250.0.0/24";
            c["ipam"]!.AsObject().Remove("rangeStart");
        })));
        Assert.Equal(101, refused.GetProperty("code").GetInt32());
        Assert.Contains("refused", refused.GetProperty("msg").GetString(), StringComparison.Ordinal);

        lab.StopNode(1);
        var down = CniRuntime.Error(cni.Invoke("ADD", "c1"));
        Assert.Equal(11, down.GetProperty("code").GetInt32());
        output.WriteLine(down.ToString());

        Assert.Equal(links, cni.NodeLinks());
        Assert.Empty(cni.HeldAddresses());
        Assert.Equal("1: lo", string.Join(",", lab.Exec("c1", "ip", "-o", "link", "show").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => string.Join(':', l.Split(':')[..2]))));
        Assert.True(cni.Invoke("DEL", "c1").Ok, "DEL of a pod that was never added must succeed");
    }

    private static void AssertPing(LabRun lab, string from, string to)
    {
        var r = lab.Exec(from, "ping", "-n", "-c", "2", "-i", "0.3", "-W", "2", to);
        Assert.True(r.Ok, r.ToString());
    }

    private static JsonElement Status(LabRun lab)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        var rc = Program.BuildCommand(o, e).Parse(["status", "--json", "--api-socket", Path.Combine(lab.StateDir, "node1.sock")]).Invoke();
        Assert.True(rc == 0, e.ToString());
        return JsonDocument.Parse(o.ToString()).RootElement;
    }
}
