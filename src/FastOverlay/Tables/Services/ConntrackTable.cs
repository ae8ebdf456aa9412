using System.Numerics;
using System.Runtime.CompilerServices;
using FastOverlay.Pipeline;

namespace FastOverlay.Tables.Services;

/// <summary>
/// A per-worker connection-tracking table for service flows: fixed size, preallocated, no locks, no allocation and
/// no exceptions after construction. Models: VPP's LB per-thread flow table (set-associative buckets, lazy expiry,
/// "not a big deal if writing into the hash table fails") and NAT44-ED's per-thread sessions (an expired session
/// is reused when the table is full), Katran's fixed-size table (services.md §3).
///
/// Layout. Flows live in a 64-byte-aligned array of 64-byte entries (a seqlock sequence, a used mark, the flow).
/// Each flow is indexed twice, by its original key and by its reply key, in an index of 8-way buckets of 8-byte
/// words {tag: 32 | flow·2 + direction + 1: 32}; one bucket is one cache line, compared in two AVX2 instructions.
/// A key may sit in either of two buckets (two-choice hashing, placed in the emptier); the index has at least
/// twice as many ways as a full table has keys, so a placement practically never fails before the flows run out.
/// The hash is keyed with a per-process seed (<see cref="KeyedHash"/>).
///
/// Threads. The owning worker is the only writer of keys, Epoch and the used mark. Any worker may call
/// <see cref="TryFind"/> (a reply can arrive on another worker: the kernel's fanout hashes the translated packet
/// differently) and <see cref="Observe"/>. A reader compares the key and copies the flow between two reads of its
/// sequence and retries (a few times, then reports a miss) if the owner was writing, so a copy is never torn and
/// always holds the key asked for: an index word that went stale under the reader (flow reclaimed and reused)
/// costs a miss, never a wrong flow. Races accepted, all benign:
/// - A reader may miss a flow whose bucket the owner is writing at that instant (the vector load of a bucket is
///   not atomic as a whole), or whose entry it keeps rewriting: a miss, which the caller treats as a new flow or a
///   drop, and the next packet finds the flow.
/// - A reader's miss and the owner's insert of the same key can cross, e.g. a reply arriving on another worker
///   before the owner indexed the flow: the same as any packet that beats its flow's creation.
/// - Observe updates LastSeen and Flags in place without the seqlock (a plain 8-byte store and an atomic OR), so a
///   reader's copy may show either side of a concurrent Observe: both values are ones the flow really had.
/// - Observe may land on a slot the owner just reclaimed and reused (its caller found the old flow a moment before
///   it expired). It can then mark the new flow SeenReply/FIN/RST or refresh it: a timeout class off by one packet,
///   never a wrong translation, since Observe never touches keys. Observe does refuse to refresh a flow already
///   past its timeout, so an expired flow cannot come back to life next to the one that replaced it.
/// - Two workers refreshing LastSeen at once may leave the older of two nearly equal times (a few ticks).
///
/// Table full: new flows fail closed (Insert returns -1 and counts <see cref="InsertFailures"/>, the caller drops
/// the packet, as Cilium's lb4_local: "fail closed, if the conntrack entry create fails"); established flows keep
/// working. Expiry is lazy: there is no sweeper. When no flow is free, Insert advances a clock hand over at most
/// <see cref="ReclaimBudget"/> flows and reuses the first expired one, then tries expired flows met in the new
/// keys' buckets; so capacity comes back within one timeout without a full scan and an insert's cost is bounded.
/// </summary>
public sealed unsafe partial class ConntrackTable
{
    public const int MaxCapacity = 1 << 24;
    internal const int Ways = 8;
    /// <summary>Flows the clock hand examines per Insert when no flow is free (bounds a full table's insert cost).</summary>
    internal const int ReclaimBudget = 16;
    private const int ReadAttempts = 4;
    private const int CacheLine = 64;
    private const ulong TagMask = 0xFFFF_FFFF_0000_0000;
    private const byte Icmp = 1;
    private const byte Tcp = 6;
    private const byte TcpFin = 0x01;
    private const byte TcpRst = 0x04;
    private const ConntrackFlags BothFins = ConntrackFlags.OriginalFin | ConntrackFlags.ReplyFin;

