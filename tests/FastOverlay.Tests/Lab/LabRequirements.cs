using FastOverlay.Cli;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// What a namespace lab test needs. Anything missing skips the test with the reason and the Debian package to
/// install; nothing passes silently.
/// </summary>
internal static class LabRequirements
{
    private static readonly Dictionary<string, string> Packages = new()
    {
        ["ip"] = "iproute2", ["bridge"] = "iproute2", ["ss"] = "iproute2", ["ethtool"] = "ethtool",
        ["ping"] = "iputils-ping", ["iperf3"] = "iperf3", ["tshark"] = "tshark", ["python3"] = "python3",
        ["trafgen"] = "netsniff-ng", ["bash"] = "bash", ["setpriv"] = "util-linux", ["nsenter"] = "util-linux",
        ["nft"] = "nftables",
    };

    private static readonly Lazy<string?> NetnsProblem = new(ProbeNetns);

    public static string RepoRoot { get; } = FindRepoRoot();
    public static string LabScript => Path.Combine(RepoRoot, "perf", "lab", "lab.sh");
    public static string ScriptsDir => Path.Combine(RepoRoot, "tests", "FastOverlay.Tests", "Lab", "Scripts");

    /// <summary>fastoverlay.dll sits next to the tests (the test project references the CLI); FASTOVERLAY_DLL picks another build.</summary>
    public static string FastOverlayDll =>
        Environment.GetEnvironmentVariable("FASTOVERLAY_DLL") is { Length: > 0 } dll ? dll : Path.Combine(AppContext.BaseDirectory, "fastoverlay.dll");

    public static void Require(params string[] tools)
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the namespace lab runs on Linux only");
        Skip.IfNot(Environment.IsPrivilegedProcess, "the namespace lab needs root (ip netns, veth pairs); run the tests as root, as .ci/run does in CI");
        foreach (var tool in new[] { "bash", "ip", "ethtool" }.Concat(tools))
            Skip.IfNot(ToolExists(tool), $"{tool} is not installed (apt-get install {Packages.GetValueOrDefault(tool, tool)}); .ci/run installs it");
        Skip.IfNot(File.Exists(LabScript), $"{LabScript} not found");
        Skip.If(NetnsProblem.Value != null, $"cannot create network namespaces here: {NetnsProblem.Value}");
    }

    /// <summary>The FastOverlay lab tests need `fastoverlay run` (the AF_PACKET/UDP ports and the JSON config).</summary>
    public static void RequireFastOverlayRun()
    {
        Skip.IfNot(HasRunCommand(), "`fastoverlay run --config` does not exist in this build yet (issue 4 part 1: raw-socket ports and the config); the kernel-mode lab tests cover the lab meanwhile");
        Skip.IfNot(File.Exists(FastOverlayDll), $"{FastOverlayDll} not found next to the tests");
    }

    public static bool HasRunCommand() =>
        Program.BuildCommand(TextWriter.Null).Subcommands.Any(c => c.Name == "run");

    public static bool ToolExists(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Concat(["/usr/sbin", "/sbin", "/usr/bin"])
            .Any(d => d.Length > 0 && File.Exists(Path.Combine(d, tool)));

    private static string? ProbeNetns()
    {
        var name = $"fp{Random.Shared.Next(0x1000000):x6}-probe";
        var add = Cmd.Run(["ip", "netns", "add", name], TimeSpan.FromSeconds(20));
        if (!add.Ok) return add.Output.Trim();
        Cmd.Run(["ip", "netns", "del", name], TimeSpan.FromSeconds(20));
        return null;
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "FastOverlay.sln"))) return dir.FullName;
        return Directory.GetCurrentDirectory();
    }
}
