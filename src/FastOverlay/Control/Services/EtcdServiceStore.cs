using System.Runtime.CompilerServices;
using Etcdserverpb;
using FastOverlay.Control.Etcd;
using FastOverlay.Control.Subnets;
using Google.Protobuf;
using Grpc.Core;

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
        // Disposing the call resets the HTTP/2 stream, which ends the watch on the server: that is the cancel.
        using var call = await Call(async () =>
        {
            var c = _connection.Watch.Watch(_connection.Streaming(cancel));
            try
            {
                await c.RequestStream.WriteAsync(new WatchRequest
                {
                    CreateRequest = new WatchCreateRequest { Key = _prefix, RangeEnd = _prefixEnd, StartRevision = fromRevision },
                }, cancel);
            }
            catch
            {
                c.Dispose();
                throw;
            }
            return c;
        }, cancel);
        while (true)
        {
            var reply = await Call(async () =>
                await call.ResponseStream.MoveNext(cancel) ? call.ResponseStream.Current : throw new StoreUnavailableException("etcd closed the watch stream"), cancel);
            // etcd 3.4 answers a watch below the compaction with Created, then Canceled + CompactRevision.
            if (reply.CompactRevision != 0) throw new StoreCompactedException(reply.CompactRevision);
            if (reply.Canceled) throw new StoreUnavailableException($"etcd cancelled the watch: {reply.CancelReason}");
            if (reply.Created) await CheckNotCompactedAsync(fromRevision, cancel).ConfigureAwait(false);
            if (reply.Events.Count == 0) continue;
            var batch = new List<ServiceEvent>(reply.Events.Count);
            foreach (var e in reply.Events)
            {
                var put = e.Type == Mvccpb.Event.Types.EventType.Put;
                var stored = new StoredService(KeyOf(e.Kv.Key), put ? e.Kv.Value.ToByteArray() : [], e.Kv.CreateRevision, e.Kv.ModRevision);
                batch.Add(new ServiceEvent(put ? ServiceEventKind.Put : ServiceEventKind.Delete, stored));
            }
            yield return batch;
        }
    }

    public void Dispose() => _connection.Dispose();

    /// <summary>
    /// A watch that starts exactly at the compaction revision loses a delete made at that revision with no error
    /// (see EtcdSubnetStore.CheckNotCompactedAsync); a read just below the start revision proves nothing is missing.
    /// </summary>
    private async Task CheckNotCompactedAsync(long fromRevision, CancellationToken cancel)
    {
        if (fromRevision <= 1) return;
        try
        {
            await _connection.Kv.RangeAsync(new RangeRequest { Key = _prefix, RangeEnd = _prefixEnd, Revision = fromRevision - 1, CountOnly = true }, _connection.Unary(cancel));
        }
        catch (RpcException e) when (cancel.IsCancellationRequested)
        {
            throw new OperationCanceledException("cancelled", e, cancel);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.OutOfRange)
        {
            throw new StoreCompactedException(fromRevision);
        }
        catch (RpcException e)
        {
            _connection.Failed(e);
            throw new StoreUnavailableException($"{_connection.Endpoint}: {e.Status.Detail} ({e.StatusCode})", e);
        }
    }

    private string KeyOf(ByteString key)
    {
        var text = key.ToStringUtf8();
        return text.StartsWith(KeyPrefix, StringComparison.Ordinal) ? text[KeyPrefix.Length..] : text;
    }

    private async Task<T> Call<T>(Func<Task<T>> call, CancellationToken cancel)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (RpcException e) when (cancel.IsCancellationRequested)
        {
            throw new OperationCanceledException("cancelled", e, cancel);
        }
        catch (RpcException e)
        {
            var endpoint = _connection.Endpoint;
            _connection.Failed(e);
            throw new StoreUnavailableException($"{endpoint}: {e.Status.Detail} ({e.StatusCode})", e);
        }
    }
}
