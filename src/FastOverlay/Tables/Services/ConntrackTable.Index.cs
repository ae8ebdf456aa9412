using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FastOverlay.Tables.Services;

/// <summary>
/// The conntrack index: 8-way buckets of 8-byte words {tag: 32 | flow·2 + direction + 1: 32}, 0 meaning empty;
/// each key in one of two buckets. One bucket is one 64-byte line, compared in two AVX2 instructions.
/// </summary>
public sealed unsafe partial class ConntrackTable
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong Hash(in FlowKey key) => KeyedHash.Mix(key.Addresses, key.PortsAndProtocol, _seed);

    // Never 0, so an empty word (0) never matches a tag; costs one bit of the 32.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Tag(ulong hash) => (uint)(hash >> 32) | 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint Primary(ulong hash) => (uint)hash & _bucketMask;

    // Derived from the primary bucket and the tag (as in cuckoo filters), so both come from one hash.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint Secondary(ulong hash) => ((uint)hash ^ BitOperations.RotateRight(Tag(hash) * 0x9E37_79B1u, 16)) & _bucketMask;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong* Bucket(uint bucket) => _index + (nuint)bucket * Ways;

    /// <summary>Bit w set when (words[w] &amp; mask) == value, for the 8 words of a bucket.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint Match(ulong* words, ulong mask, ulong value)
    {
        if (Vector256.IsHardwareAccelerated)
        {
            var m = Vector256.Create(mask);
            var v = Vector256.Create(value);
            var low = Vector256.Equals(Vector256.Load(words) & m, v).ExtractMostSignificantBits();
            var high = Vector256.Equals(Vector256.Load(words + 4) & m, v).ExtractMostSignificantBits();
            return low | (high << 4);
        }
        return MatchScalar(words, mask, value);
    }

    internal static uint MatchScalar(ulong* words, ulong mask, ulong value)
    {
        var bits = 0u;
        for (var w = 0; w < Ways; w++)
        {
            if ((words[w] & mask) == value) bits |= 1u << w;
        }
        return bits;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Word(ulong hash, int flow, bool reply) =>
        ((ulong)Tag(hash) << 32) | (((uint)flow << 1) + (reply ? 1u : 0u) + 1);

    /// <summary>
    /// An empty way for a key, in the emptier of its two buckets (the power of two choices keeps the fullest
    /// bucket near the average). If both are full, an expired flow indexed there is reclaimed to make room.
    /// </summary>
    private ulong* ClaimWay(ulong hash, long now)
    {
        var primary = Bucket(Primary(hash));
        var secondary = Bucket(Secondary(hash));
        for (var pass = 0; pass < 2; pass++)
        {
            var emptyPrimary = Match(primary, ulong.MaxValue, 0);
            var emptySecondary = secondary == primary ? 0 : Match(secondary, ulong.MaxValue, 0);
            if (emptyPrimary != 0 && BitOperations.PopCount(emptyPrimary) >= BitOperations.PopCount(emptySecondary))
                return primary + BitOperations.TrailingZeroCount(emptyPrimary);
            if (emptySecondary != 0)
                return secondary + BitOperations.TrailingZeroCount(emptySecondary);
            if (pass == 1) break;
            var reclaimed = ReclaimFromBucket(primary, now);
            if (reclaimed < 0) reclaimed = ReclaimFromBucket(secondary, now);
            if (reclaimed < 0) break;
            _free[_freeCount++] = reclaimed;
        }
        return null;
    }

    private void RemoveWord(ulong hash, int f, bool reply)
    {
        var word = Word(hash, f, reply);
        var primary = Bucket(Primary(hash));
        var found = Match(primary, ulong.MaxValue, word);
        if (found != 0)
        {
            Volatile.Write(ref primary[BitOperations.TrailingZeroCount(found)], 0);
            return;
        }
        var secondary = Bucket(Secondary(hash));
        found = Match(secondary, ulong.MaxValue, word);
        if (found != 0) Volatile.Write(ref secondary[BitOperations.TrailingZeroCount(found)], 0);
    }
}
