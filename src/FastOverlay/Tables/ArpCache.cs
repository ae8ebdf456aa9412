using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FastOverlay.Wire;

namespace FastOverlay.Tables;

public enum ArpState : byte
{
    Miss,
    /// <summary>Confirmed within the reachable time.</summary>
    Reachable,
    /// <summary>Older than the reachable time: still used, but the forwarder re-probes it (the kernel's NUD_STALE).</summary>
    Stale,
}

/// <summary>
/// IPv4 → (MAC, port) neighbour cache, bounded by construction: a set-associative table of 8-way buckets, so it
/// can never hold more than its capacity and a flood of new addresses only recycles the least recently confirmed
/// entry of one bucket. A bucket's 8 addresses are compared in one Vector256 instruction.
///
/// Entries are learned on the data path (ARP requests, replies, gratuitous ARP), so the forwarder that owns the
/// cache is its only writer; rebuilding a copy per learned address would let an ARP flood burn the core.
/// Other threads read through <see cref="Snapshot"/>, which checks a per-bucket sequence number (a seqlock)
/// instead of locking.
/// </summary>
public sealed class ArpCache
{
    public const int Ways = 8;

    private readonly uint[] _addresses;
    private readonly ulong[] _macs;
    private readonly ushort[] _ports;
    private readonly long[] _confirmed;
    private readonly bool[] _permanent;
    private readonly int[] _sequence;
    private readonly int _bucketMask;
    private int _count;

