using System.Collections.Concurrent;
using System.Diagnostics;
using FastOverlay.Cli;
using FastOverlay.Tests.Config;
using FastOverlay.Tests.Ports;

namespace FastOverlay.Tests.Cli;

/// <summary>
/// `fastoverlay run`: a bad configuration is refused before anything opens (no root needed); and, as root, a real
/// node in a namespace answers a pod's ping, routes between its pods, takes a new pod from an edited config,
/// keeps running on a broken one and stops cleanly on SIGTERM with every buffer back.
/// </summary>
[Collection("netns")]
public sealed class RunCommandTests
{
    [Fact]
    public void A_bad_config_exits_2_with_one_message_naming_the_field()
    {
        var path = Path.Combine(Path.GetTempPath(), $"fastoverlay-bad-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, ConfigFixture.With("Peers[0].VtepMAC", "\"0a:58:0a:f4:02\""));
        try
        {
            var (output, error) = (new StringWriter(), new StringWriter());
            var rc = Program.BuildCommand(output, error).Parse(["run", "--config", path]).Invoke();
            Assert.Equal(2, rc);
            Assert.Equal($"fastoverlay: {path}: Peers[0].VtepMAC: '0a:58:0a:f4:02' is not a MAC address (expected six hex octets like 0a:58:0a:f4:01:00)", error.ToString().Trim());
            Assert.DoesNotContain("ready", output.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_missing_config_file_exits_2()
    {
        var error = new StringWriter();
        var rc = Program.BuildCommand(new StringWriter(), error).Parse(["run", "--config", "/nonexistent/node.json"]).Invoke();
        Assert.Equal(2, rc);
        Assert.StartsWith("fastoverlay: /nonexistent/node.json: cannot read it:", error.ToString());
    }

    [SkippableFact]
    public void A_node_forwards_for_its_pods_reloads_and_stops_cleanly()
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        Skip.IfNot(Shell.Exists("ping"), "ping is not installed (apt-get install iputils-ping)");
        using var node = new TestNamespace("node");
        using var pod1 = new TestNamespace("pod1");
        using var pod2 = new TestNamespace("pod2");
        node.AddVeth("underlay0", "underlay1");
        node.Ip("addr add 172.31.77.1/24 dev underlay0");
        AttachPod(node, pod1, "veth-pod1", "10.244.1.2");
        AttachPod(node, pod2, "veth-pod2", "10.244.1.3");
        var config = Path.Combine(Path.GetTempPath(), $"fastoverlay-run-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        var onePod = ConfigFixture.With("Node.Underlay", "\"underlay0\"");
        File.WriteAllText(config, onePod);
        using var process = NodeProcess.Start(node, config);
        try
        {
            Assert.True(process.WaitForLine("ready", TimeSpan.FromSeconds(30)), process.Transcript());
            Assert.Equal(0, pod1.ExecStatus("ping -c 3 -i 0.2 -W 2 10.244.1.1"));

            File.WriteAllText(config, ConfigFixture.With("Node.Pods", """[ { "Interface": "veth-pod1", "IP": "10.244.1.2" }, { "Interface": "veth-pod2", "IP": "10.244.1.3" } ]""", onePod));
            Assert.True(process.WaitForLine("config: applied", TimeSpan.FromSeconds(10)), process.Transcript());
            Assert.Equal(0, pod1.ExecStatus("ping -c 3 -i 0.2 -W 2 10.244.1.3"));

            File.WriteAllText(config, ConfigFixture.With("Peers[0].Subnet", "\"10.244.1.0/24\"", onePod));
            Assert.True(process.WaitForLine("config: rejected", TimeSpan.FromSeconds(10)), process.Transcript());
            Assert.Contains("Peers[0].Subnet: 10.244.1.0/24 overlaps Node.Subnet", process.Transcript());
            Assert.Equal(0, pod2.ExecStatus("ping -c 2 -i 0.2 -W 2 10.244.1.2"));

            Assert.Equal(0, process.Terminate(TimeSpan.FromSeconds(15)));
            var transcript = process.Transcript();
            Assert.Contains("final counters of node1", transcript);
            Assert.Contains("buffers in use after drain: 0", transcript);
            Assert.Matches(@"IcmpEchoReplies\s+[3-9]", transcript);
            Assert.Matches(@"DeliveredToPods\s+(1\d|[5-9])", transcript);
        }
        finally
        {
            process.Kill();
            File.Delete(config);
        }
    }

    /// <summary>A pod: its eth0 in its own namespace with a default route via the gateway; the host end in the node's.</summary>
    private static void AttachPod(TestNamespace node, TestNamespace pod, string hostEnd, string ip)
    {
        node.Ip($"link add {hostEnd} type veth peer name eth0 netns {pod.Name}");
        node.Ip($"link set {hostEnd} up");
        pod.Ip($"addr add {ip}/24 dev eth0");
        pod.Ip("link set eth0 up");
        pod.Ip("route add default via 10.244.1.1");
    }

    /// <summary>`fastoverlay run` in a namespace, its stdout and stderr collected line by line.</summary>
    private sealed class NodeProcess : IDisposable
    {
        private readonly Process _process;
        private readonly ConcurrentQueue<string> _lines = new();
        private readonly SemaphoreSlim _newLine = new(0);

        private NodeProcess(Process process)
        {
            _process = process;
            process.OutputDataReceived += (_, e) => Add(e.Data);
            process.ErrorDataReceived += (_, e) => Add(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public static NodeProcess Start(TestNamespace ns, string config)
        {
            var dotnet = Environment.ProcessPath is { } p && Path.GetFileName(p) == "dotnet" ? p : "dotnet";
            var dll = Path.Combine(AppContext.BaseDirectory, "fastoverlay.dll");
            var start = new ProcessStartInfo("ip", $"netns exec {ns.Name} {dotnet} {dll} run --config {config} --stats 0.5 {ApiPaths.Text()}")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            return new NodeProcess(Process.Start(start)!);
        }

        private void Add(string? line)
        {
            if (line is null) return;
            _lines.Enqueue(line);
            _newLine.Release();
        }

        public bool WaitForLine(string start, TimeSpan timeout)
        {
            var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
            while (true)
            {
                if (_lines.Any(l => l.StartsWith(start, StringComparison.Ordinal))) return true;
                var left = (deadline - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency;
                if (left <= 0 || _process.HasExited && !_newLine.Wait(100)) return false;
                _newLine.Wait(TimeSpan.FromMilliseconds(Math.Min(left, 200)));
            }
        }

        public string Transcript() => string.Join('\n', _lines);

        /// <summary>SIGTERM (a background process ignores SIGINT, as shells start it), then the exit code.</summary>
        public int Terminate(TimeSpan timeout)
        {
            Shell.Run("kill", $"-TERM {_process.Id}");
            if (!_process.WaitForExit(timeout)) return -1;
            _process.WaitForExit();
            return _process.ExitCode;
        }

        public void Kill()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }

        public void Dispose()
        {
            Kill();
            _process.Dispose();
            _newLine.Dispose();
        }
    }
}
