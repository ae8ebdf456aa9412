using System.Runtime.CompilerServices;
using Etcdserverpb;
using FastOverlay.Control.Subnets;
using Google.Protobuf;
using Grpc.Core;

namespace FastOverlay.Control.Etcd;

/// <summary>
/// <see cref="ISubnetStore"/> on etcd v3 in flannel's exact layout (pkg/subnet/etcd/registry.go): the config at
/// <c>&lt;prefix&gt;/config</c>, leases at <c>&lt;prefix&gt;/subnets/&lt;a.b.c.d&gt;-&lt;len&gt;</c> each attached to its own etcd lease.
/// A lease write is flannel's createSubnet: Grant, then one Txn (If condition Then Put with the lease), and Revoke
/// the fresh lease when the condition fails. Every gRPC failure surfaces as <see cref="StoreUnavailableException"/>.
/// </summary>
public sealed class EtcdSubnetStore : ISubnetStore, IDisposable
{
    private readonly EtcdConnection _connection;
    private readonly ByteString _config;
    private readonly ByteString _subnets;
    private readonly ByteString _subnetsEnd;
    private readonly string _subnetsPrefix;

    public EtcdSubnetStore(EtcdOptions options)
    {
        _connection = new EtcdConnection(options);
        var prefix = options.Prefix.TrimEnd('/');
        _config = ByteString.CopyFromUtf8(prefix + "/config");
        _subnetsPrefix = prefix + "/subnets/";
        _subnets = ByteString.CopyFromUtf8(_subnetsPrefix);
        _subnetsEnd = RangeEnd(_subnets);
    }

    public string Endpoint => _connection.Endpoint;

    public Task<byte[]?> GetConfigAsync(CancellationToken cancel) => Call(async () =>
    {
        var reply = await _connection.Kv.RangeAsync(new RangeRequest { Key = _config }, _connection.Unary(cancel));
        return reply.Kvs.Count == 0 ? null : reply.Kvs[0].Value.ToByteArray();
    }, cancel);

    public Task<LeaseListing> ListLeasesAsync(CancellationToken cancel) => Call(async () =>
    {
        var reply = await _connection.Kv.RangeAsync(new RangeRequest { Key = _subnets, RangeEnd = _subnetsEnd }, _connection.Unary(cancel));
        var leases = reply.Kvs.Select(kv => new StoredLease(KeyOf(kv.Key), kv.Value.ToByteArray(), kv.Lease, kv.ModRevision)).ToList();
        return new LeaseListing(leases, reply.Header.Revision);
    }, cancel);

    public Task<long?> TryPutLeaseAsync(string key, byte[] value, TimeSpan ttl, LeaseCondition condition, CancellationToken cancel) => Call(async () =>
    {
        var fullKey = ByteString.CopyFromUtf8(_subnetsPrefix + key);
        var grant = await _connection.Lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = (long)Math.Ceiling(ttl.TotalSeconds) }, _connection.Unary(cancel));
        var txn = new TxnRequest();
        txn.Compare.Add(Compare(fullKey, condition));
        txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = fullKey, Value = ByteString.CopyFrom(value), Lease = grant.ID } });
        TxnResponse reply;
        try
        {
            reply = await _connection.Kv.TxnAsync(txn, _connection.Unary(cancel));
        }
        catch
        {
            await RevokeQuietly(grant.ID);
            throw;
        }
        if (reply.Succeeded) return (long?)grant.ID;
        await RevokeQuietly(grant.ID);
        return null;
    }, cancel);

    public Task<bool> TryDeleteLeaseAsync(string key, long modRevision, CancellationToken cancel) => Call(async () =>
    {
        var fullKey = ByteString.CopyFromUtf8(_subnetsPrefix + key);
        var txn = new TxnRequest();
        txn.Compare.Add(Compare(fullKey, new LeaseCondition.AtRevision(modRevision)));
        txn.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = fullKey } });
        return (await _connection.Kv.TxnAsync(txn, _connection.Unary(cancel))).Succeeded;
    }, cancel);

    public async IAsyncEnumerable<IReadOnlyList<LeaseEvent>> WatchLeasesAsync(long fromRevision, [EnumeratorCancellation] CancellationToken cancel)
    {
        await foreach (var events in _connection.WatchAsync(_subnets, _subnetsEnd, fromRevision, cancel).ConfigureAwait(false))
        {
            var batch = new List<LeaseEvent>(events.Count);
            foreach (var e in events)
            {
                var kind = e.Type == Mvccpb.Event.Types.EventType.Put ? LeaseEventKind.Put : LeaseEventKind.Delete;
                batch.Add(new LeaseEvent(kind, KeyOf(e.Kv.Key), kind == LeaseEventKind.Put ? e.Kv.Value.ToByteArray() : [], e.Kv.ModRevision));
            }
            yield return batch;
        }
    }

    public void Dispose() => _connection.Dispose();

    private static Compare Compare(ByteString key, LeaseCondition condition) => condition switch
    {
        LeaseCondition.Absent => new Compare { Key = key, Target = Etcdserverpb.Compare.Types.CompareTarget.Version, Result = Etcdserverpb.Compare.Types.CompareResult.Equal, Version = 0 },
        LeaseCondition.AtRevision r => new Compare { Key = key, Target = Etcdserverpb.Compare.Types.CompareTarget.Mod, Result = Etcdserverpb.Compare.Types.CompareResult.Equal, ModRevision = r.ModRevision },
        LeaseCondition.HoldsValue v => new Compare { Key = key, Target = Etcdserverpb.Compare.Types.CompareTarget.Value, Result = Etcdserverpb.Compare.Types.CompareResult.Equal, Value = ByteString.CopyFrom(v.Value) },
        _ => throw new ArgumentOutOfRangeException(nameof(condition)),
    };

    private string KeyOf(ByteString key)
    {
        var text = key.ToStringUtf8();
        return text.StartsWith(_subnetsPrefix, StringComparison.Ordinal) ? text[_subnetsPrefix.Length..] : text;
    }

    /// <summary>etcd's prefix range end: the prefix with its last byte incremented (clientv3.GetPrefixRangeEnd).</summary>
    internal static ByteString RangeEnd(ByteString prefix)
    {
        var bytes = prefix.ToByteArray();
        for (var i = bytes.Length - 1; i >= 0; i--)
        {
            if (bytes[i] < 0xFF)
            {
                bytes[i]++;
                return ByteString.CopyFrom(bytes, 0, i + 1);
            }
        }
        return ByteString.CopyFrom(0);
    }

    private async Task RevokeQuietly(long id)
    {
        try
        {
            await _connection.Lease.LeaseRevokeAsync(new LeaseRevokeRequest { ID = id }, _connection.Unary(CancellationToken.None));
        }
        catch (RpcException)
        {
            // The lease holds no key and runs out by itself.
        }
    }

    private Task<T> Call<T>(Func<Task<T>> call, CancellationToken cancel) => _connection.Call(call, cancel);
}
