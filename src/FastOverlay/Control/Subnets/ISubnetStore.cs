namespace FastOverlay.Control.Subnets;

/// <summary>
/// Where subnet leases live: flannel's etcd layout (<see cref="Etcd.EtcdSubnetStore"/>) or memory
/// (<see cref="InMemorySubnetStore"/>, the demo and unit tests). Leases go in as this node's own key, peers come
/// out as the listing and the watch. Keys are the part after <c>&lt;prefix&gt;/subnets/</c> (e.g. 10.244.1.0-24); values
/// are raw bytes, parsed by the caller so that both stores skip bad ones alike. The only writes are to this node's
/// own key, each guarded by a <see cref="LeaseCondition"/> so that another node's key is never overwritten.
/// Failures to reach the store throw <see cref="StoreUnavailableException"/>.
/// </summary>
public interface ISubnetStore
{
    /// <summary>The network config (<c>&lt;prefix&gt;/config</c>), or null while it does not exist.</summary>
    Task<byte[]?> GetConfigAsync(CancellationToken cancel);

    /// <summary>Every lease at one revision (etcd's header revision of the range read).</summary>
    Task<LeaseListing> ListLeasesAsync(CancellationToken cancel);

    /// <summary>
    /// Grants a fresh lease of <paramref name="ttl"/> and puts the key with it if <paramref name="condition"/>
    /// holds, in one transaction. Returns the lease id, or null when the condition failed (the granted lease is
    /// revoked again).
    /// </summary>
    Task<long?> TryPutLeaseAsync(string key, byte[] value, TimeSpan ttl, LeaseCondition condition, CancellationToken cancel);

    /// <summary>Deletes the key if it is still at <paramref name="modRevision"/>; false when it changed.</summary>
    Task<bool> TryDeleteLeaseAsync(string key, long modRevision, CancellationToken cancel);

    /// <summary>
    /// Every change from <paramref name="fromRevision"/> on, a batch per store response, until cancelled.
    /// Throws <see cref="StoreCompactedException"/> when that revision is compacted away (the caller must re-list,
    /// never resume from the compaction revision: flannel #2470), or <see cref="StoreUnavailableException"/>
    /// when the stream breaks. Ending the enumeration cancels the watch.
    /// </summary>
    IAsyncEnumerable<IReadOnlyList<LeaseEvent>> WatchLeasesAsync(long fromRevision, CancellationToken cancel);
}

/// <summary>The precondition of a lease write (etcd: the Compare of the transaction).</summary>
public abstract record LeaseCondition
{
    /// <summary>The key must not exist (flannel's createSubnet: Version == 0).</summary>
    public sealed record Absent : LeaseCondition;

    /// <summary>The key is unchanged since it was read (reusing our PublicIP's lease).</summary>
    public sealed record AtRevision(long ModRevision) : LeaseCondition;

    /// <summary>The key still holds exactly this value: our own lease, renewed (never resurrect a deleted key or overwrite a taker).</summary>
    public sealed record HoldsValue(byte[] Value) : LeaseCondition;
}

public sealed record StoredLease(string Key, byte[] Value, long LeaseId, long ModRevision);

public sealed record LeaseListing(IReadOnlyList<StoredLease> Leases, long Revision);

public enum LeaseEventKind { Put, Delete }

/// <summary>A put carries the new value; a delete (explicit, or the etcd lease's expiry) carries none.</summary>
public sealed record LeaseEvent(LeaseEventKind Kind, string Key, byte[] Value, long ModRevision);

public sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

public sealed class StoreCompactedException(long compactRevision)
    : Exception($"the watch's start revision was compacted (compact revision {compactRevision})")
{
    public long CompactRevision { get; } = compactRevision;
}
