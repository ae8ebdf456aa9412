using System.Text.Json;
using FastOverlay.Cli;
using Xunit.Abstractions;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// The node API of a running `fastoverlay run` in the lab: `status --json`, `pods`, `peers` and `trace` through the
/// socket, the socket's permissions, and the plain failure when no daemon is there.
/// </summary>
[Collection("netns")]
public sealed class NodeApiLabTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void Status_json_names_every_pod_and_peer_and_trace_shows_a_pings_hops()
    {
        LabRequirements.Require("ping");
        LabRequirements.RequireFastOverlayRun();
        using var lab = LabRun.Up("fastoverlay", output);
        var socket = Path.Combine(lab.StateDir, "node1.sock");

        var (rc, text, _) = Cli("status", "--json", "--api-socket", socket);
        Assert.Equal(0, rc);
        using var status = JsonDocument.Parse(text);
        var root = status.RootElement;
        Assert.Equal("node1", root.GetProperty("node").GetProperty("name").GetString());
        Assert.Equal(["node2"], root.GetProperty("peers").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        var pods = root.GetProperty("pods").EnumerateArray().Select(p => (p.GetProperty("interface").GetString(), p.GetProperty("ip").GetString())).ToList();
        Assert.Equal([(lab.PodVeth("p11"), LabRun.PodIp("p11")), (lab.PodVeth("p12"), LabRun.PodIp("p12"))], pods);
        Assert.True(root.GetProperty("pods")[0].GetProperty("port").GetProperty("vnetHeader").GetBoolean());

        var (podsRc, podsText, _) = Cli("pods", "--api-socket", socket);
        Assert.Equal(0, podsRc);
        Assert.Contains(lab.PodVeth("p12"), podsText, StringComparison.Ordinal);
        var (peersRc, peersText, _) = Cli("peers", "--api-socket", socket);
        Assert.Equal(0, peersRc);
        Assert.Contains("172.31.77.2", peersText, StringComparison.Ordinal);

        // The trace is asked for first; the ping then runs through it.
        var trace = Task.Run(() => Cli("trace", "--count", "4", "--timeout", "10", "--api-socket", socket));
        Thread.Sleep(1000);
        lab.Exec("p11", "ping", "-n", "-c", "3", "-i", "0.3", "-W", "1", LabRun.PodIp("p21"));
        var (traceRc, traceText, traceError) = trace.GetAwaiter().GetResult();
        output.WriteLine(traceText);
        Assert.True(traceRc == 0, traceError);
        Assert.Contains($"rx {lab.PodVeth("p11")}", traceText, StringComparison.Ordinal);
        Assert.Contains("route lookup  10.244.2.2 -> 10.244.2.0/24 via node2", traceText, StringComparison.Ordinal);
        Assert.Contains("vxlan encap   outer 172.31.77.1:", traceText, StringComparison.Ordinal);
        Assert.Contains("tx ", traceText, StringComparison.Ordinal);

        var counters = JsonDocument.Parse(Cmd.Run(["python3", "-c", Curl, socket, "/v1/counters"], TimeSpan.FromSeconds(10)).Stdout).RootElement;
        Assert.True(counters.GetProperty("node").GetProperty("Encapsulated").GetInt64() >= 3);
    }

    [SkippableFact]
    public void The_socket_is_roots_only_and_a_daemon_that_is_not_running_is_said_plainly()
    {
        LabRequirements.Require("setpriv", "python3");
        Skip.IfNot(File.Exists("/usr/bin/python3"), "/usr/bin/python3 (Debian's python3) is needed to connect as nobody");
        LabRequirements.RequireFastOverlayRun();
        using var lab = LabRun.Up("fastoverlay", output);
        var socket = Path.Combine(lab.StateDir, "node1.sock");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, OperatingSystem.IsWindows() ? 0 : File.GetUnixFileMode(socket));
        var root = Cmd.Run(["python3", "-c", Curl, socket, "/v1/status"], TimeSpan.FromSeconds(10));
        Assert.True(root.Ok, root.ToString());
        var nobody = Cmd.Run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", Curl, socket, "/v1/status"], TimeSpan.FromSeconds(10));
        Assert.False(nobody.Ok, $"nobody could use the socket: {nobody}");
        Assert.Contains("PermissionError", nobody.Output, StringComparison.Ordinal);

        var (rc, _, error) = Cli("status", "--api-socket", Path.Combine(lab.StateDir, "absent.sock"));
        Assert.Equal(1, rc);
        Assert.StartsWith("fastoverlay: fastoverlay is not running", error, StringComparison.Ordinal);
    }

    /// <summary>A minimal HTTP GET over a Unix socket, so the client is a separate process under another user.</summary>
    private const string Curl = """
        import socket, sys
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sys.argv[1])
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % sys.argv[2]).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if b"chunked" in head.lower():
            out, rest = b"", body
            while rest:
                size, _, rest = rest.partition(b"\r\n")
                n = int(size, 16)
                if n == 0: break
                out, rest = out + rest[:n], rest[n + 2:]
            body = out
        sys.stdout.write(body.decode())
        """;

    private static (int Rc, string Output, string Error) Cli(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        var rc = Program.BuildCommand(o, e).Parse(args).Invoke();
        return (rc, o.ToString(), e.ToString());
    }
}
