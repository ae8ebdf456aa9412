using System.Globalization;
using Xunit.Abstractions;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// One lab (perf/lab/lab.sh) with a prefix of its own. Disposing it always runs `lab.sh down` (which kills every
/// process in the lab's namespaces), then checks that no namespace with the prefix is left and removes any that is.
/// Names: nodes n1, n2; pods p11, p12 (node1) and p21, p22 (node2).
/// </summary>
internal sealed class LabRun : IDisposable
{
    private static readonly TimeSpan UpTimeout = TimeSpan.FromSeconds(150);
    private readonly List<BackgroundProcess> _spawned = [];
    private readonly ITestOutputHelper? _output;
    private bool _disposed;

    private LabRun(string mode, string prefix, ITestOutputHelper? output, string offloads, bool client, bool host = false)
    {
        Host = host;
        Mode = mode;
        Offloads = offloads;
        Client = client;
        Prefix = prefix;
        _output = output;
    }

    public string Mode { get; }
    /// <summary>"default": every veth keeps Linux's offloads (TSO, checksum offload), as Kubernetes leaves pods; "off": all off.</summary>
    public string Offloads { get; }
    /// <summary>LAB_CLIENT=1: the underlay is a bridge (namespace f) with a client outside the cluster (namespace c).</summary>
    public bool Client { get; }
    /// <summary>LAB_HOST=1: each node's stack is behind a host port (Node.HostInterface), with ip_forward and masquerade.</summary>
    public bool Host { get; }
    public string Prefix { get; }
    public string StateDir => $"/tmp/fastoverlay-lab.{Prefix}";

    public Dictionary<string, string> Env => new()
    {
        ["LAB_PREFIX"] = Prefix,
        ["FASTOVERLAY_DLL"] = LabRequirements.FastOverlayDll,
        ["LAB_STATE_ROOT"] = "/tmp",
        ["LAB_OFFLOADS"] = Offloads,
        // Captures must see wire-sized datagrams: UDP GSO sends are cut before the underlay veth, as for a NIC.
        ["LAB_UNDERLAY_USO"] = "off",
        ["LAB_CLIENT"] = Client ? "1" : "0",
        ["LAB_HOST"] = Host ? "1" : "0",
    };

    public static LabRun Up(string mode, ITestOutputHelper? output, bool start = true, string offloads = "default", bool client = false, bool host = false)
    {
        var lab = new LabRun(mode, NewPrefix(), output, offloads, client, host);
        try
        {
            var up = lab.Script(UpTimeout, start ? ["up", mode] : ["up", mode, "--no-start"]);
            Assert.True(up.Ok, $"lab.sh up {mode} failed: {up}");
        }
        catch
        {
            lab.Dispose();
            throw;
        }
        return lab;
    }

    /// <summary>ft + 7 random hex digits: unique across parallel test runs, and short enough for interface names.</summary>
    public static string NewPrefix() => $"ft{Random.Shared.Next(0x10000000):x7}";

    public static string PodIp(string pod) => $"10.244.{pod[1]}.{pod[2] - '0' + 1}";
    public static string PublicIp(int node) => $"172.31.77.{node}";
    public static string VtepMac(int node) => $"0a:58:0a:f4:{node:x2}:00";
    /// <summary>The client outside the cluster (namespace c, LAB_CLIENT=1), on the underlay's subnet.</summary>
    public const string ClientIp = "172.31.77.100";

    public string Ns(string name) => $"{Prefix}-{name}";
    public string Underlay(int node) => $"{Prefix}-u{node}";
    public string PodVeth(string pod) => $"{Prefix}-v{pod[1..]}";
    public string ConfigPath(int node) => Path.Combine(StateDir, $"node{node}.json");
    public string LogPath(int node) => Path.Combine(StateDir, $"node{node}.log");
    public string NodeLog(int node) => File.Exists(LogPath(node)) ? File.ReadAllText(LogPath(node)) : "";

    public int? FastOverlayPid(int node)
    {
        var file = Path.Combine(StateDir, $"node{node}.pid");
        return File.Exists(file) ? int.Parse(File.ReadAllText(file).Trim(), CultureInfo.InvariantCulture) : null;
    }

    public bool FastOverlayRunning(int node) =>
        FastOverlayPid(node) is { } pid && Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);

    public CmdResult Script(TimeSpan timeout, params string[] args) =>
        Cmd.Run(["bash", LabRequirements.LabScript, .. args], timeout, Env);

    public CmdResult Exec(string ns, TimeSpan timeout, params string[] argv) =>
        Cmd.Run(["ip", "netns", "exec", Ns(ns), .. argv], timeout);

    public CmdResult Exec(string ns, params string[] argv) => Exec(ns, TimeSpan.FromSeconds(30), argv);

    /// <summary>A process inside a lab namespace, killed at the latest when the lab goes down.</summary>
    public BackgroundProcess Spawn(string ns, params string[] argv)
    {
        var p = Cmd.Spawn(["ip", "netns", "exec", Ns(ns), .. argv]);
        _spawned.Add(p);
        return p;
    }

    /// <summary>Stops FastOverlay on a node with SIGTERM and returns its whole log (the final counters are at the end).</summary>
    public string StopNode(int node)
    {
        var r = Script(TimeSpan.FromSeconds(30), "stop", node.ToString(CultureInfo.InvariantCulture));
        Assert.True(r.Ok, r.ToString());
        return NodeLog(node);
    }

    public void WriteLine(string text) => _output?.WriteLine(text);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var p in _spawned) p.Dispose();
        for (var node = 1; node <= 2; node++)
        {
            // Stopped first, so the log shows its final counters: the first thing to read when a test failed.
            if (FastOverlayRunning(node)) Script(TimeSpan.FromSeconds(30), "stop", node.ToString(CultureInfo.InvariantCulture));
            var log = NodeLog(node);
            if (log.Length > 0) WriteLine($"--- node{node} fastoverlay log ---\n{Tail(log, 6000)}");
        }
        var down = Script(TimeSpan.FromSeconds(60), "down");
        if (!down.Ok) WriteLine($"lab.sh down failed: {down}");
        // Belt and braces: nothing of this prefix may survive the test, even if lab.sh itself broke.
        foreach (var ns in LabNamespaces(Prefix))
        {
            foreach (var pid in Cmd.Run(["ip", "netns", "pids", ns], TimeSpan.FromSeconds(10)).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                Cmd.Signal(int.Parse(pid, CultureInfo.InvariantCulture), "KILL");
            Cmd.Run(["ip", "netns", "del", ns], TimeSpan.FromSeconds(10));
        }
        if (Directory.Exists(StateDir)) Directory.Delete(StateDir, recursive: true);
    }

    public static List<string> LabNamespaces(string prefix) =>
        Cmd.Run(["ip", "netns", "list"], TimeSpan.FromSeconds(10)).Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ')[0])
            .Where(n => n.StartsWith(prefix + "-", StringComparison.Ordinal))
            .ToList();

    private static string Tail(string text, int chars) => text.Length <= chars ? text : "..." + text[^chars..];
}
