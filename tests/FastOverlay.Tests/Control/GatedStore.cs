using System.Runtime.CompilerServices;
using FastOverlay.Control.Subnets;

namespace FastOverlay.Tests.Control;

/// <summary>
/// Wraps a store to open a gap between the listing and the watch (<see cref="HoldWatch"/>), or to cut this node off
/// from a store that keeps working for everyone else (<see cref="Down"/>: a partition, not an etcd crash).
/// </summary>
internal sealed class GatedStore(ISubnetStore inner) : ISubnetStore
{
    private TaskCompletionSource? _hold;
    private volatile bool _down;
    private CancellationTokenSource _cut = new();
    private CancellationTokenSource _breaking = new();
    private int _lists;

    public bool Down
    {
        get => _down;
        set
        {
            _down = value;
            if (value) _cut.Cancel();
            else _cut = new CancellationTokenSource();
        }
    }

    public void HoldWatch() => _hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>True while a watch waits on <see cref="HoldWatch"/>.</summary>
    public bool Holding { get; private set; }

    /// <summary>Breaks the running watch (as a network error would) and holds the next one until released.</summary>
    public void BreakWatch()
    {
        HoldWatch();
        _breaking.Cancel();
    }

    public void ReleaseWatch() => _hold?.TrySetResult();

    public Task<byte[]?> GetConfigAsync(CancellationToken cancel) => Check(() => inner.GetConfigAsync(cancel));
    public Task<LeaseListing> ListLeasesAsync(CancellationToken cancel)
    {
        Interlocked.Increment(ref _lists);
        return Check(() => inner.ListLeasesAsync(cancel));
    }

    /// <summary>How many listings were attempted: each reconnect starts with one.</summary>
    public int Lists => Volatile.Read(ref _lists);
    public Task<long?> TryPutLeaseAsync(string key, byte[] value, TimeSpan ttl, LeaseCondition condition, CancellationToken cancel) => Check(() => inner.TryPutLeaseAsync(key, value, ttl, condition, cancel));
    public Task<bool> TryDeleteLeaseAsync(string key, long modRevision, CancellationToken cancel) => Check(() => inner.TryDeleteLeaseAsync(key, modRevision, cancel));

    public async IAsyncEnumerable<IReadOnlyList<LeaseEvent>> WatchLeasesAsync(long fromRevision, [EnumeratorCancellation] CancellationToken cancel)
    {
        if (_hold is { } hold)
        {
            Holding = true;
            await hold.Task.WaitAsync(cancel);
            Holding = false;
            _hold = null;
        }
        if (_down) throw new StoreUnavailableException("cut off (test)");
        _breaking = new CancellationTokenSource();
        var cut = _cut.Token;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancel, cut, _breaking.Token);
        var events = inner.WatchLeasesAsync(fromRevision, linked.Token).GetAsyncEnumerator(linked.Token);
        try
        {
            while (true)
            {
                bool moved;
                try
                {
                    moved = await events.MoveNextAsync();
                }
                catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
                {
                    throw new StoreUnavailableException("cut off (test)");
                }
                if (!moved) yield break;
                yield return events.Current;
            }
        }
        finally
        {
            await events.DisposeAsync();
        }
    }

    private Task<T> Check<T>(Func<Task<T>> call) => _down ? Task.FromException<T>(new StoreUnavailableException("cut off (test)")) : call();
}
