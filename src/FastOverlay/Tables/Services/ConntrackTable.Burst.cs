using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace FastOverlay.Tables.Services;

/// <summary>
/// Burst lookups. A table of a million flows is ~200 MB: each lookup is two dependent cache misses (the bucket,
/// then the flow), ~100 ns each, and one at a time the core waits for them in turn. Looking a burst up in
/// stages, as DPDK's rte_hash_lookup_bulk does, keeps many misses in flight instead: hash every key of a chunk
/// and prefetch its bucket; then read each bucket and prefetch the flow its first tag match names; then look
/// each key up, its lines (usually) in cache. Same answers as one-at-a-time TryFind (a test holds them to it).
/// </summary>
public sealed unsafe partial class ConntrackTable
{
    // Enough misses in flight to cover DRAM latency (a core has ~20 fill buffers) while the chunk's lines stay in L1.
    private const int BurstChunk = 32;

    /// <summary>
    /// Below this footprint (flows + index) the table lives in L2 and staging only costs: measured with 1k flows
    /// (192 KB) the staged burst was ~20 % slower than one at a time, with 10k (2.3 MB) already faster, with 100k
    /// and 1M about twice as fast (ConntrackBenchmarks; an AMD EPYC VM).
    /// </summary>
    internal const long StageAboveBytes = 1 << 20;

    /// <summary>
    /// Looks up every key of a burst. Any thread. For key i: <paramref name="indices"/>[i] is the flow's index or
    /// -1, and on a hit <paramref name="isReply"/>[i] and <paramref name="flows"/>[i] are as TryFind gives them.
    /// Returns the number of hits.
    /// </summary>
    public int TryFind(ReadOnlySpan<FlowKey> keys, long now, Span<int> indices, Span<bool> isReply, Span<ConntrackFlow> flows)
    {
        if (indices.Length < keys.Length || isReply.Length < keys.Length || flows.Length < keys.Length) ThrowOutputTooShort();
        var hits = 0;
        if (!_stageBursts)
        {
            for (var i = 0; i < keys.Length; i++)
                hits += TryFind(keys[i], now, out indices[i], out isReply[i], out flows[i]) ? 1 : 0;
            return hits;
        }
        Span<ulong> hashes = stackalloc ulong[BurstChunk];
        for (var start = 0; start < keys.Length; start += BurstChunk)
        {
            var chunk = keys.Slice(start, Math.Min(BurstChunk, keys.Length - start));
            for (var i = 0; i < chunk.Length; i++)
            {
                hashes[i] = Hash(chunk[i]);
                PrefetchLine(Bucket(Primary(hashes[i])));
            }
            for (var i = 0; i < chunk.Length; i++) PrefetchCandidate(hashes[i]);
            for (var i = 0; i < chunk.Length; i++)
            {
                var found = TryFind(hashes[i], chunk[i], now, out indices[start + i], out isReply[start + i], out flows[start + i]);
                hits += found ? 1 : 0;
            }
        }
        return hits;
    }

    /// <summary>
    /// Starts loading the key's primary bucket: for a caller that walks its own burst (prefetch every key, then
    /// look each up). The burst TryFind goes further.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(in FlowKey key) => PrefetchLine(Bucket(Primary(Hash(key))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchLine(void* line)
    {
        if (Sse.IsSupported) Sse.Prefetch0(line);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PrefetchCandidate(ulong hash)
    {
        var words = Bucket(Primary(hash));
        var matches = Match(words, TagMask, (ulong)Tag(hash) << 32);
        if (matches == 0) return;
        var word = Volatile.Read(ref words[BitOperations.TrailingZeroCount(matches)]);
        if ((uint)word != 0) PrefetchLine(_entries + (((uint)word - 1) >> 1));
    }

    [DoesNotReturn]
    private static void ThrowOutputTooShort() =>
        throw new ArgumentException("the output spans must be at least as long as the keys");
}
