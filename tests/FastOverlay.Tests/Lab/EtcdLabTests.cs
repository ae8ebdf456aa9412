using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using FastOverlay.Tests.Control;
using Xunit.Abstractions;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// Issue 9's mixed cluster (Scripts/etcd-lab.sh): etcd on the underlay, two FastOverlay nodes that join through it
/// with flanneld's flags, and a kernel node whose lease the test writes and whose flannel.1 it programs from the
/// FastOverlay nodes' leases, exactly as flanneld would. Ping, UDP and TCP between every pair of pods; then the
/// kernel node's lease is deleted and put back while node1 and node2's pods keep talking.
/// </summary>
[Collection("netns")]
public sealed partial class EtcdLabTests(ITestOutputHelper output)
{
    private const string Etcd = "http://172.31.78.100:2379";
    private const string Subnets = "/coreos.com/network/subnets/";

    [SkippableFact]
    public void Two_fastoverlay_nodes_and_a_kernel_node_join_through_etcd_and_carry_every_pairs_traffic()
    {
        LabRequirements.Require("ping", "iperf3", "ss", "bridge");
        LabRequirements.RequireFastOverlayRun();
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var p = $"fe{Random.Shared.Next(0x1000000):x6}";
        var state = Directory.CreateTempSubdirectory($"fastoverlay-etcdlab-{p}-").FullName;
        var nodes = new List<BackgroundProcess>();
        try
        {
            Lab(p, "up");
            nodes.Add(Spawn(p, "e", "etcd", "--name", "e", "--data-dir", Path.Combine(state, "etcd"), "--listen-client-urls", Etcd, "--advertise-client-urls", Etcd,
                "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380", "--initial-cluster", "e=http://127.0.0.1:2380",
                "--logger", "zap", "--log-level", "error", "--unsafe-no-fsync"));
            WaitFor(() => Ctl(p, "endpoint", "health").Ok, TimeSpan.FromSeconds(15), "etcd healthy");
            Assert.True(Ctl(p, "put", "/coreos.com/network/config", FlannelJson.Config).Ok);
            var grant = Ctl(p, "lease", "grant", "86400");
            Assert.True(Ctl(p, "put", "--lease=" + grant.Stdout.Split(' ')[1], Subnets + "10.244.3.0-24", FlannelJson.Lease("172.31.78.3", "0a:58:0a:f4:03:00")).Ok);

            for (var k = 1; k <= 2; k++)
            {
                var config = Path.Combine(state, $"node{k}.json");
                File.WriteAllText(config, $$$"""{"Etcd":{"Endpoints":["{{{Etcd}}}"]},"Node":{"Name":"node{{{k}}}","Subnet":"10.244.{{{k}}}.0/24","Pods":[{"Interface":"{{{p}}}-v{{{k}}}","IP":"10.244.{{{k}}}.2"}]}}""");
                nodes.Add(Spawn(p, $"n{k}", "dotnet", LabRequirements.FastOverlayDll, "run", "--config", config, "--iface", $"{p}-u{k}", "--subnet-file", Path.Combine(state, $"subnet{k}.env"),
                    "--api-socket", Path.Combine(state, $"api{k}.sock"), "--pod-state", Path.Combine(state, $"pods{k}.json")));
            }
            WaitFor(() => Ready(nodes[1]) && Ready(nodes[2]), TimeSpan.FromSeconds(90), "both FastOverlay nodes ready");
            Assert.Equal("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n", File.ReadAllText(Path.Combine(state, "subnet1.env")));

            // node3 as flanneld: every vxlan lease but its own becomes route + neighbour + FDB on flannel.1.
            foreach (var (net, mac, ip) in Leases(p).Where(l => l.Net != "10.244.3.0"))
                Assert.True(Lab(p, "peer", net, mac, ip).Ok);
            WaitFor(() => nodes[1].Output.Contains("peers: added 10.244.2.0/24", StringComparison.Ordinal) && nodes[1].Output.Contains("peers: added 10.244.3.0/24", StringComparison.Ordinal)
                && nodes[2].Output.Contains("peers: added 10.244.1.0/24", StringComparison.Ordinal), TimeSpan.FromSeconds(10), "the peers");

            foreach (var (a, b) in new[] { (1, 2), (1, 3), (2, 3), (2, 1), (3, 1), (3, 2) })
                AssertPing(p, a, b);

            // The node API of an etcd node: its lease, the etcd source, both peers.
            var (so, se) = (new StringWriter(), new StringWriter());
            Assert.True(FastOverlay.Cli.Program.BuildCommand(so, se).Parse(["status", "--json", "--api-socket", Path.Combine(state, "api1.sock")]).Invoke() == 0, se.ToString());
            var status = System.Text.Json.JsonDocument.Parse(so.ToString()).RootElement;
            Assert.Equal("10.244.1.0/24", status.GetProperty("lease").GetProperty("subnet").GetString());
            Assert.True(status.GetProperty("lease").GetProperty("held").GetBoolean());
            Assert.StartsWith("etcd ", status.GetProperty("source").GetString(), StringComparison.Ordinal);
            Assert.Equal(["node-10.244.2.0-24", "node-10.244.3.0-24"], status.GetProperty("peers").EnumerateArray().Select(e => e.GetProperty("subnet").GetString() is { } s ? "node-" + s.Replace('/', '-') : "").Order());
            foreach (var (a, b) in new[] { (1, 2), (1, 3), (2, 3) })
            {
                Iperf(p, a, b, udp: true);
                Iperf(p, a, b, udp: false);
            }

            // A live change: node3's lease goes away (its routes on the FastOverlay nodes with it) and comes back,
            // while pod1 <-> pod2 traffic keeps flowing.
            using var steady = Spawn(p, "p1", "ping", "-n", "-i", "0.05", "-w", "8", "10.244.2.2");
            Thread.Sleep(500);
            var clock = Stopwatch.StartNew();
            Assert.True(Ctl(p, "del", Subnets + "10.244.3.0-24").Ok);
            WaitFor(() => nodes[1].Output.Contains("peers: removed 10.244.3.0/24", StringComparison.Ordinal), TimeSpan.FromSeconds(1), "node1 dropping node3");
            output.WriteLine($"etcdctl del -> node1 removed the peer after {clock.ElapsedMilliseconds} ms");
            Assert.False(Exec(p, "p1", "ping", "-n", "-c", "1", "-w", "1", "10.244.3.2").Ok, "pod3 still reachable after its lease was deleted");
            grant = Ctl(p, "lease", "grant", "86400");
            Assert.True(Ctl(p, "put", "--lease=" + grant.Stdout.Split(' ')[1], Subnets + "10.244.3.0-24", FlannelJson.Lease("172.31.78.3", "0a:58:0a:f4:03:00")).Ok);
            WaitFor(() => Regex.Matches(nodes[1].Output, "peers: added 10.244.3.0/24").Count == 2, TimeSpan.FromSeconds(1), "node1 adding node3 back");
            AssertPing(p, 1, 3);
            // WaitForExit(timeout) does not wait for the redirected output to drain; the no-argument form does.
            if (steady.Process.WaitForExit(TimeSpan.FromSeconds(15))) steady.Process.WaitForExit();
            var summary = LossPattern().Match(steady.Output);
            output.WriteLine($"pod1 -> pod2 during the change: {summary.Value}");
            // -w may end the run with the last request still in flight: at most that one may be missing.
            Assert.True(summary.Success && int.Parse(summary.Groups[1].Value, CultureInfo.InvariantCulture) - int.Parse(summary.Groups[2].Value, CultureInfo.InvariantCulture) <= 1,
                $"pod1 -> pod2 lost packets while node3's lease changed: {steady.Output}");
        }
        finally
        {
            for (var i = nodes.Count - 1; i >= 1; i--) output.WriteLine($"--- node{i} ---\n{Tail(nodes[i].Output)}");
            foreach (var n in nodes) n.Dispose();
            Lab(p, "down");
            Directory.Delete(state, recursive: true);
        }
    }

