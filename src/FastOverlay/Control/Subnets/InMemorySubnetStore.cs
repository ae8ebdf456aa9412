using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace FastOverlay.Control.Subnets;

/// <summary>
/// An <see cref="ISubnetStore"/> in memory with etcd's semantics: one revision counter, leases that expire, a
/// change log that can be compacted, and an outage switch. For the demo and for unit tests of the logic that
/// needs no etcd process.
/// </summary>
public sealed class InMemorySubnetStore : ISubnetStore
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Entry> _keys = new(StringComparer.Ordinal);
    private readonly List<LeaseEvent> _log = [];
    private readonly List<Channel<IReadOnlyList<LeaseEvent>>> _watchers = [];
    private readonly TimeProvider _time;
    private long _revision = 1;
    private long _compacted;
    private long _nextLease = 1;
    private bool _down;

    public InMemorySubnetStore(byte[]? config = null, TimeProvider? time = null)
    {
        Config = config;
        _time = time ?? TimeProvider.System;
    }

    public byte[]? Config { get; set; }

    /// <summary>While true every call throws <see cref="StoreUnavailableException"/> and open watches break.</summary>
    public bool Down
    {
        get { lock (_gate) return _down; }
        set
        {
            lock (_gate)
            {
                _down = value;
                if (!value) return;
                foreach (var w in _watchers) w.Writer.TryComplete(new StoreUnavailableException("store down"));
                _watchers.Clear();
            }
        }
    }

    public long Revision { get { lock (_gate) return _revision; } }

    /// <summary>Writes any key, as an operator or another flannel node would (no condition).</summary>
    public void Put(string key, byte[] value, TimeSpan? ttl = null)
    {
        lock (_gate)
        {
            Expire();
            Set(key, value, ttl is { } t ? _time.GetUtcNow() + t : null);
        }
    }

    public void Delete(string key)
    {
        lock (_gate) Remove(key);
    }

    /// <summary>Forgets the change log up to now, like <c>etcdctl compact</c>; watches from before it fail.</summary>
    public void Compact()
    {
        lock (_gate)
        {
            _compacted = _revision;
            _log.Clear();
            foreach (var w in _watchers) w.Writer.TryComplete(new StoreCompactedException(_compacted));
            _watchers.Clear();
        }
    }

    public byte[]? Get(string key)
    {
        lock (_gate)
        {
            Expire();
            return _keys.TryGetValue(key, out var e) ? e.Value : null;
        }
    }

    public Task<byte[]?> GetConfigAsync(CancellationToken cancel)
    {
        lock (_gate)
        {
            Check();
            return Task.FromResult(Config);
        }
    }

    public Task<LeaseListing> ListLeasesAsync(CancellationToken cancel)
    {
        lock (_gate)
        {
            Check();
            var leases = _keys.Select(kv => new StoredLease(kv.Key, kv.Value.Value, kv.Value.LeaseId, kv.Value.ModRevision)).ToList();
            return Task.FromResult(new LeaseListing(leases, _revision));
        }
    }

    public Task<long?> TryPutLeaseAsync(string key, byte[] value, TimeSpan ttl, LeaseCondition condition, CancellationToken cancel)
    {
        lock (_gate)
        {
            Check();
            _keys.TryGetValue(key, out var current);
            var holds = condition switch
            {
                LeaseCondition.Absent => current is null,
                LeaseCondition.AtRevision r => current?.ModRevision == r.ModRevision,
                LeaseCondition.HoldsValue v => current is not null && current.Value.AsSpan().SequenceEqual(v.Value),
                _ => false,
            };
            if (!holds) return Task.FromResult<long?>(null);
            return Task.FromResult<long?>(Set(key, value, _time.GetUtcNow() + ttl).LeaseId);
        }
    }

    public Task<bool> TryDeleteLeaseAsync(string key, long modRevision, CancellationToken cancel)
    {
        lock (_gate)
        {
            Check();
            if (!_keys.TryGetValue(key, out var current) || current.ModRevision != modRevision) return Task.FromResult(false);
            Remove(key);
            return Task.FromResult(true);
        }
    }

    public async IAsyncEnumerable<IReadOnlyList<LeaseEvent>> WatchLeasesAsync(long fromRevision, [EnumeratorCancellation] CancellationToken cancel)
    {
        var channel = Channel.CreateUnbounded<IReadOnlyList<LeaseEvent>>();
        lock (_gate)
        {
            Check();
            if (fromRevision <= _compacted) throw new StoreCompactedException(_compacted);
            var backlog = _log.Where(e => e.ModRevision >= fromRevision).ToList();
            if (backlog.Count > 0) channel.Writer.TryWrite(backlog);
            _watchers.Add(channel);
        }
        try
        {
            while (true)
            {
                IReadOnlyList<LeaseEvent> batch;
                try
                {
                    batch = await channel.Reader.ReadAsync(cancel).ConfigureAwait(false);
                }
                catch (ChannelClosedException e) when (e.InnerException is not null)
                {
                    throw e.InnerException;
                }
                yield return batch;
            }
        }
        finally
        {
            lock (_gate) _watchers.Remove(channel);
        }
    }

    /// <summary>Removes keys whose lease ran out, as etcd's lessor does. Called on every access and by tests.</summary>
    public void ExpireNow()
    {
        lock (_gate) Expire();
    }

    private void Check()
    {
        if (_down) throw new StoreUnavailableException("store down");
        Expire();
    }

    private void Expire()
    {
        var now = _time.GetUtcNow();
        foreach (var key in _keys.Where(kv => kv.Value.Expires <= now).Select(kv => kv.Key).ToList()) Remove(key);
    }

    private Entry Set(string key, byte[] value, DateTimeOffset? expires)
    {
        var entry = new Entry(value, expires is null ? 0 : _nextLease++, ++_revision, expires);
        _keys[key] = entry;
        Publish(new LeaseEvent(LeaseEventKind.Put, key, value, entry.ModRevision));
        return entry;
    }

    private void Remove(string key)
    {
        if (!_keys.Remove(key)) return;
        Publish(new LeaseEvent(LeaseEventKind.Delete, key, [], ++_revision));
    }

    private void Publish(LeaseEvent e)
    {
        _log.Add(e);
        foreach (var w in _watchers) w.Writer.TryWrite([e]);
    }

    private sealed record Entry(byte[] Value, long LeaseId, long ModRevision, DateTimeOffset? Expires);
}
