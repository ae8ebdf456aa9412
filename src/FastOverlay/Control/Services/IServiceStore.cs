namespace FastOverlay.Control.Services;

/// <summary>
/// Where Services live once nodes share etcd: one key per Service, <c>&lt;prefix&gt;&lt;namespace&gt;/&lt;name&gt;</c>
/// (prefix <c>/fastoverlay/services/</c>: FastOverlay's own, never flannel's), the value the JSON object of one
/// element of the file's "Services". <see cref="EtcdServiceStore"/> on etcd, <see cref="InMemoryServiceStore"/>
/// for the demo and tests. Read-only here: Services are written by an operator or a controller (etcdctl put).
/// Keys are given without the prefix (<c>default/web</c>); values are raw bytes, parsed by the caller so that
/// both stores skip bad ones alike. Failures to reach the store throw
/// <see cref="Subnets.StoreUnavailableException"/>, as the subnet store's do.
/// </summary>
public interface IServiceStore
{
    /// <summary>The prefix of the keys, for messages that name a key as an operator would type it.</summary>
    string KeyPrefix { get; }

    /// <summary>Every Service at one revision (etcd's header revision of the range read).</summary>
    Task<ServiceListing> ListAsync(CancellationToken cancel);

    /// <summary>
    /// Every change from <paramref name="fromRevision"/> on, a batch per store response, until cancelled. Throws
    /// <see cref="Subnets.StoreCompactedException"/> when that revision is compacted away (the caller re-lists) or
    /// <see cref="Subnets.StoreUnavailableException"/> when the stream breaks. Ending the enumeration cancels the watch.
    /// </summary>
    IAsyncEnumerable<IReadOnlyList<ServiceEvent>> WatchAsync(long fromRevision, CancellationToken cancel);
}

/// <summary>One key: <see cref="CreateRevision"/> orders Services when two claim the same address (the older keeps it).</summary>
public sealed record StoredService(string Key, byte[] Value, long CreateRevision, long ModRevision);

public sealed record ServiceListing(IReadOnlyList<StoredService> Services, long Revision);

public enum ServiceEventKind { Put, Delete }

/// <summary>A put carries the key's new value and revisions; a delete carries the key and its revision only.</summary>
public sealed record ServiceEvent(ServiceEventKind Kind, StoredService Service);
