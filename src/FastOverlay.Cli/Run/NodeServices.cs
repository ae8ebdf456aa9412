using FastOverlay.Cli.Api;
using FastOverlay.Cli.Metrics;

namespace FastOverlay.Cli.Run;

/// <summary>What a running node serves besides forwarding: the node API on its socket and the metrics endpoint.</summary>
internal sealed class NodeServices : IDisposable
{
    private readonly NodeApiHost _api;
    private readonly MetricsHost? _metrics;

    private NodeServices(NodeApiHost api, MetricsHost? metrics)
    {
        _api = api;
        _metrics = metrics;
    }

    /// <summary>Starts both, or neither: throws <see cref="IOException"/> naming what could not listen.</summary>
    public static NodeServices Start(ApiSettings settings, NodeApi api, TextWriter log)
    {
        var host = NodeApiHost.Start(settings.Socket, api);
        try
        {
            var metrics = MetricsHost.Start(settings.MetricsAddress, new NodeMetrics(api).Registry);
            log.WriteLine($"api: {host.SocketPath}; metrics: {(metrics is null ? "off" : $"http://{settings.MetricsAddress}/metrics")}");
            return new NodeServices(host, metrics);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _metrics?.Dispose();
        _api.Dispose();
    }
}