    /// <param name="capacity">Rounded up to a power of two, at least 8.</param>
    /// <param name="reachableTicks">After this an entry is stale (Linux base_reachable_time, 30 s).</param>
    /// <param name="expireTicks">After this an unconfirmed entry is gone (Linux gc_stale_time, 60 s).</param>
    public ArpCache(int capacity, long reachableTicks, long expireTicks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        var buckets = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, (capacity + Ways - 1) / Ways));
        _addresses = new uint[buckets * Ways];
        _macs = new ulong[buckets * Ways];
        _ports = new ushort[buckets * Ways];
        _confirmed = new long[buckets * Ways];
        _permanent = new bool[buckets * Ways];
        _sequence = new int[buckets];
        _bucketMask = buckets - 1;
        ReachableTicks = reachableTicks;
        ExpireTicks = expireTicks;
    }

    public int Capacity => _addresses.Length;
    public int Count => Volatile.Read(ref _count);
    public long ReachableTicks { get; }
    public long ExpireTicks { get; }

    // 0.0.0.0 marks an empty way: it is never a neighbour's address (RFC 1122 s3.2.1.3).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Bucket(uint address) => (int)(BitOperations.Crc32C(0x9E37_79B9u, address) & (uint)_bucketMask);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Find(int bucket, uint address)
    {
        var baseIndex = bucket * Ways;
        if (Vector256.IsHardwareAccelerated)
        {
            var ways = Vector256.LoadUnsafe(ref _addresses[baseIndex]);
            var match = Vector256.Equals(ways, Vector256.Create(address)).ExtractMostSignificantBits();
            return match == 0 ? -1 : baseIndex + BitOperations.TrailingZeroCount(match);
        }
        return FindScalar(baseIndex, address);
    }

    private int FindScalar(int baseIndex, uint address)
    {
        for (var w = 0; w < Ways; w++)
        {
            if (_addresses[baseIndex + w] == address) return baseIndex + w;
        }
        return -1;
    }

    /// <summary>Data-path lookup by the owning forwarder.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ArpState Lookup(uint address, long now, out MacAddress mac, out int port)
    {
        var slot = address == 0 ? -1 : Find(Bucket(address), address);
        if (slot >= 0)
        {
            var age = now - _confirmed[slot];
            if (_permanent[slot] || age < ExpireTicks)
            {
                mac = new MacAddress(_macs[slot]);
                port = _ports[slot];
                return _permanent[slot] || age < ReachableTicks ? ArpState.Reachable : ArpState.Stale;
            }
        }
        mac = default;
        port = -1;
        return ArpState.Miss;
    }

    /// <summary>
    /// Records or refreshes a binding. In a full bucket the way confirmed longest ago is recycled (never a
    /// permanent one); returns false only when all 8 ways are permanent.
    /// </summary>
    public bool Learn(uint address, MacAddress mac, int port, long now, bool permanent = false)
    {
        if (address == 0) return false;
        var bucket = Bucket(address);
        var slot = Find(bucket, address);
        if (slot < 0)
        {
            slot = Victim(bucket, now);
            if (slot < 0) return false;
        }
        Write(bucket, slot, address, mac, port, now, permanent || _permanent[slot] && _addresses[slot] == address);
        return true;
    }

    /// <summary>The address currently bound to a MAC differently, if any (used to refuse ARP that claims another pod's address).</summary>
    public bool TryGetExact(uint address, out MacAddress mac, out int port)
    {
        var slot = address == 0 ? -1 : Find(Bucket(address), address);
        if (slot < 0)
        {
            mac = default;
            port = -1;
            return false;
        }
        mac = new MacAddress(_macs[slot]);
        port = _ports[slot];
        return true;
    }

    public bool Remove(uint address)
    {
        if (address == 0) return false;
        var bucket = Bucket(address);
        var slot = Find(bucket, address);
        if (slot < 0) return false;
        Clear(bucket, slot);
        return true;
    }

    /// <summary>Forgets every entry learned on a port (the port went away).</summary>
    public int RemovePort(int port)
    {
        var removed = 0;
        for (var slot = 0; slot < _addresses.Length; slot++)
        {
            if (_addresses[slot] != 0 && _ports[slot] == port)
            {
                Clear(slot / Ways, slot);
                removed++;
            }
        }
        return removed;
    }

    /// <summary>Drops entries past their expiry; the forwarder calls it about once a second.</summary>
    public int Expire(long now)
    {
        var removed = 0;
        for (var slot = 0; slot < _addresses.Length; slot++)
        {
            if (_addresses[slot] != 0 && !_permanent[slot] && now - _confirmed[slot] >= ExpireTicks)
            {
                Clear(slot / Ways, slot);
                removed++;
            }
        }
        return removed;
    }

    private int Victim(int bucket, long now)
    {
        var baseIndex = bucket * Ways;
        var victim = -1;
        var oldest = long.MaxValue;
        for (var w = 0; w < Ways; w++)
        {
            var slot = baseIndex + w;
            if (_addresses[slot] == 0) return slot;
            if (_permanent[slot]) continue;
            // Expired entries go first; otherwise the least recently confirmed.
            var confirmed = now - _confirmed[slot] >= ExpireTicks ? long.MinValue : _confirmed[slot];
            if (confirmed < oldest)
            {
                oldest = confirmed;
                victim = slot;
            }
        }
        return victim;
    }

    private void Write(int bucket, int slot, uint address, MacAddress mac, int port, long now, bool permanent)
    {
        var wasEmpty = _addresses[slot] == 0;
        ref var seq = ref _sequence[bucket];
        Volatile.Write(ref seq, seq + 1);
        // A release store keeps earlier stores before it, not later ones: without the barrier arm64 may make the
        // entry's new fields visible before the odd sequence, and a Snapshot could copy them as consistent.
        Volatile.WriteBarrier();
        _addresses[slot] = address;
        _macs[slot] = mac.Value;
        _ports[slot] = (ushort)port;
        _confirmed[slot] = now;
        _permanent[slot] = permanent;
        Volatile.Write(ref seq, seq + 1);
        if (wasEmpty) Volatile.Write(ref _count, _count + 1);
    }

    private void Clear(int bucket, int slot)
    {
        ref var seq = ref _sequence[bucket];
        Volatile.Write(ref seq, seq + 1);
        Volatile.WriteBarrier();
        _addresses[slot] = 0;
        _permanent[slot] = false;
        Volatile.Write(ref seq, seq + 1);
        Volatile.Write(ref _count, _count - 1);
    }

    public readonly record struct Entry(Ipv4Address Address, MacAddress Mac, int Port, long Confirmed, bool Permanent);

    /// <summary>A consistent copy of every entry, safe from any thread (for display and tests).</summary>
    public List<Entry> Snapshot()
    {
        var result = new List<Entry>();
        for (var bucket = 0; bucket <= _bucketMask; bucket++)
        {
            while (true)
            {
                var before = Volatile.Read(ref _sequence[bucket]);
                if ((before & 1) != 0) continue;
                var start = result.Count;
                for (var w = 0; w < Ways; w++)
                {
                    var slot = bucket * Ways + w;
                    var address = _addresses[slot];
                    if (address != 0)
                        result.Add(new Entry(new Ipv4Address(address), new MacAddress(_macs[slot]), _ports[slot], _confirmed[slot], _permanent[slot]));
                }
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref _sequence[bucket]) == before) break;
                result.RemoveRange(start, result.Count - start);
            }
        }
        return result;
    }
}
