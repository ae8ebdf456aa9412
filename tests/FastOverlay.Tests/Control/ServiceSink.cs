using System.Diagnostics;
using FastOverlay.Config;
using FastOverlay.Control.Services;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Control;

/// <summary>A <see cref="ServiceWatcher"/> running against a store, recording every set it hands on.</summary>
internal sealed class ServiceSink : IAsyncDisposable
{
    public static readonly ServiceConfigValidator Rules = new(new ServiceOptionsConfig(), Ipv4Prefix.Parse("10.244.0.0/16"), Ipv4Address.Parse("172.31.77.1"), 8472);

    private readonly CancellationTokenSource _stop = new();
    private readonly StringWriter _logText = new();
    private readonly List<IReadOnlyList<ServiceConfig>> _sets = [];
    private readonly Task _running;

    /// <param name="refuse">Makes the consumer throw for a set, as NodeController.SetStoreServices does for one it cannot apply.</param>
    public ServiceSink(IServiceStore store, TimeSpan? debounce = null, Func<IReadOnlyList<ServiceConfig>, bool>? refuse = null)
    {
        Watcher = new ServiceWatcher(store, Rules, TextWriter.Synchronized(_logText), debounce);
        _running = Task.Run(() => Watcher.RunAsync(set =>
        {
            if (refuse?.Invoke(set) == true) throw new ConfigException("Services", "refused by the test");
            lock (_sets) _sets.Add(set);
        }, _stop.Token));
    }

    public ServiceWatcher Watcher { get; }
    public string LogText => _logText.ToString();

    public IReadOnlyList<IReadOnlyList<ServiceConfig>> Sets
    {
        get { lock (_sets) return [.. _sets]; }
    }

    /// <summary>The keys of the last set handed on (empty before any).</summary>
    public IReadOnlyList<string> Keys => Sets is [.., var last] ? [.. last.Select(s => s.Key)] : [];

    public ServiceConfig? Find(string key) => Sets is [.., var last] ? last.FirstOrDefault(s => s.Key == key) : null;

    /// <summary>Waits for the condition; returns how long it took; fails with the watcher's log when it times out.</summary>
    public async Task<TimeSpan> WaitAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout) Assert.Fail($"timed out after {timeout.TotalSeconds:0.#} s waiting for {what}; log:\n{LogText}");
            if (_running.IsFaulted) Assert.Fail($"the watcher failed: {_running.Exception}");
            await Task.Delay(5);
        }
        return clock.Elapsed;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _running;
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}

/// <summary>Service values as an operator would put them.</summary>
internal static class ServiceJson
{
    public static string ClusterIp(string name, string clusterIp, int port = 80, string ns = "default", string endpoint = "10.244.1.2") =>
        $$"""{ "Name": "{{name}}", "Namespace": "{{ns}}", "ClusterIP": "{{clusterIp}}", "Ports": [ { "Port": {{port}}, "TargetPort": 8080 } ], "Endpoints": [ { "IP": "{{endpoint}}" } ] }""";

    public static string NodePort(string name, string clusterIp, int nodePort) =>
        $$"""{ "Name": "{{name}}", "ClusterIP": "{{clusterIp}}", "Type": "NodePort", "Ports": [ { "Port": 80, "NodePort": {{nodePort}} } ] }""";
}
