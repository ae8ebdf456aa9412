using System.Diagnostics;
using FastOverlay.Cli;

namespace FastOverlay.Tests.Cli;

public class DemoCommandTests
{
    [Fact]
    public void Demo_prints_all_walks_and_rates_and_exits_zero()
    {
        var output = new StringWriter();
        var rc = Program.BuildCommand(output).Parse(["demo", "--seconds", "0.3"]).Invoke();
        var text = output.ToString();
        Assert.Equal(0, rc);
        Assert.Contains("Walk 1: pod to pod on the same node", text);
        Assert.Contains("Walk 2: pod to pod on another node", text);
        Assert.Contains("Walk 3: the reply", text);
        Assert.DoesNotContain("NOT delivered", text);
        Assert.Contains("vxlan encap", text);
        Assert.Contains("vxlan decap", text);
        Assert.Matches(@"pod to pod, same node\s+[\d,]+\s+[\d,]+\s+[\d.]+ [Mk]pps", text);
        Assert.Matches(@"pod to pod, other node \(VXLAN\)\s+[\d,]+\s+[\d,]+\s+[\d.]+ [Mk]pps", text);
        Assert.Contains("drops by reason", text);
    }

    [Fact]
    public void No_subcommand_runs_the_demo()
    {
        var output = new StringWriter();
        var rc = Program.BuildCommand(output).Parse(["--seconds", "0.1"]).Invoke();
        Assert.Equal(0, rc);
        Assert.Contains("Walk 3", output.ToString());
    }

    [SkippableFact]
    public void Pcap_of_the_walks_decodes_in_tshark_with_every_hop_and_valid_checksums()
    {
        Skip.IfNot(ToolExists("tshark"), "tshark is not installed (apt-get install tshark); .ci/run installs it");
        var file = Path.Combine(Path.GetTempPath(), $"fastoverlay-demo-{Environment.ProcessId}-{Guid.NewGuid():N}.pcapng");
        try
        {
            var rc = Program.BuildCommand(TextWriter.Null).Parse(["demo", "--seconds", "0.1", "--pcap", file]).Invoke();
            Assert.Equal(0, rc);
            var fields = Tshark(file, "-d", "udp.port==8472,vxlan", "-o", "ip.check_checksum:TRUE", "-T", "fields", "-E", "separator=|",
                "-e", "frame.interface_name", "-e", "frame.protocols", "-e", "vxlan.vni", "-e", "ip.checksum.status", "-e", "udp.checksum", "-e", "icmp.type");
            var lines = fields.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length >= 30, $"only {lines.Length} frames decoded");
            var vxlan = lines.Where(l => l.Contains("udp:vxlan:eth:ethertype:ip:icmp", StringComparison.Ordinal)).ToList();
            Assert.True(vxlan.Count >= 4, "expected VXLAN frames on both underlays, request and reply");
            Assert.All(vxlan, l =>
            {
                var f = l.Split('|');
                Assert.Equal("1", f[2]);              // VNI 1
                Assert.Equal("1,1", f[3]);            // outer and inner IPv4 checksums good
                Assert.StartsWith("0x0000", f[4]);    // outer UDP checksum zero (RFC 7348)
            });
            Assert.Contains(lines, l => l.StartsWith("node1:node1/underlay|", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith("node2:node2/underlay|", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith("web-0:eth0|", StringComparison.Ordinal) && l.Contains("arp", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith("api-1:eth0|", StringComparison.Ordinal) && l.EndsWith("|8", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith("web-0:eth0|", StringComparison.Ordinal) && l.EndsWith("|0", StringComparison.Ordinal));
            Assert.DoesNotContain(lines, l => l.Contains("|0,", StringComparison.Ordinal) || l.Contains(",0|", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(file);
        }
    }

    internal static bool ToolExists(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, tool)));

    private static string Tshark(string file, params string[] args)
    {
        var psi = new ProcessStartInfo("tshark") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-r");
        psi.ArgumentList.Add(file);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000), "tshark hung");
        Assert.True(p.ExitCode == 0, $"tshark failed: {stderr.Result}");
        return stdout.Result;
    }
}
