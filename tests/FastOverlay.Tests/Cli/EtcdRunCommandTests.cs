using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using FastOverlay.Cli;
using FastOverlay.Tests.Control;

namespace FastOverlay.Tests.Cli;

/// <summary>
/// `fastoverlay run --etcd-endpoints ...` as a real process against a real etcd: flanneld's flags, the lease and
/// subnet.env written, a peer written with etcdctl logged as added, SIGTERM a clean stop. No pods, so no root.
/// </summary>
public sealed class EtcdRunCommandTests(EtcdServer etcd) : IClassFixture<EtcdServer>
{
    [Fact]
    public void Bad_etcd_flags_and_file_sections_exit_2_naming_them()
    {
        var error = new StringWriter();
        Assert.Equal(2, Program.BuildCommand(new StringWriter(), error).Parse(["run", "--etcd-endpoints", "ftp://x", "--public-ip", "127.0.0.1"]).Invoke());
        Assert.StartsWith("fastoverlay: etcd mode: --etcd-endpoints: 'ftp://x' is not an http:// or https:// URL", error.ToString());

        var path = Path.Combine(Path.GetTempPath(), $"fastoverlay-etcdfile-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """{"Etcd":{"Endpoints":["http://127.0.0.1:1"]},"Network":"10.244.0.0/16","Node":{"PublicIP":"127.0.0.1"}}""");
        try
        {
            error = new StringWriter();
            Assert.Equal(2, Program.BuildCommand(new StringWriter(), error).Parse(["run", "--config", path]).Invoke());
            Assert.Contains($"{path}: Network: not allowed in etcd mode", error.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
        error = new StringWriter();
        Assert.Equal(2, Program.BuildCommand(new StringWriter(), error).Parse(["run"]).Invoke());
        Assert.Contains("--etcd-endpoints", error.ToString(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public void A_backend_flannel_would_not_run_as_vxlan_in_etcd_exits_2_naming_it()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = $"/bad{Guid.NewGuid():N}/coreos.com/network";
        etcd.Ctl("put", prefix + "/config", """{"Network":"10.244.0.0/16"}""");
        var error = new StringWriter();
        var rc = Program.BuildCommand(new StringWriter(), error).Parse(["run", "--etcd-endpoints", etcd.Endpoint, "--etcd-prefix", prefix, "--public-ip", "127.0.0.1", "--subnet-file", "/nonexistent/subnet.env", .. ApiPaths.Args()]).Invoke();
        Assert.Equal(2, rc);
        Assert.Contains("etcd config.Backend: missing: flanneld would run the \"udp\" backend", error.ToString(), StringComparison.Ordinal);
        Assert.Equal("", etcd.Ctl("get", "--prefix", "--keys-only", prefix + "/subnets/").Trim());
    }

    [SkippableFact]
    public void A_node_joins_through_etcd_with_flanneld_flags_follows_peers_and_stops_cleanly()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = $"/cli{Guid.NewGuid():N}/coreos.com/network";
        etcd.Ctl("put", prefix + "/config", $$$"""{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Port":{{{FreeUdpPort()}}}}}""");
        var dir = Directory.CreateTempSubdirectory("fastoverlay-etcd-cli-");
        var env = Path.Combine(dir.FullName, "subnet.env");
        using var process = ChildProcess.Start($"run --etcd-endpoints {etcd.Endpoint} --etcd-prefix {prefix} --public-ip 127.0.0.1 --subnet-file {env}");
        try
        {
            Assert.True(process.WaitForLine(l => l == "ready", TimeSpan.FromSeconds(60)), process.Transcript());
            var subnetEnv = File.ReadAllText(env);
            Assert.Matches(@"^FLANNEL_NETWORK=10\.244\.0\.0/16\nFLANNEL_SUBNET=10\.244\.\d+\.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n$", subnetEnv);
            var keys = etcd.Ctl("get", "--prefix", "--keys-only", prefix + "/subnets/");
            Assert.Contains("\"PublicIP\":\"127.0.0.1\"", etcd.Ctl("get", "--print-value-only", keys.Trim()), StringComparison.Ordinal);

            var clock = Stopwatch.StartNew();
            etcd.Ctl("put", prefix + "/subnets/10.244.250.0-24", FlannelJson.Lease("172.31.77.9", "0a:00:00:00:09:00"));
            Assert.True(process.WaitForLine(l => l.StartsWith("peers: added 10.244.250.0/24", StringComparison.Ordinal), TimeSpan.FromSeconds(1)), process.Transcript());
            Console.WriteLine($"etcdctl put -> 'peers: added' from the fastoverlay process: {clock.ElapsedMilliseconds} ms");

            Assert.Equal(0, process.Terminate(TimeSpan.FromSeconds(15)));
            Assert.Contains("buffers in use after drain: 0", process.Transcript(), StringComparison.Ordinal);
            // A restart is not a decommission: the lease stays for the next start to reuse.
            Assert.Contains("127.0.0.1", etcd.Ctl("get", "--print-value-only", keys.Trim()), StringComparison.Ordinal);
        }
        finally
        {
            process.Kill();
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void An_empty_services_prefix_exits_2_naming_the_flag()
    {
        var error = new StringWriter();
        Assert.Equal(2, Program.BuildCommand(new StringWriter(), error).Parse(["run", "--etcd-endpoints", "http://127.0.0.1:1", "--public-ip", "127.0.0.1", "--services-prefix", "/"]).Invoke());
        Assert.StartsWith("fastoverlay: etcd mode: --services-prefix: '/' is not a key prefix", error.ToString(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public void A_node_in_etcd_mode_follows_the_services_under_its_prefix()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = $"/svc{Guid.NewGuid():N}/coreos.com/network";
        var services = $"/svc{Guid.NewGuid():N}/fastoverlay/services/";
        etcd.Ctl("put", prefix + "/config", $$$"""{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Port":{{{FreeUdpPort()}}}}}""");
        etcd.Ctl("put", services + "default/web", ServiceJson.ClusterIp("web", "10.96.0.10"));
        var dir = Directory.CreateTempSubdirectory("fastoverlay-etcd-svc-");
        using var process = ChildProcess.Start($"run --etcd-endpoints {etcd.Endpoint} --etcd-prefix {prefix} --services-prefix {services} --public-ip 127.0.0.1 --subnet-file {Path.Combine(dir.FullName, "subnet.env")}");
        try
        {
            Assert.True(process.WaitForLine(l => l == "ready", TimeSpan.FromSeconds(60)), process.Transcript());
            Assert.True(process.WaitForLine(l => l.StartsWith("services: added default/web (ClusterIP 10.96.0.10, 1 port, 1 endpoint)", StringComparison.Ordinal), TimeSpan.FromSeconds(5)), process.Transcript());

            etcd.Ctl("put", services + "default/api", ServiceJson.ClusterIp("api", "10.96.0.10"));
            Assert.True(process.WaitForLine(l => l.StartsWith($"services: skipped {services}default/api: default/api.ClusterIP: 10.96.0.10 is also default/web.ClusterIP", StringComparison.Ordinal), TimeSpan.FromSeconds(5)), process.Transcript());
            etcd.Ctl("del", services + "default/web");
            Assert.True(process.WaitForLine(l => l == "services: removed default/web", TimeSpan.FromSeconds(5)), process.Transcript());
            Assert.True(process.WaitForLine(l => l.StartsWith("services: added default/api", StringComparison.Ordinal), TimeSpan.FromSeconds(5)), process.Transcript());
            Assert.DoesNotContain("refused", process.Transcript(), StringComparison.Ordinal);
            Assert.Equal(0, process.Terminate(TimeSpan.FromSeconds(15)));
        }
        finally
        {
            process.Kill();
            dir.Delete(recursive: true);
        }
    }

    private static int FreeUdpPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>The built fastoverlay.dll as a child process, its output collected line by line.</summary>
    private sealed class ChildProcess : IDisposable
    {
        private readonly Process _process;
        private readonly ConcurrentQueue<string> _lines = new();

        private ChildProcess(Process process)
        {
            _process = process;
            process.OutputDataReceived += (_, e) => { if (e.Data is not null) _lines.Enqueue(e.Data); };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _lines.Enqueue(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public static ChildProcess Start(string arguments)
        {
            var dotnet = Environment.ProcessPath is { } p && Path.GetFileName(p) == "dotnet" ? p : "dotnet";
            var dll = Path.Combine(AppContext.BaseDirectory, "fastoverlay.dll");
            return new ChildProcess(Process.Start(new ProcessStartInfo(dotnet, $"{dll} {arguments} {ApiPaths.Text()}") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!);
        }

        public bool WaitForLine(Func<string, bool> match, TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < timeout)
            {
                if (_lines.Any(match)) return true;
                if (_process.HasExited) return _lines.Any(match);
                Thread.Sleep(2);
            }
            return false;
        }

        public string Transcript() => string.Join('\n', _lines);

        public int Terminate(TimeSpan timeout)
        {
            using (var kill = Process.Start("kill", $"-TERM {_process.Id}")) kill.WaitForExit();
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
        }
    }
}
