using System.Runtime.CompilerServices;
using Etcdserverpb;
using FastOverlay.Control.Subnets;
using Google.Protobuf;
using Google.Protobuf.Collections;
using Grpc.Core;

namespace FastOverlay.Control.Etcd;

/// <summary>
/// The watch of one key range that both etcd stores (subnet leases, Services) run, with the rules they share:
/// every failure becomes a <see cref="StoreUnavailableException"/> (and moves the connection to the next member),
/// a compacted start revision a <see cref="StoreCompactedException"/> (the caller re-lists), and cancellation an
/// <see cref="OperationCanceledException"/>.
/// </summary>
internal static class EtcdRangeWatch
{
    /// <summary>Runs one call, mapping its gRPC failures as above.</summary>
    public static async Task<T> Call<T>(this EtcdConnection connection, Func<Task<T>> call, CancellationToken cancel)
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
            var endpoint = connection.Endpoint;
            connection.Failed(e);
            throw new StoreUnavailableException($"{endpoint}: {e.Status.Detail} ({e.StatusCode})", e);
        }
    }

    /// <summary>The events of [<paramref name="key"/>, <paramref name="rangeEnd"/>) from <paramref name="fromRevision"/> on, one batch per watch reply.</summary>
    public static async IAsyncEnumerable<RepeatedField<Mvccpb.Event>> WatchAsync(this EtcdConnection connection, ByteString key, ByteString rangeEnd,
        long fromRevision, [EnumeratorCancellation] CancellationToken cancel)
    {
        // Disposing the call resets the HTTP/2 stream, which ends the watch on the server: that is the cancel.
        using var call = await connection.Call(async () =>
        {
            var c = connection.Watch.Watch(connection.Streaming(cancel));
            try
            {
                await c.RequestStream.WriteAsync(new WatchRequest
                {
                    CreateRequest = new WatchCreateRequest { Key = key, RangeEnd = rangeEnd, StartRevision = fromRevision },
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
            var reply = await connection.Call(async () =>
                await call.ResponseStream.MoveNext(cancel) ? call.ResponseStream.Current : throw new StoreUnavailableException("etcd closed the watch stream"), cancel);
            // etcd 3.4 answers a watch below the compaction with Created, then Canceled + CompactRevision, as a
            // reply rather than an error (research notes §5; rpc.proto: do not retry the same start revision).
            if (reply.CompactRevision != 0) throw new StoreCompactedException(reply.CompactRevision);
            if (reply.Canceled) throw new StoreUnavailableException($"etcd cancelled the watch: {reply.CancelReason}");
            if (reply.Created) await CheckNotCompactedAsync(connection, key, rangeEnd, fromRevision, cancel).ConfigureAwait(false);
            if (reply.Events.Count == 0) continue;
            yield return reply.Events;
        }
    }

    /// <summary>
    /// etcd accepts a watch that starts exactly at the compaction revision, but compaction has already dropped the
    /// tombstone of a delete made at that revision: the delete is lost with no error (seen on 3.4.23: put, del at
    /// rev N, compact N, watch from N shows nothing). A read at <paramref name="fromRevision"/> - 1 succeeds only if
    /// nothing after it was compacted, which proves the watch sees every event since; otherwise report the
    /// compaction so the caller re-lists. The watch is open by then, so a later compaction cannot touch it.
    /// </summary>
    private static async Task CheckNotCompactedAsync(EtcdConnection connection, ByteString key, ByteString rangeEnd, long fromRevision, CancellationToken cancel)
    {
        if (fromRevision <= 1) return;
        try
        {
            await connection.Kv.RangeAsync(new RangeRequest { Key = key, RangeEnd = rangeEnd, Revision = fromRevision - 1, CountOnly = true }, connection.Unary(cancel));
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
            connection.Failed(e);
            throw new StoreUnavailableException($"{connection.Endpoint}: {e.Status.Detail} ({e.StatusCode})", e);
        }
    }
}
