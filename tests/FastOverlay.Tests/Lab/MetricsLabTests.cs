using System.Globalization;
using Xunit.Abstractions;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// The metrics endpoint of a running node: scraped from inside the node's namespace, parsed, the counters matched
/// to the traffic sent, and checked by Prometheus' own promtool where Debian's `prometheus` package is installed.
/// </summary>
[Collection("netns")]
public sealed class MetricsLabTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void The_scrape_parses_and_its_counters_match_the_pings_sent()
    {
        LabRequirements.Require("ping", "python3");
        LabRequirements.RequireFastOverlayRun();
        using var lab = LabRun.Up("fastoverlay", output);
        var before = Scrape(lab);
        var ping = lab.Exec("p11", "ping", "-n", "-c", "5", "-i", "0.2", "-W", "2", LabRun.PodIp("p21"));
        Assert.True(ping.Ok, ping.ToString());
        var text = ScrapeText(lab);
        var after = Parse(text);

        // Five echo requests went out in VXLAN and five replies came back in it (ARP stays on each node).
        Assert.Equal(5, after["fastoverlay_packets_total{event=\"Encapsulated\"}"] - before.GetValueOrDefault("fastoverlay_packets_total{event=\"Encapsulated\"}"));
        Assert.Equal(5, after["fastoverlay_packets_total{event=\"Decapsulated\"}"] - before.GetValueOrDefault("fastoverlay_packets_total{event=\"Decapsulated\"}"));
        var veth = lab.PodVeth("p11");
        Assert.True(after[$"fastoverlay_port_packets_total{{port=\"{veth}\",direction=\"rx\"}}"] >= 5);
        Assert.True(after[$"fastoverlay_port_bytes_total{{port=\"{veth}\",direction=\"tx\"}}"] >= 5 * 98);
        Assert.Equal(1, after["fastoverlay_peers"]);
        // Per peer (node2's subnet): the five requests went to it and the five replies came from it.
        const string Node2 = "peer=\"10.244.2.0/24\"";
        Assert.Equal(5, after[$"fastoverlay_peer_packets_total{{{Node2},direction=\"tx\"}}"] - before.GetValueOrDefault($"fastoverlay_peer_packets_total{{{Node2},direction=\"tx\"}}"));
        Assert.Equal(5, after[$"fastoverlay_peer_packets_total{{{Node2},direction=\"rx\"}}"] - before.GetValueOrDefault($"fastoverlay_peer_packets_total{{{Node2},direction=\"rx\"}}"));
        Assert.True(after[$"fastoverlay_peer_bytes_total{{{Node2},direction=\"tx\"}}"] >= 5 * (98 + 50));
        Assert.Equal(2, after["fastoverlay_pods{source=\"config\"}"]);
        Assert.True(after["fastoverlay_arp_entries"] >= 1);
        Assert.Contains(after.Keys, k => k.StartsWith("fastoverlay_build_info{", StringComparison.Ordinal));

        Skip.IfNot(LabRequirements.ToolExists("promtool"), "promtool is not installed (apt-get install prometheus): the scrape was parsed here only");
        var file = Path.Combine(lab.StateDir, "scrape.txt");
        File.WriteAllText(file, text);
        var check = Cmd.Run(["bash", "-c", "promtool check metrics < \"$0\"", file], TimeSpan.FromSeconds(30));
        Assert.True(check.Ok, check.ToString());
    }

    private static string ScrapeText(LabRun lab)
    {
        var r = lab.Exec("n1", "python3", "-c", "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:9464/metrics', timeout=10).read().decode())");
        Assert.True(r.Ok, r.ToString());
        return r.Stdout;
    }

    private static Dictionary<string, double> Scrape(LabRun lab) => Parse(ScrapeText(lab));

    /// <summary>The text format's samples: "name{labels} value" per line, comments skipped.</summary>
    private static Dictionary<string, double> Parse(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.StartsWith('#'))
            .Select(l => (Key: l[..l.LastIndexOf(' ')], Value: double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)))
            .ToDictionary(s => s.Key, s => s.Value);
}
