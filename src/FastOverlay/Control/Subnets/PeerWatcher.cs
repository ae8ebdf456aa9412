using System.Diagnostics;
using Grpc.Core;

namespace FastOverlay.Control.Subnets;

/// <summary>
/// Follows <c>&lt;prefix&gt;/subnets/</c> the way flannel's registry.go watchSubnets does: list at a revision, watch from
/// revision + 1, apply each batch to a cache of every lease and hand the rebuilt peer set on. A compacted or broken
/// watch is dropped, the prefix re-listed and diffed against the cache (so a delete missed in the gap still removes
/// the peer) and watched again from the new revision, never from the compaction revision (flannel #2470). While
/// the store is unreachable the last peer set stays in force; reconnects back off from 100 ms to 5 s (flannel
/// PR #2172, after the 100 % CPU spin of #1830/#2171) and the state is logged once per change.
/// Returns when our own key disappears or stops holding our value (see <see cref="SubnetMembership"/>).
/// </summary>
public sealed class PeerWatcher(ISubnetStore store, PeerSetBuilder peers, AcquiredLease own, TextWriter log)
{
    public static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    private readonly Dictionary<string, byte[]> _leases = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _dirty = new(0, 1);
    private volatile int _connection; // 0 unknown, 1 connected, 2 disconnected: read by metrics and status

    /// <summary>Whether the last list or watch reached etcd (null before the first attempt). Any thread.</summary>
    public bool? Reaches => _connection switch { 1 => true, 2 => false, _ => null };

    private bool? _connected;

    /// <summary>Re-lists after a broken or compacted watch: how many times (tests).</summary>
    public int Resyncs { get; private set; }

    /// <summary>The current value of our own key as far as the watch knows (renewals re-put the same value).</summary>
    public AcquiredLease Own { get; set; } = own;

    /// <summary>Runs until <paramref name="cancel"/> or until our own lease is lost (then returns false).</summary>
    public async Task<bool> RunAsync(Action<IReadOnlyList<Tables.Peer>> publish, CancellationToken cancel)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var publisher = Task.Run(() => PublishLoopAsync(publish, stop.Token), CancellationToken.None);
        try
        {
            return await WatchLoopAsync(cancel).ConfigureAwait(false);
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

    /// <summary>
    /// Rebuilds run apart from the watch and take whatever changed meanwhile: a storm of 10,000 puts arriving as
    /// 10,000 watch responses costs a few rebuilds, not 10,000, and the last change is never more than one
    /// rebuild late.
    /// </summary>
    private async Task PublishLoopAsync(Action<IReadOnlyList<Tables.Peer>> publish, CancellationToken cancel)
    {
        while (true)
        {
            await _dirty.WaitAsync(cancel).ConfigureAwait(false);
            var started = Stopwatch.GetTimestamp();
            Dictionary<string, byte[]> snapshot;
            lock (_leases) snapshot = new Dictionary<string, byte[]>(_leases, StringComparer.Ordinal);
            publish(peers.Build(snapshot));
            // Rest twice as long as the rebuild took: rebuilds use at most a third of a core. One of 10,000 peers
            // takes ~30 ms, and back to back through a storm they took the core the forwarder needed
            // (EtcdScaleBenchmark: 19.7 -> 6.7 Mpps). An idle node applies a change at once; with 1,000 peers the
            // rest is a few milliseconds.
            var rest = Stopwatch.GetElapsedTime(started) * 2;
            if (rest > TimeSpan.FromMilliseconds(1)) await Task.Delay(rest, cancel).ConfigureAwait(false);
        }
    }

    private void MarkDirty()
    {
        lock (_leases)
        {
            if (_dirty.CurrentCount == 0) _dirty.Release();
        }
    }

    private async Task<bool> WatchLoopAsync(CancellationToken cancel)
    {
        var backoff = MinBackoff;
        var compactions = 0;
        var first = true;
        while (!cancel.IsCancellationRequested)
        {
            try
            {
                var listing = await store.ListLeasesAsync(cancel).ConfigureAwait(false);
                lock (_leases)
                {
                    _leases.Clear();
                    foreach (var lease in listing.Leases) _leases[lease.Key] = lease.Value;
                }
                if (!first) Resyncs++;
                first = false;
                if (!OwnHeld()) return false;
                MarkDirty();
                Connected($"etcd: listed {listing.Leases.Count} leases at revision {listing.Revision}; watching from {listing.Revision + 1}");
                await foreach (var batch in store.WatchLeasesAsync(listing.Revision + 1, cancel).ConfigureAwait(false))
                {
                    // Only a watch that delivers resets the backoff: a member that lists but breaks every watch at
                    // once must not be hit ten times a second.
                    backoff = MinBackoff;
                    compactions = 0;
                    lock (_leases)
                    {
                        foreach (var e in batch)
                        {
                            if (e.Kind == LeaseEventKind.Put) _leases[e.Key] = e.Value;
                            else _leases.Remove(e.Key);
                        }
                    }
                    if (!OwnHeld()) return false;
                    MarkDirty();
                }
                throw new StoreUnavailableException("the watch stream ended");
            }
            catch (StoreCompactedException e)
            {
                // Not an outage: re-list at once (the compacted revision is never reused), unless it keeps
                // happening, which then backs off like an outage.
                log.WriteLine($"etcd: watch compacted (compact revision {e.CompactRevision}); re-listing");
                if (++compactions > 1)
                {
                    await Task.Delay(backoff, cancel).ConfigureAwait(false);
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
                }
            }
            catch (Exception e) when (e is StoreUnavailableException or RpcException && !cancel.IsCancellationRequested)
            {
                Disconnected($"etcd: unreachable ({e.Message}); forwarding continues with the last {_leases.Count} leases; reconnecting with backoff up to {MaxBackoff.TotalSeconds:0} s");
                await Task.Delay(backoff, cancel).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
        return true;
    }

    private bool OwnHeld()
    {
        byte[]? value;
        lock (_leases) _leases.TryGetValue(Own.Key, out value);
        if (value is not null && value.AsSpan().SequenceEqual(Own.Value)) return true;
        log.WriteLine(value is not null
            ? $"subnet: our lease {Own.Subnet} was overwritten by someone else"
            : $"subnet: our lease {Own.Subnet} was deleted (by an operator, or it expired)");
        return false;
    }

    private void Connected(string line)
    {
        _connection = 1;
        if (_connected == true) return;
        _connected = true;
        log.WriteLine(line);
    }

    private void Disconnected(string line)
    {
        _connection = 2;
        if (_connected == false) return;
        _connected = false;
        log.WriteLine(line);
    }
}