    private static List<(string Net, string Mac, string Ip)> Leases(string p)
    {
        var lines = Ctl(p, "get", "--prefix", Subnets).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var list = new List<(string, string, string)>();
        for (var i = 0; i + 1 < lines.Length; i += 2)
        {
            var m = LeasePattern().Match(lines[i] + lines[i + 1]);
            if (m.Success) list.Add((m.Groups[1].Value, m.Groups[3].Value, m.Groups[2].Value));
        }
        return list;
    }

    private void AssertPing(string p, int from, int to)
    {
        var r = Exec(p, $"p{from}", "ping", "-q", "-n", "-c", "3", "-i", "0.2", "-w", "10", $"10.244.{to}.2");
        Assert.True(r.Ok, $"ping pod{from} -> pod{to} failed: {r}");
        output.WriteLine($"ping pod{from} -> pod{to}: ok");
    }

    private void Iperf(string p, int client, int server, bool udp)
    {
        var port = (5300 + client * 10 + server + (udp ? 100 : 0)).ToString(CultureInfo.InvariantCulture);
        using var srv = Spawn(p, $"p{server}", "iperf3", "-s", "-1", "-p", port);
        WaitFor(() => Exec(p, $"p{server}", "ss", "-Hltn", $"sport = :{port}").Stdout.Contains("LISTEN", StringComparison.Ordinal), TimeSpan.FromSeconds(10), "iperf3 listening");
        string[] args = ["iperf3", "-c", $"10.244.{server}.2", "-p", port, "-t", "1", "--connect-timeout", "5000", .. udp ? new[] { "-u", "-b", "10M", "-l", "1000" } : []];
        var r = Cmd.Run(["ip", "netns", "exec", $"{p}-p{client}", .. args], TimeSpan.FromSeconds(40));
        Assert.True(r.Ok, $"iperf3 {(udp ? "UDP" : "TCP")} pod{client} -> pod{server} failed: {r}\nserver: {srv.Output}");
        output.WriteLine($"iperf3 {(udp ? "UDP" : "TCP")} pod{client} -> pod{server}: ok");
    }

