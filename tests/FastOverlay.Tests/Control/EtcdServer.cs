using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using FastOverlay.Control.Etcd;

namespace FastOverlay.Tests.Control;

/// <summary>
/// A throwaway single-member etcd (Debian's etcd-server 3.4) on free loopback ports with its own temporary data
/// directory and --unsafe-no-fsync; killed and deleted on dispose. <see cref="Missing"/> says why tests skip when
/// the binary is not installed (.ci/run installs etcd-server and etcd-client).
/// </summary>
public sealed class EtcdServer : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), $"fastoverlay-etcd-{Environment.ProcessId}-{Guid.NewGuid():N}");
    private readonly int _peerPort;
    private Process? _process;

    public EtcdServer()
    {
        if (Missing is not null) return;
        ClientPort = FreePort();
        _peerPort = FreePort();
        Start();
    }

    public static string? Missing { get; } = Which("etcd") is null ? "etcd is not installed (apt-get install etcd-server etcd-client; .ci/run does)"
        : Which("etcdctl") is null ? "etcdctl is not installed (apt-get install etcd-client)" : null;

    public int ClientPort { get; }
    public string Endpoint => $"http://127.0.0.1:{ClientPort}";

    public EtcdOptions Options(string prefix = EtcdOptions.DefaultPrefix) => new() { Endpoints = [new Uri(Endpoint)], Prefix = prefix, CallTimeout = TimeSpan.FromSeconds(2) };

    public void Start()
    {
        var args = $"--name t1 --data-dir {_dataDir} --listen-client-urls {Endpoint} --advertise-client-urls {Endpoint} " +
                   $"--listen-peer-urls http://127.0.0.1:{_peerPort} --initial-advertise-peer-urls http://127.0.0.1:{_peerPort} " +
                   $"--initial-cluster t1=http://127.0.0.1:{_peerPort} --logger zap --log-level error --unsafe-no-fsync";
        var info = new ProcessStartInfo("etcd", args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(15))
        {
            try
            {
                if (http.GetStringAsync($"{Endpoint}/health").Result.Contains("true", StringComparison.Ordinal)) return;
            }
            catch (AggregateException)
            {
            }
            if (_process.HasExited) throw new InvalidOperationException($"etcd exited with {_process.ExitCode}");
            Thread.Sleep(50);
        }
        throw new TimeoutException("etcd did not become healthy in 15 s");
    }

    /// <summary>SIGKILL, as a crash; the data directory stays for <see cref="Start"/>.</summary>
    public void Kill()
    {
        if (_process is null) return;
        _process.Kill();
        _process.WaitForExit();
        _process.Dispose();
        _process = null;
    }

    /// <summary>Runs etcdctl (v3 API) against this member; returns stdout, throws on failure.</summary>
    public string Ctl(params string[] args)
    {
        var info = new ProcessStartInfo("etcdctl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.Environment["ETCDCTL_API"] = "3";
        info.ArgumentList.Add($"--endpoints={Endpoint}");
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"etcdctl {string.Join(' ', args)}: {error}");
        return output.Result;
    }

    public void Dispose()
    {
        Kill();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}
