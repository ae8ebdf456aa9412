using System.Runtime.CompilerServices;
using Etcdserverpb;
using FastOverlay.Control.Etcd;
using FastOverlay.Control.Subnets;
using Google.Protobuf;

namespace FastOverlay.Control.Services;

/// <summary>
/// <see cref="IServiceStore"/> on etcd v3: a prefix range read and a prefix watch over
/// <see cref="EtcdConnection"/> (its own channels, the same endpoints, TLS and auth as the subnet store), with the
/// watch lifecycle of <see cref="EtcdSubnetStore"/>: a compacted start revision is reported, never resumed from.
/// Every gRPC failure surfaces as <see cref="StoreUnavailableException"/>.
/// </summary>
public sealed class EtcdServiceStore : IServiceStore, IDisposable
{
    public const string DefaultPrefix = "/fastoverlay/services/";

    private readonly EtcdConnection _connection;
    private readonly ByteString _prefix;
    private readonly ByteString _prefixEnd;

    /// <summary>Connects with <paramref name="options"/> (its Prefix, flannel's, is not used) to the keys under <paramref name="prefix"/>.</summary>
    public EtcdServiceStore(EtcdOptions options, string prefix = DefaultPrefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix.Trim('/'), nameof(prefix));
        _connection = new EtcdConnection(options);
        // One trailing slash, so that /fastoverlay/services never also matches /fastoverlay/services-old/.
        KeyPrefix = prefix.TrimEnd('/') + "/";
        _prefix = ByteString.CopyFromUtf8(KeyPrefix);
        _prefixEnd = EtcdSubnetStore.RangeEnd(_prefix);
    }

    public string KeyPrefix { get; }

    public string Endpoint => _connection.Endpoint;

    public Task<ServiceListing> ListAsync(CancellationToken cancel) => Call(async () =>
    {
        var reply = await _connection.Kv.RangeAsync(new RangeRequest { Key = _prefix, RangeEnd = _prefixEnd }, _connection.Unary(cancel));
        return new ServiceListing([.. reply.Kvs.Select(kv => new StoredService(KeyOf(kv.Key), kv.Value.ToByteArray(), kv.CreateRevision, kv.ModRevision))], reply.Header.Revision);
    }, cancel);

    public async IAsyncEnumerable<IReadOnlyList<ServiceEvent>> WatchAsync(long fromRevision, [EnumeratorCancellation] CancellationToken cancel)
    {
        await foreach (var events in _connection.WatchAsync(_prefix, _prefixEnd, fromRevision, cancel).ConfigureAwait(false))
        {
            var batch = new List<ServiceEvent>(events.Count);
            foreach (var e in events)
            {
                var put = e.Type == Mvccpb.Event.Types.EventType.Put;
                var stored = new StoredService(KeyOf(e.Kv.Key), put ? e.Kv.Value.ToByteArray() : [], e.Kv.CreateRevision, e.Kv.ModRevision);
                batch.Add(new ServiceEvent(put ? ServiceEventKind.Put : ServiceEventKind.Delete, stored));
            }
            yield return batch;
        }
    }

    public void Dispose() => _connection.Dispose();

    private string KeyOf(ByteString key)
    {
        var text = key.ToStringUtf8();
        return text.StartsWith(KeyPrefix, StringComparison.Ordinal) ? text[KeyPrefix.Length..] : text;
    }

    private Task<T> Call<T>(Func<Task<T>> call, CancellationToken cancel) => _connection.Call(call, cancel);
}
