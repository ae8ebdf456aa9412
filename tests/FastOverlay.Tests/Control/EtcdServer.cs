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
public class EtcdServer : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), $"fastoverlay-etcd-{Environment.ProcessId}-{Guid.NewGuid():N}");
    private readonly int _peerPort;
    private Process? _process;

    public EtcdServer() : this(null)
    {
    }

    /// <summary>With <paramref name="tls"/>: etcd serves clients over TLS and asks for a client certificate.</summary>
    protected EtcdServer(EtcdTls? tls)
    {
        Tls = tls;
        if (Missing is not null) return;
        ClientPort = FreePort();
        _peerPort = FreePort();
        try
        {
            Start();
        }
        catch
        {
            // xUnit does not dispose a fixture whose constructor threw.
            Dispose();
            throw;
        }
    }

    public EtcdTls? Tls { get; }

    public static string? Missing { get; } = Which("etcd") is null ? "etcd is not installed (apt-get install etcd-server etcd-client; .ci/run does)"
        : Which("etcdctl") is null ? "etcdctl is not installed (apt-get install etcd-client)" : null;

    public int ClientPort { get; }
    public string Endpoint => $"{(Tls is null ? "http" : "https")}://127.0.0.1:{ClientPort}";

    public EtcdOptions Options(string prefix = EtcdOptions.DefaultPrefix) => new()
    {
        Endpoints = [new Uri(Endpoint)], Prefix = prefix, CallTimeout = TimeSpan.FromSeconds(2),
        CaFile = Tls?.Ca, CertFile = Tls?.ClientCert, KeyFile = Tls?.ClientKey,
    };

    public void Start()
    {
        var args = $"--name t1 --data-dir {_dataDir} --listen-client-urls {Endpoint} --advertise-client-urls {Endpoint} " +
                   $"--listen-peer-urls http://127.0.0.1:{_peerPort} --initial-advertise-peer-urls http://127.0.0.1:{_peerPort} " +
                   $"--initial-cluster t1=http://127.0.0.1:{_peerPort} --logger zap --log-level error --unsafe-no-fsync" +
                   (Tls is { } t ? $" --cert-file {t.ServerCert} --key-file {t.ServerKey} --trusted-ca-file {t.Ca} --client-cert-auth" : "");
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
                if (Tls is null ? http.GetStringAsync($"{Endpoint}/health").Result.Contains("true", StringComparison.Ordinal) : Ctl("endpoint", "health") is not null) return; // etcdctl 3.4 prints the verdict on stderr; exit 0 is healthy
            }
            catch (Exception e) when (e is AggregateException or InvalidOperationException)
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
        if (Tls is { } tls) foreach (var a in new[] { $"--cacert={tls.Ca}", $"--cert={tls.ClientCert}", $"--key={tls.ClientKey}" }) info.ArgumentList.Add(a);
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
        GC.SuppressFinalize(this);
        Kill();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
            if (Tls is not null) Directory.Delete(Tls.Dir, recursive: true);
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

/// <summary>A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in a temporary directory.</summary>
public sealed class EtcdTls
{
    private EtcdTls(string dir) => Dir = dir;

    public string Dir { get; }
    public string Ca => Path.Combine(Dir, "ca.pem");
    public string ServerCert => Path.Combine(Dir, "server.pem");
    public string ServerKey => Path.Combine(Dir, "server-key.pem");
    public string ClientCert => Path.Combine(Dir, "client.pem");
    public string ClientKey => Path.Combine(Dir, "client-key.pem");

    public static EtcdTls? TryCreate()
    {
        var dir = Directory.CreateTempSubdirectory("fastoverlay-etcd-tls-").FullName;
        var script = $"""
            set -e
            cd {dir}
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 1 -subj /CN=test-ca 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj /CN=etcd 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server.pem -days 1 -extfile server.ext 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -keyout client-key.pem -out client.csr -subj /CN=fastoverlay 2>/dev/null
            printf 'extendedKeyUsage=clientAuth\n' > client.ext
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out client.pem -days 1 -extfile client.ext 2>/dev/null
            """;
        using var p = Process.Start(new ProcessStartInfo("bash", ["-c", script]) { UseShellExecute = false, RedirectStandardError = true })!;
        p.WaitForExit();
        return p.ExitCode == 0 ? new EtcdTls(dir) : null;
    }
}

/// <summary>An etcd that speaks TLS to clients and requires a client certificate (flanneld's --etcd-cafile/-certfile/-keyfile).</summary>
public sealed class TlsEtcdServer : EtcdServer
{
    public TlsEtcdServer() : base(Missing is null && File.Exists("/usr/bin/openssl") ? EtcdTls.TryCreate() : null)
    {
    }
}
