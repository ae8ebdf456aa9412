using System.Diagnostics;
using FastOverlay.Config;
using FastOverlay.Fuzz;
using FastOverlay.Fuzz.Targets;
using FastOverlay.Pipeline;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Fuzz;

/// <summary>
/// The fuzz smoke test CI runs: every seed in fuzz/corpus/ goes once through its target's harness, the same
/// code afl-fuzz drives (real pipeline, guard bytes, oracle, counters, canary traffic), without AFL. Plus
/// proof that the harness's checks can fail at all.
/// </summary>
public class CorpusReplayTests
{
    private static readonly Dictionary<string, IFuzzTarget> s_targets = [];

    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "FastOverlay.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("FastOverlay.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static TheoryData<string, string> Seeds()
    {
        var data = new TheoryData<string, string>();
        foreach (var target in FuzzTargets.Names)
        {
            foreach (var file in Directory.GetFiles(Path.Combine(RepoRoot, "fuzz", "corpus", target)).Order(StringComparer.Ordinal))
                data.Add(target, Path.GetFileName(file));
        }
        return data;
    }

    private static IFuzzTarget Target(string name)
    {
        lock (s_targets)
        {
            if (!s_targets.TryGetValue(name, out var target)) s_targets[name] = target = FuzzTargets.Create(name);
            return target;
        }
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Seed_passes_every_check_of_its_target(string target, string file)
    {
        var bytes = File.ReadAllBytes(Path.Combine(RepoRoot, "fuzz", "corpus", target, file));
        lock (s_targets) Target(target).Run(bytes);
    }

    [Fact]
    public void Every_target_has_a_seed_corpus_of_real_frames()
    {
        foreach (var target in FuzzTargets.Names.Where(t => t != "config"))
        {
            var files = Directory.GetFiles(Path.Combine(RepoRoot, "fuzz", "corpus", target));
            Assert.True(files.Length >= 8, $"{target}: only {files.Length} seeds");
            Assert.All(files, f => Assert.InRange(new FileInfo(f).Length, 60, PacketPool.MaxFrameLength));
        }
    }

    [Theory]
    [InlineData("example.json", 1, 1)]
    [InlineData("full.json", 3, 2)]
    [InlineData("minimal.json", 0, 0)]
    [InlineData("small-network.json", 1, 2)]
    [InlineData("services.json", 1, 1)]
    public void Valid_config_seeds_load_so_the_config_target_reaches_the_node(string file, int pods, int peers)
    {
        var config = ConfigLoader.Load(File.ReadAllBytes(Path.Combine(RepoRoot, "fuzz", "corpus", "config", file)), new NoInterfacesButTheFuzzers());
        Assert.Equal(pods, config.Node.Pods.Count);
        Assert.Equal(peers, config.Peers.Count);
    }

    [Theory]
    [InlineData("flannel-net-conf-only.json", "Node")]
    [InlineData("udp-backend.json", "Backend.Type")]
    public void Invalid_config_seeds_are_refused_for_their_field(string file, string path)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(File.ReadAllBytes(Path.Combine(RepoRoot, "fuzz", "corpus", "config", file)), new NoInterfacesButTheFuzzers()));
        Assert.Equal(path, e.Path);
    }

    /// <summary>The same interfaces the config target's catalog has (eth0 and veth-pod1..4).</summary>
    private sealed class NoInterfacesButTheFuzzers : IInterfaceCatalog
    {
        public bool Exists(string name) => name is "eth0" or "veth-pod1" or "veth-pod2" or "veth-pod3" or "veth-pod4";

        public int? Mtu(string name) => Exists(name) ? 1500 : null;

        public MacAddress? Mac(string name) => null;
    }

    [Fact]
    public void Run_sh_without_arguments_lists_exactly_the_harness_targets()
    {
        var psi = new ProcessStartInfo("bash", [Path.Combine(RepoRoot, "fuzz", "run.sh")]) { RedirectStandardOutput = true };
        using var process = Process.Start(psi)!;
        var lines = process.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
        Assert.Equal(FuzzTargets.Names, lines);
    }

    [Fact]
    public void Empty_and_garbage_inputs_pass_every_target()
    {
        var random = new Random(5);
        foreach (var name in FuzzTargets.Names)
        {
            var target = FuzzTargets.Create(name);
            target.Run([]);
            for (var length = 1; length < 130; length += 7)
            {
                var bytes = new byte[length];
                random.NextBytes(bytes);
                target.Run(bytes);
            }
            target.Run(new byte[PacketPool.MaxFrameLength + 500]);
        }
    }

    // The checks must be able to fail, or a clean fuzz run means nothing.

    [Fact]
    public void Guard_check_catches_a_write_into_a_buffers_headroom()
    {
        var node = new FuzzNode();
        node.CheckGuards();
        var h = node.Pool.Allocate();
        Assert.True(node.Pool.Prepend(h, PacketPool.Headroom));
        node.Pool.Frame(h)[FuzzNode.GuardLength - 1] ^= 0xFF;
        Assert.Throws<InvariantViolation>(node.CheckGuards);
    }

    [Fact]
    public void Quiescence_check_catches_a_leaked_buffer()
    {
        var node = new FuzzNode();
        node.CheckQuiescent();
        node.Pool.Allocate();
        Assert.Contains("leaked", Assert.Throws<InvariantViolation>(node.CheckQuiescent).Message);
    }

    [Fact]
    public void Underlay_output_check_rejects_vxlan_the_peer_would_not_accept()
    {
        var inner = Canary.Udp(FuzzNode.Options.VtepMac.Value, FuzzNode.Peers[0].VtepMac.Value, FuzzNode.PodIp(0), FuzzNode.Ip("10.244.2.9"));
        var good = Canary.Vxlan(FuzzNode.Options.PublicIp.Value, FuzzNode.Peers[0].PublicIp.Value, 8472, 1, inner);
        good[14 + 6] = 0x40; // DF, as the node sends
        good[14 + 10] = 0;
        good[14 + 11] = 0;
        var sum = (ushort)~Oracle.OnesSum(good.AsSpan(14, 20));
        good[14 + 10] = (byte)(sum >> 8);
        good[14 + 11] = (byte)sum;
        OutputChecks.Underlay(good);
        var wrongVni = (byte[])good.Clone();
        wrongVni[14 + 20 + 8 + 6] = 2;
        Assert.Throws<InvariantViolation>(() => OutputChecks.Underlay(wrongVni));
        var noDf = (byte[])good.Clone();
        noDf[14 + 6] = 0;
        Assert.Throws<InvariantViolation>(() => OutputChecks.Underlay(noDf));
    }
}
