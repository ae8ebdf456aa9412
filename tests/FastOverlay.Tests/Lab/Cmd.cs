using System.Diagnostics;
using System.Text;

namespace FastOverlay.Tests.Lab;

internal readonly record struct CmdResult(int ExitCode, string Stdout, string Stderr, string CommandLine)
{
    public bool Ok => ExitCode == 0;
    public string Output => Stdout + Stderr;
    public override string ToString() => $"`{CommandLine}` exited {ExitCode}\n{Stdout}{Stderr}";
}

/// <summary>Runs a command with a deadline; a command past its deadline is killed (with its children) and fails.</summary>
internal static class Cmd
{
    public static CmdResult Run(IReadOnlyList<string> argv, TimeSpan timeout, IReadOnlyDictionary<string, string>? env = null)
    {
        using var p = Start(argv, env);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return new CmdResult(124, stdout.Result, stderr.Result + $"\n(killed after {timeout.TotalSeconds:F0} s)", Join(argv));
        }
        p.WaitForExit();
        return new CmdResult(p.ExitCode, stdout.Result, stderr.Result, Join(argv));
    }

    public static CmdResult Run(params string[] argv) => Run(argv, TimeSpan.FromSeconds(60));

    public static Process Start(IReadOnlyList<string> argv, IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(argv[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {argv[0]}");
        p.StandardInput.Close();
        return p;
    }

    /// <summary>A background process whose output is collected as it comes.</summary>
    public static BackgroundProcess Spawn(IReadOnlyList<string> argv) => new(Start(argv), Join(argv));

    public static bool Signal(int pid, string signal) => Run(["kill", "-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(5)).Ok;

    private static string Join(IEnumerable<string> argv) => string.Join(' ', argv.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a));
}

internal sealed class BackgroundProcess : IDisposable
{
    private readonly StringBuilder _output = new();
    private readonly Lock _lock = new();

    public BackgroundProcess(Process process, string commandLine)
    {
        Process = process;
        CommandLine = commandLine;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Process Process { get; }
    public string CommandLine { get; }

    public string Output
    {
        get { lock (_lock) return _output.ToString(); }
    }

    public bool WaitForOutput(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Output.Contains(text, StringComparison.Ordinal)) return true;
            if (Process.HasExited) return Output.Contains(text, StringComparison.Ordinal);
            Thread.Sleep(50);
        }
        return false;
    }

    /// <summary>SIGINT (a capture closes its file, a forwarder prints its counters), then SIGKILL after the grace time.</summary>
    public bool Interrupt(TimeSpan grace)
    {
        if (Process.HasExited) return true;
        Cmd.Signal(Process.Id, "INT");
        if (Process.WaitForExit(grace)) { Process.WaitForExit(); return true; }
        Process.Kill(entireProcessTree: true);
        Process.WaitForExit();
        return false;
    }

    public void Dispose()
    {
        try
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        Process.Dispose();
    }

    private void Append(string? line)
    {
        if (line == null) return;
        lock (_lock) _output.AppendLine(line);
    }
}
