using System.Diagnostics;

namespace FastOverlay.Cli.Cni;

/// <summary>Runs a helper (ip, nsenter, the IPAM plugin) with a deadline: a runtime waits on us, so nothing may hang.</summary>
internal static class Exec
{
    public sealed record Result(int Code, string Stdout, string Stderr)
    {
        public bool Ok => Code == 0;
    }

    public static Result Run(string file, IEnumerable<string> args, string? stdin = null, IReadOnlyDictionary<string, string?>? env = null, int timeoutMs = 10_000)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        if (env is not null)
        {
            foreach (var (k, v) in env) start.Environment[k] = v;
        }
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new CniError(CniError.SetupFailed, $"cannot run {file}: {e.Message}");
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            try
            {
                process.StandardInput.Write(stdin ?? "");
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // It exited without reading its input; its exit code says why.
            }
            if (!process.WaitForExit(timeoutMs))
            {
                process.Kill(entireProcessTree: true);
                throw new CniError(CniError.SetupFailed, $"{file} {string.Join(' ', args)} did not finish within {timeoutMs / 1000} s");
            }
            return new Result(process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
        }
    }

    /// <summary>ip commands in one process (ip -batch), inside <paramref name="netns"/> when given (through nsenter).</summary>
    public static void Ip(string? netns, params string[] commands)
    {
        var r = netns is null
            ? Run("ip", ["-batch", "-"], string.Join('\n', commands) + "\n")
            : Run("nsenter", [$"--net={netns}", "ip", "-batch", "-"], string.Join('\n', commands) + "\n");
        if (!r.Ok) throw new CniError(CniError.SetupFailed, $"ip failed{(netns is null ? "" : $" in {netns}")}: {r.Stderr.Trim()}", string.Join("; ", commands));
    }
}
