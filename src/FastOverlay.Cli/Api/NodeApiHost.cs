using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FastOverlay.Cli.Api;

/// <summary>
/// Kestrel on a Unix socket, serving <see cref="NodeApiRoutes"/>. The socket is the API's only access control:
/// mode 0600, owned by root (the daemon's user), in a directory created 0700, as the kubelet's and containerd's
/// sockets are. A socket file left by a crashed daemon is replaced; one a live daemon answers on is not.
/// </summary>
internal sealed class NodeApiHost : IDisposable
{
    public const string DefaultSocket = "/run/fastoverlay/fastoverlay.sock";
    private readonly WebApplication _app;

    private NodeApiHost(WebApplication app, string path)
    {
        _app = app;
        SocketPath = path;
    }

    public string SocketPath { get; }

    /// <summary>Binds and starts serving. Throws <see cref="IOException"/> when the socket cannot be had.</summary>
    public static NodeApiHost Start(string socketPath, NodeApi api)
    {
        var path = Path.GetFullPath(socketPath);
        Prepare(path);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        // The runners own SIGINT/SIGTERM (drain, then exit); the host must not stop itself on them.
        builder.Services.AddSingleton<IHostLifetime, NoSignalLifetime>();
        builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(path));
        var app = builder.Build();
        NodeApiRoutes.Map(app, api);
        try
        {
            app.StartAsync().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidOperationException)
        {
            throw new IOException($"cannot serve the node API on {path}: {e.Message}", e);
        }
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return new NodeApiHost(app, path);
    }

    private static void Prepare(string path)
    {
        var dir = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir) && !OperatingSystem.IsWindows()) Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (!File.Exists(path)) return;
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException)
        {
            File.Delete(path); // nobody listens: a crashed daemon's leftover
            return;
        }
        throw new IOException($"{path}: another fastoverlay is serving on it (stop it, or give this one --api-socket PATH)");
    }

    public void Dispose()
    {
        _app.StopAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
        ((IDisposable)_app).Dispose();
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
            // Already gone (Kestrel removes it on unbind).
        }
    }

    internal sealed class NoSignalLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
