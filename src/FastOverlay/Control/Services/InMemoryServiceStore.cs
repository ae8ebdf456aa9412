using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using FastOverlay.Control.Subnets;

namespace FastOverlay.Control.Services;

/// <summary>
/// An <see cref="IServiceStore"/> in memory with etcd's semantics: one revision counter, create and mod revisions
/// per key, a change log that can be compacted, and an outage switch. For the demo and for unit tests of
/// <see cref="ServiceWatcher"/> without an etcd process.
/// </summary>
public sealed class InMemoryServiceStore : IServiceStore
{
    private readonly object _gate = new();
    private readonly Dictionary<string, StoredService> _keys = new(StringComparer.Ordinal);
    private readonly List<ServiceEvent> _log = [];
    private readonly List<Channel<IReadOnlyList<ServiceEvent>>> _watchers = [];
    private long _revision = 1;
    private long _compacted;
    private bool _down;
    private int _lists;

    public string KeyPrefix { get; init; } = EtcdServiceStore.DefaultPrefix;

    public long Revision { get { lock (_gate) return _revision; } }

    /// <summary>How many listings were asked for, failed ones included (a resync or a backoff is visible here).</summary>
    public int Lists { get { lock (_gate) return _lists; } }

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

    /// <summary>Writes a key as an operator would (<c>etcdctl put</c>); keys are without the prefix (default/web).</summary>
    public void Put(string key, string json) => Put(key, Encoding.UTF8.GetBytes(json));

    public void Put(string key, byte[] value) => Put([(key, value)]);

    /// <summary>Several keys in one revision and one watch batch, as one etcd transaction delivers them.</summary>
    public void Put(IEnumerable<(string Key, byte[] Value)> entries)
    {
        lock (_gate)
        {
            var revision = ++_revision;
            var batch = new List<ServiceEvent>();
            foreach (var (key, value) in entries)
            {
                var created = _keys.TryGetValue(key, out var before) ? before.CreateRevision : revision;
                var stored = new StoredService(key, value, created, revision);
                _keys[key] = stored;
                batch.Add(new ServiceEvent(ServiceEventKind.Put, stored));
            }
            Publish(batch);
        }
    }

    public void Delete(string key)
    {
        lock (_gate)
        {
            if (!_keys.Remove(key)) return;
            Publish([new ServiceEvent(ServiceEventKind.Delete, new StoredService(key, [], 0, ++_revision))]);
        }
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

    public Task<ServiceListing> ListAsync(CancellationToken cancel)
    {
        lock (_gate)
        {
            _lists++;
            if (_down) throw new StoreUnavailableException("store down");
            return Task.FromResult(new ServiceListing([.. _keys.Values], _revision));
        }
    }

    public async IAsyncEnumerable<IReadOnlyList<ServiceEvent>> WatchAsync(long fromRevision, [EnumeratorCancellation] CancellationToken cancel)
    {
        var channel = Channel.CreateUnbounded<IReadOnlyList<ServiceEvent>>();
        lock (_gate)
        {
            if (_down) throw new StoreUnavailableException("store down");
            if (fromRevision <= _compacted) throw new StoreCompactedException(_compacted);
            var backlog = _log.Where(e => e.Service.ModRevision >= fromRevision).ToList();
            if (backlog.Count > 0) channel.Writer.TryWrite(backlog);
            _watchers.Add(channel);
        }
        try
        {
            while (true)
            {
                IReadOnlyList<ServiceEvent> batch;
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

    private void Publish(List<ServiceEvent> batch)
    {
        if (batch.Count == 0) return;
        _log.AddRange(batch);
        foreach (var w in _watchers) w.Writer.TryWrite(batch);
    }
}