    // Pinned (POH) so the aligned raw pointers below stay valid; the arrays are kept only to own the memory.
    private readonly byte[] _entryMemory;
    private readonly ulong[] _indexMemory;
    private readonly ConntrackEntry* _entries;
    private readonly ulong* _index;
    private readonly int[] _free;
    private readonly uint _bucketMask;
    private readonly ulong _seed;
    private readonly long _tcpSyn, _tcpEstablished, _tcpClosing, _udp, _udpStream, _icmp;
    private bool _stageBursts;
    private int _freeCount;
    private int _hand;
    private int _count;
    private long _insertFailures;

    /// <param name="capacity">Flows, 1..<see cref="MaxCapacity"/>; memory is 64 bytes per flow plus at least 32 of index.</param>
    /// <param name="hashSeed">Random per process in production (HashDoS); fixed in tests.</param>
    public ConntrackTable(int capacity, ConntrackTimeouts timeouts, ulong hashSeed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, MaxCapacity);
        ArgumentNullException.ThrowIfNull(timeouts);
        _tcpSyn = PositiveTicks(timeouts.TcpSyn);
        _tcpEstablished = PositiveTicks(timeouts.TcpEstablished);
        _tcpClosing = PositiveTicks(timeouts.TcpClosing);
        _udp = PositiveTicks(timeouts.Udp);
        _udpStream = PositiveTicks(timeouts.UdpStream);
        _icmp = PositiveTicks(timeouts.Icmp);
        Capacity = capacity;
        Timeouts = timeouts;
        _seed = hashSeed;

