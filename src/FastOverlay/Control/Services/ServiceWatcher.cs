using FastOverlay.Config;
using FastOverlay.Control.Subnets;
using Grpc.Core;

namespace FastOverlay.Control.Services;

/// <summary>
/// Follows the services prefix as <see cref="PeerWatcher"/> follows the leases: list at a revision, watch from
/// revision + 1, keep every key, and hand the whole reconciled set (<see cref="ServiceSetBuilder"/>) on after each
/// change. Changes are batched: the set is rebuilt <see cref="DefaultDebounce"/> after the first change of a burst
/// (kube-proxy's minSyncPeriod idea: a rollout that touches fifty Services is one rebuild, not fifty), and handed on
/// only when it differs from the last one handed on. A compacted or broken watch is dropped and the prefix
/// re-listed (so a delete missed in the gap still removes the Service); while the store is unreachable the last
/// set stays in force, reconnects back off from 100 ms to 5 s, and the state is logged once per change.
/// </summary>
public sealed class ServiceWatcher
{
    public static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan DefaultDebounce = TimeSpan.FromMilliseconds(100);

    private readonly IServiceStore _store;
    private readonly ServiceSetBuilder _builder;
    private readonly TextWriter _log;
    private readonly TimeSpan _debounce;
    private readonly Dictionary<string, StoredService> _services = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _dirty = new(0, 1);
    private volatile bool _listed;
    private volatile int _connection; // 0 unknown, 1 connected, 2 disconnected
    private bool? _connected;
    private IReadOnlyList<ServiceConfig>? _published;
    private int _resyncs;
    private int _publishes;

    public ServiceWatcher(IServiceStore store, ServiceConfigValidator rules, TextWriter log, TimeSpan? debounce = null)
    {
        _store = store;
        _log = log;
        _builder = new ServiceSetBuilder(rules, log, store.KeyPrefix);
        _debounce = debounce ?? DefaultDebounce;
    }

    /// <summary>The per-node rules; setting them (a reloaded file's ServiceOptions) re-checks every Service.</summary>
    public ServiceConfigValidator Rules
    {
        get => _builder.Rules;
        set
        {
            _builder.Rules = value;
            MarkDirty();
        }
    }

    /// <summary>Values skipped so far (bad JSON, a broken rule, a key that does not match, a conflict), each counted once.</summary>
    public int Rejected => _builder.Rejected;

    /// <summary>The keys skipped now, with why.</summary>
    public IReadOnlyDictionary<string, string> Skipped => _builder.Skipped;

    /// <summary>Whether the last list or watch reached the store (null before the first attempt). Any thread.</summary>
    public bool? Reaches => _connection switch { 1 => true, 2 => false, _ => null };

    /// <summary>Re-lists after a broken or compacted watch.</summary>
    public int Resyncs => Volatile.Read(ref _resyncs);

    /// <summary>Sets handed on (and accepted) so far.</summary>
    public int Publishes => Volatile.Read(ref _publishes);

    /// <summary>The last set handed on and accepted; null before the first. Any thread.</summary>
    public IReadOnlyList<ServiceConfig>? Current => Volatile.Read(ref _published);

    /// <summary>
    /// Runs until <paramref name="cancel"/>. <paramref name="publish"/> gets every new set on one thread at a time;
    /// when it throws, the set is logged as refused, the previous one stays <see cref="Current"/>, and the next change
    /// tries again.
    /// </summary>
    public async Task RunAsync(Action<IReadOnlyList<ServiceConfig>> publish, CancellationToken cancel)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var publisher = Task.Run(() => PublishLoopAsync(publish, stop.Token), CancellationToken.None);
        try
        {
            await WatchLoopAsync(cancel).ConfigureAwait(false);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await publisher.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private async Task PublishLoopAsync(Action<IReadOnlyList<ServiceConfig>> publish, CancellationToken cancel)
    {
        while (true)
        {
            await _dirty.WaitAsync(cancel).ConfigureAwait(false);
            if (_debounce > TimeSpan.Zero) await Task.Delay(_debounce, cancel).ConfigureAwait(false);
            // Nothing is handed on before the first listing: an empty set then would remove every Service.
            if (!_listed) continue;
            StoredService[] snapshot;
            lock (_services) snapshot = [.. _services.Values];
            var set = _builder.Build(snapshot);
            if (_published is { } last && Same(last, set)) continue;
            try
            {
                publish(set);
                Volatile.Write(ref _published, set);
                Interlocked.Increment(ref _publishes);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Whatever the consumer throws, the watcher lives on: it is the node's only way to hear of a fix.
                _log.WriteLine($"services: the node refused the set of {set.Count} Services ({e.Message}); the previous set stays");
            }
        }
    }

    /// <summary>Unchanged Services are the same objects (<see cref="ServiceSetBuilder"/> parses only what changed).</summary>
    private static bool Same(IReadOnlyList<ServiceConfig> a, IReadOnlyList<ServiceConfig> b)
    {
        if (a.Count != b.Count) return false;
        for (var i = 0; i < a.Count; i++)
        {
            if (!ReferenceEquals(a[i], b[i])) return false;
        }
        return true;
    }

    private void MarkDirty()
    {
        lock (_services)
        {
            if (_dirty.CurrentCount == 0) _dirty.Release();
        }
    }

    private async Task WatchLoopAsync(CancellationToken cancel)
    {
        var backoff = MinBackoff;
        var compactions = 0;
        var first = true;
        while (!cancel.IsCancellationRequested)
        {
            try
            {
                var listing = await _store.ListAsync(cancel).ConfigureAwait(false);
                lock (_services)
                {
                    _services.Clear();
                    foreach (var s in listing.Services) _services[s.Key] = s;
                }
                if (!first) Interlocked.Increment(ref _resyncs);
                first = false;
                _listed = true;
                MarkDirty();
                Connected($"services: listed {listing.Services.Count} keys under {_store.KeyPrefix} at revision {listing.Revision}; watching from {listing.Revision + 1}");
                await foreach (var batch in _store.WatchAsync(listing.Revision + 1, cancel).ConfigureAwait(false))
                {
                    // Only a watch that delivers resets the backoff (a member that lists but breaks every watch
                    // must not be hit ten times a second).
                    backoff = MinBackoff;
                    compactions = 0;
                    lock (_services)
                    {
                        foreach (var e in batch)
                        {
                            if (e.Kind == ServiceEventKind.Put) _services[e.Service.Key] = e.Service;
                            else _services.Remove(e.Service.Key);
                        }
                    }
                    MarkDirty();
                }
                throw new StoreUnavailableException("the watch stream ended");
            }
            catch (StoreCompactedException e)
            {
                _log.WriteLine($"services: watch compacted (compact revision {e.CompactRevision}); re-listing");
                if (++compactions > 1)
                {
                    await Task.Delay(backoff, cancel).ConfigureAwait(false);
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
                }
            }
            catch (Exception e) when (e is StoreUnavailableException or RpcException && !cancel.IsCancellationRequested)
            {
                Disconnected($"services: store unreachable ({e.Message}); the last {Current?.Count ?? 0} Services stay in force; reconnecting with backoff up to {MaxBackoff.TotalSeconds:0} s");
                await Task.Delay(backoff, cancel).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }

    private void Connected(string line)
    {
        _connection = 1;
        if (_connected == true) return;
        _connected = true;
        _log.WriteLine(line);
    }

    private void Disconnected(string line)
    {
        _connection = 2;
        if (_connected == false) return;
        _connected = false;
        _log.WriteLine(line);
    }
}
