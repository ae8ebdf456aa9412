using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FastOverlay.Tables.Services;

/// <summary>
/// sessionAffinity: ClientIP. Remembers, per (service port, client address), the backend the client's last new
/// connection went to. Keyed by the service port's id, not by the address the client used, so ClusterIP, NodePort
/// and LoadBalancer addresses share one choice (kube-proxy's nftables comment; Cilium's cilium_lb4_affinity).
/// An entry holds for [lastUsed, lastUsed + timeout), Cilium's __lb4_affinity_backend_id semantics; the timeout
/// is the service's timeoutSeconds, passed to each lookup since it differs per service.
///
/// TryGet does not refresh: the caller calls Set for every new connection it balances (hit or miss), which is
/// what iptables' "recent --set" and nftables' "update @set" do in the endpoint chain, so the timeout counts from
/// the last new connection (services.md §1.8). Checking the backend still exists is the caller's job too.
///
/// Per worker, single thread, preallocated and bounded: 8-way set-associative buckets (compared in two AVX2
/// instructions, as ArpCache does), the least recently used way recycled when a bucket is full, so a flood of
/// clients costs other clients at most their stickiness, never memory. A lost entry only means the next
/// connection is balanced afresh.
/// </summary>
public sealed class AffinityTable
{
    public const int Ways = 8;

    // 255.255.255.255 is never a source address (RFC 1122 §3.2.1.3), so (any port id, broadcast) marks an empty way.
    private const uint Broadcast = uint.MaxValue;
    private const ulong EmptyKey = ulong.MaxValue;

    private readonly ulong[] _keys;      // servicePortId << 32 | clientIp
    private readonly ulong[] _backends;  // backendIp << 16 | backendPort
    private readonly long[] _lastUsed;
    private readonly uint _bucketMask;
    private readonly ulong _seed;
    private int _count;

    /// <param name="capacity">Rounded up to a power of two, at least 8.</param>
    /// <param name="hashSeed">Random per process in production (HashDoS), fixed in tests.</param>
    public AffinityTable(int capacity, ulong hashSeed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, 1 << 28);
        var buckets = (int)BitOperations.RoundUpToPowerOf2((uint)((capacity + Ways - 1) / Ways));
        _keys = new ulong[buckets * Ways];
        Array.Fill(_keys, EmptyKey);
        _backends = new ulong[buckets * Ways];
        _lastUsed = new long[buckets * Ways];
        _bucketMask = (uint)buckets - 1;
        _seed = hashSeed;
    }

    public int Capacity => _keys.Length;
    public int Count => _count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Key(uint servicePortId, uint clientIp) => ((ulong)servicePortId << 32) | clientIp;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int BucketStart(ulong key) => (int)((uint)KeyedHash.Mix(key, 0, _seed) & _bucketMask) * Ways;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Find(int start, ulong key)
    {
        if (Vector256.IsHardwareAccelerated)
        {
            var k = Vector256.Create(key);
            var low = Vector256.Equals(Vector256.LoadUnsafe(ref _keys[start]), k).ExtractMostSignificantBits();
            var high = Vector256.Equals(Vector256.LoadUnsafe(ref _keys[start + 4]), k).ExtractMostSignificantBits();
            var match = low | (high << 4);
            return match == 0 ? -1 : start + BitOperations.TrailingZeroCount(match);
        }
        return FindScalar(start, key);
    }

    internal int FindScalar(int start, ulong key)
    {
        for (var w = 0; w < Ways; w++)
        {
            if (_keys[start + w] == key) return start + w;
        }
        return -1;
    }

    /// <summary>The client's backend for this service port, if it was set within the timeout.</summary>
    public bool TryGet(uint servicePortId, uint clientIp, long now, long timeoutTicks, out uint backendIp, out ushort backendPort)
    {
        var key = Key(servicePortId, clientIp);
        var slot = clientIp == Broadcast ? -1 : Find(BucketStart(key), key);
        // Unsigned compare: now - lastUsed in [0, timeout), so a time before lastUsed is a miss too.
        if (slot >= 0 && (ulong)(now - _lastUsed[slot]) < (ulong)timeoutTicks)
        {
            var backend = _backends[slot];
            backendIp = (uint)(backend >> 16);
            backendPort = (ushort)backend;
            return true;
        }
        backendIp = 0;
        backendPort = 0;
        return false;
    }

    /// <summary>Records or refreshes the client's backend; in a full bucket the least recently used way is recycled.</summary>
    public void Set(uint servicePortId, uint clientIp, uint backendIp, ushort backendPort, long now)
    {
        if (clientIp == Broadcast) return;
        var key = Key(servicePortId, clientIp);
        var start = BucketStart(key);
        var slot = Find(start, key);
        if (slot < 0)
        {
            slot = LeastRecentlyUsed(start);
            if (_keys[slot] == EmptyKey) _count++;
            _keys[slot] = key;
        }
        _backends[slot] = ((ulong)backendIp << 16) | backendPort;
        _lastUsed[slot] = now;
    }

    public void Remove(uint servicePortId, uint clientIp)
    {
        if (clientIp == Broadcast) return;
        var key = Key(servicePortId, clientIp);
        var slot = Find(BucketStart(key), key);
        if (slot < 0) return;
        _keys[slot] = EmptyKey;
        _count--;
    }

    /// <summary>An empty way if there is one, else the way used longest ago.</summary>
    private int LeastRecentlyUsed(int start)
    {
        var victim = start;
        var oldest = long.MaxValue;
        for (var slot = start; slot < start + Ways; slot++)
        {
            if (_keys[slot] == EmptyKey) return slot;
            if (_lastUsed[slot] < oldest)
            {
                oldest = _lastUsed[slot];
                victim = slot;
            }
        }
        return victim;
    }
}