        var buckets = Math.Max(16, (int)BitOperations.RoundUpToPowerOf2((uint)(capacity + 1) / 2));
        _bucketMask = (uint)buckets - 1;
        _entryMemory = GC.AllocateArray<byte>(capacity * sizeof(ConntrackEntry) + CacheLine, pinned: true);
        _entries = (ConntrackEntry*)AlignUp(Unsafe.AsPointer(ref _entryMemory[0]));
        _indexMemory = GC.AllocateArray<ulong>(buckets * Ways + CacheLine / sizeof(ulong), pinned: true);
        _index = (ulong*)AlignUp(Unsafe.AsPointer(ref _indexMemory[0]));
        _stageBursts = (long)_entryMemory.Length + _indexMemory.Length * sizeof(ulong) > StageAboveBytes;
        _free = new int[capacity];
        for (var i = 0; i < capacity; i++) _free[i] = capacity - 1 - i; // pops 0, 1, 2, ...
        _freeCount = capacity;
    }

    private static long PositiveTicks(TimeSpan span)
    {
        var ticks = NodeOptions.Ticks(span);
        ArgumentOutOfRangeException.ThrowIfLessThan(ticks, 1, nameof(span));
        return ticks;
    }

    private static void* AlignUp(void* p) => (void*)(((nuint)p + (CacheLine - 1)) & ~(nuint)(CacheLine - 1));

    public int Capacity { get; }
    public ConntrackTimeouts Timeouts { get; }
    /// <summary>Flows allocated: live, or expired and not yet reclaimed.</summary>
    public int Count => Volatile.Read(ref _count);
    /// <summary>Inserts refused because no flow (or no index way) was free or reclaimable.</summary>
    public long InsertFailures => Volatile.Read(ref _insertFailures);
    internal int IndexBuckets => (int)_bucketMask + 1;
    /// <summary>Whether burst lookups are staged (set by size; tests force both ways).</summary>
    internal bool StageBursts { get => _stageBursts; set => _stageBursts = value; }

    /// <summary>
    /// Looks a packet's key up, in either direction. A flow past its timeout is a miss. Any thread.
    /// </summary>
    /// <param name="isReply">True when the key is the flow's <see cref="ConntrackFlow.Reply"/> key.</param>
    public bool TryFind(in FlowKey key, long now, out int index, out bool isReply, out ConntrackFlow flow) =>
        TryFind(Hash(key), key, now, out index, out isReply, out flow);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryFind(ulong hash, in FlowKey key, long now, out int index, out bool isReply, out ConntrackFlow flow)
    {
        var tag = Tag(hash);
        var primary = Primary(hash);
        if (FindIn(primary, tag, key, now, out index, out isReply, out flow)) return true;
        var secondary = Secondary(hash);
        return secondary != primary && FindIn(secondary, tag, key, now, out index, out isReply, out flow);
    }

    private bool FindIn(uint bucket, uint tag, in FlowKey key, long now, out int index, out bool isReply, out ConntrackFlow flow)
    {
        var words = Bucket(bucket);
        var matches = Match(words, TagMask, (ulong)tag << 32);
        while (matches != 0)
        {
            var way = BitOperations.TrailingZeroCount(matches);
            matches &= matches - 1;
            // The vector load is only a hint (not atomic as a whole): re-read the word itself.
            var word = Volatile.Read(ref words[way]);
            if ((uint)(word >> 32) != tag || (uint)word == 0) continue;
            var reference = (uint)word - 1;
            var f = (int)(reference >> 1);
            var direction = (int)(reference & 1);
            // An expired flow is skipped, not a miss: a newer flow with the same key may sit further on.
            if (ReadIfLive(f, direction, key, now, out flow))
            {
                index = f;
                isReply = direction != 0;
                return true;
            }
        }
        index = -1;
        isReply = false;
        flow = default;
        return false;
    }

    /// <summary>
    /// The owner's lookup: the flow is read where it lies, with no seqlock and no copy (<see cref="Flow"/> gives it).
    /// Only the owner writes keys and slots, so nothing read here can be torn; LastSeen and Flags may change under it
    /// by another worker's <see cref="Observe"/>, each a value the flow really had. Owner thread only.
    /// </summary>
    internal bool TryFindOwned(in FlowKey key, long now, out int index, out bool isReply)
    {
        var hash = Hash(key);
        var tag = Tag(hash);
        var primary = Primary(hash);
        if (FindOwnedIn(primary, tag, key, now, out index, out isReply)) return true;
        var secondary = Secondary(hash);
        return secondary != primary && FindOwnedIn(secondary, tag, key, now, out index, out isReply);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool FindOwnedIn(uint bucket, uint tag, in FlowKey key, long now, out int index, out bool isReply)
    {
        var words = Bucket(bucket);
        var matches = Match(words, TagMask, (ulong)tag << 32);
        while (matches != 0)
        {
            var way = BitOperations.TrailingZeroCount(matches);
            matches &= matches - 1;
            // A matching tag is never 0 (Tag sets bit 0), so the word names a flow.
            var reference = (uint)words[way] - 1;
            var f = (int)(reference >> 1);
            var direction = (int)(reference & 1);
            ref var e = ref _entries[f];
            // An expired flow is skipped, not a miss: a newer flow with the same key may sit further on.
            if (Unsafe.Add(ref e.Flow.Original, direction).Equals(key) && e.Used != 0 && !IsExpired(e.Flow, now))
            {
                index = f;
                isReply = direction != 0;
                return true;
            }
        }
        index = -1;
        isReply = false;
        return false;
    }

    /// <summary>The flow at an index <see cref="TryFindOwned"/> returned, in place. Owner thread only.</summary>
    internal ref readonly ConntrackFlow Flow(int index) => ref _entries[index].Flow;

    /// <summary>
    /// Seqlock read: true with a consistent copy when flow f is used, live, and holds <paramref name="key"/> in the
    /// given direction; false otherwise, or if the owner kept writing (a miss, never a torn copy). The key is
    /// compared where it lies, before anything is copied; Original and Reply are adjacent, so the direction
    /// selects one without a branch (a packet's direction is a coin toss to the branch predictor).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool ReadIfLive(int f, int direction, in FlowKey key, long now, out ConntrackFlow flow)
    {
        ref var e = ref _entries[f];
        for (var attempt = 1; ; attempt++)
        {
            var before = Volatile.Read(ref e.Sequence);
            if (!Unsafe.Add(ref e.Flow.Original, direction).Equals(key))
            {
                Unsafe.SkipInit(out flow);
                return false;
            }
            var live = e.Used != 0 && !IsExpired(e.Flow, now);
            flow = e.Flow;
            // Keeps the loads above before the second read of the sequence (no instruction on x64, dmb ishld on arm64).
            Volatile.ReadBarrier();
            if ((before & 1) == 0 && Volatile.Read(ref e.Sequence) == before) return live;
            if (attempt == ReadAttempts) return false;
        }
    }

    /// <summary>Seqlock read of any flow (diagnostics): true with a consistent copy of a used flow.</summary>
    private bool ReadFlow(int f, out ConntrackFlow flow)
    {
        ref var e = ref _entries[f];
        for (var attempt = 1; ; attempt++)
        {
            var before = Volatile.Read(ref e.Sequence);
            var used = e.Used;
            flow = e.Flow;
            Volatile.ReadBarrier();
            if ((before & 1) == 0 && Volatile.Read(ref e.Sequence) == before) return used != 0;
            if (attempt == ReadAttempts) return false;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsExpired(in ConntrackFlow flow, long now) => now - flow.LastSeen >= TimeoutTicks(flow.Original.Protocol, flow.Flags);

    /// <summary>
    /// The idle timeout a flow is in now. TCP: closing once an RST or a FIN each way was seen, established once a
    /// reply was seen, SYN before that (Cilium's CT lifetimes). ICMP: icmp. UDP, and any other protocol: stream once
    /// a reply was seen, udp before (the kernel's udp / udp_stream split).
    /// </summary>
    public long TimeoutTicks(in ConntrackFlow flow) => TimeoutTicks(flow.Original.Protocol, flow.Flags);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long TimeoutTicks(byte protocol, ConntrackFlags flags)
    {
        var seenReply = (flags & ConntrackFlags.SeenReply) != 0;
        return protocol switch
        {
            Tcp when (flags & ConntrackFlags.Rst) != 0 || (flags & BothFins) == BothFins => _tcpClosing,
            Tcp => seenReply ? _tcpEstablished : _tcpSyn,
            Icmp => _icmp,
            _ => seenReply ? _udpStream : _udp,
        };
    }

    /// <summary>
    /// A packet of the flow at <paramref name="index"/> went through: refresh LastSeen and fold its TCP flags in
    /// (a reply sets SeenReply, FIN sets the direction's FIN bit, RST sets Rst). Any thread; lock-free; see the
    /// class comment for the races it accepts. Does nothing for a free slot or a flow already past its timeout.
    /// </summary>
    /// <param name="tcpFlags">The TCP header's flags byte; 0 for UDP and ICMP.</param>
    public void Observe(int index, bool isReply, byte tcpFlags, long now)
    {
        if ((uint)index >= (uint)Capacity) return;
        ref var e = ref _entries[index];
        ref var flagsWord = ref Unsafe.As<ConntrackFlags, int>(ref e.Flow.Flags);
        var flags = (ConntrackFlags)Volatile.Read(ref flagsWord);
        var last = Volatile.Read(ref e.Flow.LastSeen);
        if (Volatile.Read(ref e.Used) == 0 || now - last >= TimeoutTicks(e.Flow.Original.Protocol, flags)) return;
        var add = FlagsSeen(isReply, tcpFlags);
        // Most packets change nothing: skip the locked instruction and keep the line shared between workers.
        if ((flags & add) != add) Interlocked.Or(ref flagsWord, (int)add);
        if (now > last) Volatile.Write(ref e.Flow.LastSeen, now);
    }

    /// <summary>
    /// <see cref="Observe"/> for the owner, right after <see cref="TryFindOwned"/> found the flow live: the same
    /// updates without checking again that the slot is used and live.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Touch(int index, bool isReply, byte tcpFlags, long now)
    {
        ref var e = ref _entries[index];
        var add = FlagsSeen(isReply, tcpFlags);
        ref var flagsWord = ref Unsafe.As<ConntrackFlags, int>(ref e.Flow.Flags);
        if (((ConntrackFlags)Volatile.Read(ref flagsWord) & add) != add) Interlocked.Or(ref flagsWord, (int)add);
        if (now > Volatile.Read(ref e.Flow.LastSeen)) Volatile.Write(ref e.Flow.LastSeen, now);
    }

    /// <summary>What a packet tells of its flow: a reply was seen; a FIN in its direction; an RST.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ConntrackFlags FlagsSeen(bool isReply, byte tcpFlags)
    {
        var add = isReply ? ConntrackFlags.SeenReply : ConntrackFlags.None;
        if ((tcpFlags & TcpFin) != 0) add |= isReply ? ConntrackFlags.ReplyFin : ConntrackFlags.OriginalFin;
        if ((tcpFlags & TcpRst) != 0) add |= ConntrackFlags.Rst;
        return add;
    }

    /// <summary>Flows that are allocated and not expired. Scans the whole table: control plane and diagnostics only.</summary>
    public int CountLive(long now)
    {
        var live = 0;
        for (var f = 0; f < Capacity; f++)
        {
            if (ReadFlow(f, out var flow) && !IsExpired(flow, now)) live++;
        }
        return live;
    }
}
