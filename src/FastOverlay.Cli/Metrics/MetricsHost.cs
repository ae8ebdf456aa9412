using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace FastOverlay.Cli.Metrics;

/// <summary>
/// GET /metrics in Prometheus' text format on --metrics-address (default 127.0.0.1:9464, the port OpenTelemetry's
/// Prometheus exporter uses). A Kestrel of its own, never the API's: the API must not be reachable over TCP.
/// </summary>
internal sealed class MetricsHost : IDisposable
{
    public const string DefaultAddress = "127.0.0.1:9464";
    private readonly WebApplication _app;

    private MetricsHost(WebApplication app) => _app = app;

    /// <summary>"none" (or empty) turns metrics off; otherwise HOST:PORT. Throws <see cref="IOException"/> if it cannot listen.</summary>
    public static MetricsHost? Start(string address, CollectorRegistry registry)
    {
        if (address is "" or "none") return null;
        if (!IPEndPoint.TryParse(address, out var endpoint) || endpoint.Port == 0)
            throw new IOException($"--metrics-address '{address}': expected IP:PORT (e.g. {DefaultAddress}, 0.0.0.0:9464) or none");
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IHostLifetime, Api.NodeApiHost.NoSignalLifetime>();
        builder.WebHost.ConfigureKestrel(k => k.Listen(endpoint));
        var app = builder.Build();
        app.MapGet("/metrics", async (HttpContext context) =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await registry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
        });
        try
        {
            app.StartAsync().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidOperationException)
        {
            ((IDisposable)app).Dispose();
            throw new IOException($"cannot serve metrics on {address}: {e.Message}", e);
        }
        return new MetricsHost(app);
    }

    public void Dispose()
    {
        _app.StopAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
        ((IDisposable)_app).Dispose();
    }
}