    private static CmdResult Lab(string p, params string[] args) =>
        Cmd.Run(["bash", Path.Combine(LabRequirements.ScriptsDir, "etcd-lab.sh"), args[0], p, .. args[1..]], TimeSpan.FromSeconds(120));

    private static CmdResult Ctl(string p, params string[] args) =>
        Cmd.Run(["ip", "netns", "exec", $"{p}-e", "etcdctl", "--endpoints=" + Etcd, .. args], TimeSpan.FromSeconds(20));

    private static CmdResult Exec(string p, string ns, params string[] argv) => Cmd.Run(["ip", "netns", "exec", $"{p}-{ns}", .. argv], TimeSpan.FromSeconds(30));

    private static BackgroundProcess Spawn(string p, string ns, params string[] argv) => Cmd.Spawn(["ip", "netns", "exec", $"{p}-{ns}", .. argv]);

    private static void WaitFor(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout) Assert.Fail($"timed out after {timeout.TotalSeconds} s waiting for {what}");
            Thread.Sleep(20);
        }
    }

    private static bool Ready(BackgroundProcess node) => node.Output.Split('\n').Any(l => l.Trim() == "ready");

    private static string Tail(string text) => text.Length <= 4000 ? text : "..." + text[^4000..];

    [GeneratedRegex("""subnets/(\d+\.\d+\.\d+\.\d+)-24\{"PublicIP":"([\d.]+)".*"VtepMAC":"([0-9a-f:]+)"\}""")]
    private static partial Regex LeasePattern();

    [GeneratedRegex(@"(\d+) packets transmitted, (\d+) received")]
    private static partial Regex LossPattern();
}
