using System.Numerics;
using System.Runtime.CompilerServices;

namespace FastOverlay.Tables.Services;

/// <summary>The owner's side of the conntrack table: insert, remove, epoch, and the lazy reclaim of expired flows.</summary>
public sealed unsafe partial class ConntrackTable
{
    /// <summary>
    /// Tracks a new flow under both its keys and returns its index, or -1 when the table is full (InsertFailures
    /// counts it; the caller fails the new flow closed). Owner only. The caller guarantees neither key is live
    /// already; an expired flow with the same key may still be indexed and is simply skipped by lookups.
    /// </summary>
    public int Insert(in FlowKey original, in FlowKey reply, uint servicePortId, uint epoch, ConntrackFlags flags, long now)
    {
        var originalHash = Hash(original);
        var replyHash = Hash(reply);
        var f = AllocateFlow(now);
        if (f < 0) f = ReclaimFromBuckets(originalHash, now);
        if (f < 0) f = ReclaimFromBuckets(replyHash, now);
        if (f < 0) return InsertFailed();

        // The flow is complete before either index word is published, so a reader that finds a word finds it whole.
        ref var e = ref _entries[f];
        BeginWrite(ref e);
        e.Flow.Original = original;
        e.Flow.Reply = reply;
        e.Flow.ServicePortId = servicePortId;
        e.Flow.Epoch = epoch;
        e.Flow.Flags = flags;
        e.Flow.LastSeen = now;
        e.Used = 1;
        EndWrite(ref e);

        var originalWord = ClaimWay(originalHash, now);
        if (originalWord == null)
        {
            Release(f);
            return InsertFailed();
        }
        Volatile.Write(ref *originalWord, Word(originalHash, f, reply: false));
        var replyWord = ClaimWay(replyHash, now);
        if (replyWord == null)
        {
            Volatile.Write(ref *originalWord, 0);
            Release(f);
            return InsertFailed();
        }
        Volatile.Write(ref *replyWord, Word(replyHash, f, reply: true));
        Volatile.Write(ref _count, _count + 1);
        return f;
    }

    /// <summary>Stops tracking a flow: both keys miss from now on and the slot is free. Owner only; a free or out-of-range index is ignored.</summary>
    public void Remove(int index)
    {
        if ((uint)index >= (uint)Capacity || _entries[index].Used == 0) return;
        Unlink(index);
        _free[_freeCount++] = index;
    }

    /// <summary>Records that the flow's backend was revalidated at a service-table epoch. Owner only.</summary>
    public void SetEpoch(int index, uint epoch)
    {
        if ((uint)index >= (uint)Capacity) return;
        ref var e = ref _entries[index];
        BeginWrite(ref e);
        e.Flow.Epoch = epoch;
        EndWrite(ref e);
    }

    // Seqlock writer: odd while writing. The barrier keeps the field stores after the odd store (it matters on
    // arm64; x64 never reorders stores); the closing Volatile.Write is a release, keeping them before the even one.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BeginWrite(ref ConntrackEntry e)
    {
        Volatile.Write(ref e.Sequence, e.Sequence + 1);
        Volatile.WriteBarrier();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EndWrite(ref ConntrackEntry e) => Volatile.Write(ref e.Sequence, e.Sequence + 1);

    private int InsertFailed()
    {
        Volatile.Write(ref _insertFailures, _insertFailures + 1);
        return -1;
    }

    /// <summary>A free flow slot: from the free list, else the first expired flow within the clock hand's budget.</summary>
    private int AllocateFlow(long now)
    {
        if (_freeCount > 0) return _free[--_freeCount];
        for (var i = 0; i < ReclaimBudget; i++)
        {
            var f = _hand;
            _hand = f + 1 == Capacity ? 0 : f + 1;
            ref var e = ref _entries[f];
            if (e.Used != 0 && IsExpired(e.Flow, now))
            {
                Unlink(f);
                PrefetchIndexOf(_hand);
                return f;
            }
        }
        return -1;
    }

    /// <summary>
    /// Under steady churn every insert reclaims the flow at the clock hand, and taking it out of the index reads
    /// the buckets of both its keys: lines nobody touched since the flow was created, so cache misses on the new
    /// flow's path. Starting those loads one reclaim ahead (the hand's next flow) lets them arrive in the meantime.
    /// </summary>
    private void PrefetchIndexOf(int f)
    {
        ref var e = ref _entries[f];
        if (e.Used == 0) return;
        var original = Hash(e.Flow.Original);
        var reply = Hash(e.Flow.Reply);
        PrefetchLine(Bucket(Primary(original)));
        PrefetchLine(Bucket(Secondary(original)));
        PrefetchLine(Bucket(Primary(reply)));
        PrefetchLine(Bucket(Secondary(reply)));
    }

    /// <summary>Reclaims an expired flow indexed in either of a key's two buckets (VPP LB: reuse the expired slot).</summary>
    private int ReclaimFromBuckets(ulong hash, long now)
    {
        var f = ReclaimFromBucket(Bucket(Primary(hash)), now);
        return f >= 0 ? f : ReclaimFromBucket(Bucket(Secondary(hash)), now);
    }

    private int ReclaimFromBucket(ulong* words, long now)
    {
        for (var w = 0; w < Ways; w++)
        {
            var word = words[w];
            if (word == 0) continue;
            var f = (int)(((uint)word - 1) >> 1);
            ref var e = ref _entries[f];
            if (e.Used != 0 && IsExpired(e.Flow, now))
            {
                Unlink(f);
                return f;
            }
        }
        return -1;
    }


    /// <summary>Takes a used flow out of the index and marks it free (not yet on the free list).</summary>
    private void Unlink(int f)
    {
        ref var e = ref _entries[f];
        RemoveWord(Hash(e.Flow.Original), f, reply: false);
        RemoveWord(Hash(e.Flow.Reply), f, reply: true);
        BeginWrite(ref e);
        e.Used = 0;
        EndWrite(ref e);
        Volatile.Write(ref _count, _count - 1);
    }

    /// <summary>Undoes a flow written by Insert that could not be indexed.</summary>
    private void Release(int f)
    {
        ref var e = ref _entries[f];
        BeginWrite(ref e);
        e.Used = 0;
        EndWrite(ref e);
        _free[_freeCount++] = f;
    }
}
