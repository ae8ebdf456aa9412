using System.Diagnostics;
using FastOverlay.Ports.Native;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// A network namespace a test owns, named fo-&lt;pid&gt;-&lt;random&gt;-&lt;tag&gt; so parallel runs and other
/// engineers' labs never collide, deleted on dispose (which also destroys every interface created inside).
/// Sockets are opened inside it with <see cref="Enter{T}"/>: setns(2) moves only the calling thread, and a socket
/// stays in the namespace it was created in.
/// </summary>
internal sealed class TestNamespace : IDisposable
{
    private static readonly string RunId = $"fo-{Environment.ProcessId}-{Random.Shared.Next(0x1000, 0xFFFF):x4}";
    private static int s_sequence;

    public TestNamespace(string tag)
    {
        Name = $"{RunId}-{Interlocked.Increment(ref s_sequence)}{tag}";
        Shell.Run("ip", $"netns add {Name}");
        try
        {
            Ip("link set lo up");
            // No IPv6 chatter (router solicitations, DAD) on the test links.
            Exec("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Name { get; }

    /// <summary>Why namespace tests cannot run here, or null when they can.</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux()) return "network namespaces need Linux";
        if (Environment.UserName != "root" && !IsRootUid()) return "network namespace tests need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)";
        if (!Shell.Exists("ip")) return "iproute2 is not installed (apt-get install iproute2)";
        return null;
    }

    private static bool IsRootUid()
    {
        try
        {
            return File.ReadLines("/proc/self/status").Any(l => l.StartsWith("Uid:", StringComparison.Ordinal) && l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "0");
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Runs `ip -n NAME args` and returns stdout.</summary>
    public string Ip(string args) => Shell.Run("ip", $"-n {Name} {args}");

    /// <summary>Runs a command inside the namespace through `ip netns exec` (which also remounts /sys for it).</summary>
    public string Exec(string command) => Shell.Run("ip", $"netns exec {Name} {command}");

    /// <summary>Like <see cref="Exec"/>, for commands expected to fail (a ping nobody answers); returns the exit code.</summary>
    public int ExecStatus(string command) => Shell.Execute("ip", $"netns exec {Name} {command}").Code;

    /// <summary>A veth pair with both ends in this namespace, up, with IPv6 off.</summary>
    public void AddVeth(string a, string b, int mtu = 1500)
    {
        Ip($"link add {a} mtu {mtu} type veth peer name {b} mtu {mtu}");
        Ip($"link set {a} up");
        Ip($"link set {b} up");
    }

    /// <summary>Runs <paramref name="action"/> on this thread inside the namespace, then moves the thread back.</summary>
    public unsafe T Enter<T>(Func<T> action)
    {
        using var original = File.OpenHandle("/proc/thread-self/ns/net");
        using var target = File.OpenHandle($"/var/run/netns/{Name}");
        if (LibC.SetNs((int)target.DangerousGetHandle(), Linux.CloneNewNet) != 0) throw Errno.Error("setns", Name);
        try
        {
            return action();
        }
        finally
        {
            if (LibC.SetNs((int)original.DangerousGetHandle(), Linux.CloneNewNet) != 0)
                Environment.FailFast($"could not move the test thread back out of {Name}: errno {Errno.Last}");
        }
    }

    public void Dispose() => Shell.TryRun("ip", $"netns del {Name}");

    /// <summary>Names of namespaces this test run left behind (for the teardown assertion).</summary>
    public static IReadOnlyList<string> Leftovers() =>
        [.. Shell.TryRun("ip", "netns list").Split('\n').Select(l => l.Split(' ')[0]).Where(n => n.StartsWith(RunId, StringComparison.Ordinal))];
}

internal static class Shell
{
    public static bool Exists(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':').Append("/usr/sbin").Append("/sbin")
            .Any(d => File.Exists(Path.Combine(d, tool)));

    public static string Run(string file, string args)
    {
        var (code, stdout, stderr) = Execute(file, args);
        if (code != 0) throw new InvalidOperationException($"`{file} {args}` failed with exit code {code}: {stderr.Trim()}");
        return stdout;
    }

    public static string TryRun(string file, string args)
    {
        try
        {
            return Execute(file, args).Stdout;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "";
        }
    }

    public static (int Code, string Stdout, string Stderr) Execute(string file, string args, int timeoutMs = 30_000)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeoutMs))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{file} {args}` did not finish in {timeoutMs} ms");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
