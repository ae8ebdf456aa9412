using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FastOverlay.Wire;

namespace FastOverlay.Tables;

/// <summary>
/// An immutable longest-prefix-match table over IPv4, DIR-24-8 as in DPDK's rte_lpm: a 2^24-entry first level
/// indexed by the top 24 address bits, and 256-entry second-level groups for prefixes longer than /24. A lookup is
/// one read for /0–/24 and two for /25–/32, whatever the number of routes.
///
/// Unlike rte_lpm the first level is split into 256 chunks of 64K entries (one per first octet). Chunks are
/// immutable once published and shared between versions, so an update copies only the chunks it touches
/// (256 KiB each) instead of 64 MiB, and a table of pod CIDRs inside 10/8 costs one chunk. The chunk directory
/// is 2 KiB and stays in L1, so it adds no memory access in practice. All arrays live on the pinned object heap
/// so the batch lookup can gather through raw addresses while the GC still frees unreferenced versions.
///
/// Readers take a reference to a table and use it; writers build a new one with <see cref="RouteTableBuilder"/>
/// and swap the reference. A reader never locks and never sees a half-applied update.
/// </summary>
public sealed unsafe partial class RouteTable
{
    /// <summary>Returned for addresses no prefix covers.</summary>
    public const uint NoRoute = uint.MaxValue;
    /// <summary>Route values are 24 bits: the entry keeps the other 8 for flags and the prefix length.</summary>
    public const uint MaxValue = 0xFF_FFFF;

    internal const uint ValidBit = 0x8000_0000;
    internal const uint ExtendedBit = 0x4000_0000;
    internal const int DepthShift = 24;
    internal const uint DepthMask = 0x3F;
    internal const uint ValueMask = 0xFF_FFFF;
    internal const int ChunkBits = 16;
    internal const int ChunkEntries = 1 << ChunkBits;
    internal const int ChunkCount = 256;
    internal const int GroupEntries = 256;

    internal readonly uint[][] Chunks;
    internal readonly nint[] ChunkAddresses;
    internal readonly long[] ChunkUniform;
    internal readonly uint[]?[] Groups;
    internal readonly nint[] GroupAddresses;
    internal readonly Dictionary<Ipv4Prefix, uint> Rules;
    private readonly nint* _chunkDirectory;
    private readonly nint* _groupDirectory;
    private readonly bool _prefetch;

    /// <summary>
    /// Batch lookups prefetch when more than this many 256 KiB chunks hold routes (more than fits in L2): measured
    /// in RouteLookupBenchmarks, prefetching halves the cost of a 1M-route table and costs ~0.5 ns per lookup in cache.
    /// </summary>
    internal const int PrefetchAboveChunks = 8;

    public static readonly RouteTable Empty = RouteTableBuilder.CreateEmpty();

    internal RouteTable(uint[][] chunks, long[] chunkUniform, uint[]?[] groups, Dictionary<Ipv4Prefix, uint> rules)
    {
        Chunks = chunks;
        ChunkUniform = chunkUniform;
        Groups = groups;
        Rules = rules;
        ChunkAddresses = GC.AllocateArray<nint>(ChunkCount, pinned: true);
        for (var i = 0; i < ChunkCount; i++)
            ChunkAddresses[i] = (nint)Unsafe.AsPointer(ref chunks[i][0]);
        GroupAddresses = GC.AllocateArray<nint>(Math.Max(groups.Length, 1), pinned: true);
        for (var i = 0; i < groups.Length; i++)
            GroupAddresses[i] = groups[i] is { } g ? (nint)Unsafe.AsPointer(ref g[0]) : 0;
        _chunkDirectory = (nint*)Unsafe.AsPointer(ref ChunkAddresses[0]);
        var distinctChunks = 0;
        foreach (var uniform in chunkUniform) distinctChunks += uniform < 0 ? 1 : 0;
        _prefetch = distinctChunks > PrefetchAboveChunks;
        _groupDirectory = (nint*)Unsafe.AsPointer(ref GroupAddresses[0]);
    }

    public int Count => Rules.Count;

    /// <summary>The routes as a list, for display and reconciliation; not for the data path.</summary>
    public IReadOnlyDictionary<Ipv4Prefix, uint> Routes => Rules;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Lookup(uint address)
    {
        var entry = ((uint*)_chunkDirectory[address >> 24])[(address >> 8) & 0xFFFF];
        if ((entry & ExtendedBit) != 0)
            entry = ((uint*)_groupDirectory[entry & ValueMask])[address & 0xFF];
        return (entry & ValidBit) != 0 ? entry & ValueMask : NoRoute;
    }

    /// <summary>Exact-match read of the rule set (control plane).</summary>
    public bool TryGetRoute(Ipv4Prefix prefix, out uint value) => Rules.TryGetValue(prefix, out value);

    /// <summary>
    /// Resolves a whole burst. Uses AVX2 gathers where the CPU has them, four independent scalar lookups
    /// otherwise; both give identical answers (a property test holds them to it).
    /// </summary>
    public void Lookup(ReadOnlySpan<uint> addresses, Span<uint> values)
    {
        if (values.Length < addresses.Length) ThrowValuesTooShort();
        Prefetch(addresses);
        if (Avx2.IsSupported && addresses.Length >= 8)
            LookupAvx2(addresses, values);
        else
            LookupScalar(addresses, values);
    }

    /// <summary>
    /// Touches the first-level entry of every address before any is read. When the table is larger than the caches
    /// (a million routes spread over the address space) each lookup is a DRAM access; issuing them all first lets
    /// the core keep as many misses in flight as it has fill buffers instead of waiting for them one by one (DPDK
    /// l3fwd prefetches for the same reason). In cache it costs a fraction of a nanosecond per address.
    /// </summary>
    private void Prefetch(ReadOnlySpan<uint> addresses)
    {
        if (!_prefetch || !Sse.IsSupported || addresses.Length < 16) return;
        foreach (var a in addresses)
            Sse.Prefetch0((uint*)_chunkDirectory[a >> 24] + ((a >> 8) & 0xFFFF));
    }

    /// <summary>The scalar twin of the vector lookup: four independent lookups per step so their loads overlap.</summary>
    public void LookupScalar(ReadOnlySpan<uint> addresses, Span<uint> values)
    {
        if (values.Length < addresses.Length) ThrowValuesTooShort();
        Prefetch(addresses);
        var i = 0;
        for (; i + 4 <= addresses.Length; i += 4)
        {
            var a0 = addresses[i];
            var a1 = addresses[i + 1];
            var a2 = addresses[i + 2];
            var a3 = addresses[i + 3];
            var e0 = ((uint*)_chunkDirectory[a0 >> 24])[(a0 >> 8) & 0xFFFF];
            var e1 = ((uint*)_chunkDirectory[a1 >> 24])[(a1 >> 8) & 0xFFFF];
            var e2 = ((uint*)_chunkDirectory[a2 >> 24])[(a2 >> 8) & 0xFFFF];
            var e3 = ((uint*)_chunkDirectory[a3 >> 24])[(a3 >> 8) & 0xFFFF];
            values[i] = Resolve(e0, a0);
            values[i + 1] = Resolve(e1, a1);
            values[i + 2] = Resolve(e2, a2);
            values[i + 3] = Resolve(e3, a3);
        }
        for (; i < addresses.Length; i++)
            values[i] = Lookup(addresses[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint Resolve(uint entry, uint address)
    {
        if ((entry & ExtendedBit) != 0)
            entry = ((uint*)_groupDirectory[entry & ValueMask])[address & 0xFF];
        return (entry & ValidBit) != 0 ? entry & ValueMask : NoRoute;
    }

    private void LookupAvx2(ReadOnlySpan<uint> addresses, Span<uint> values)
    {
        var i = 0;
        fixed (uint* src = addresses)
        fixed (uint* dst = values)
        {
            var offsetMask = Vector256.Create(0xFFFFu);
            var validBit = Vector256.Create(ValidBit);
            var extendedBit = Vector256.Create(ExtendedBit);
            var valueMask = Vector256.Create(ValueMask);
            var noRoute = Vector256.Create(NoRoute);
            var buffer = stackalloc uint[8];
            for (; i + 8 <= addresses.Length; i += 8)
            {
                var a = Avx.LoadVector256(src + i);
                var octet = Avx2.ShiftRightLogical(a, 24);
                var offset = Avx2.And(Avx2.ShiftRightLogical(a, 8), offsetMask);
                Vector256<uint> entries;
                // Pod traffic almost always stays inside one /8 (the cluster network): one chunk, one gather.
                if (Avx.TestZ(Avx2.Xor(octet, Vector256.Create(octet.ToScalar())), Vector256<uint>.AllBitsSet))
                {
                    entries = Avx2.GatherVector256((uint*)_chunkDirectory[octet.ToScalar()], offset.AsInt32(), 4);
                }
                else
                {
                    // Two-level gather: chunk base addresses first, then one entry from each.
                    var baseLo = Avx2.GatherVector256((long*)_chunkDirectory, octet.GetLower().AsInt32(), 8);
                    var baseHi = Avx2.GatherVector256((long*)_chunkDirectory, octet.GetUpper().AsInt32(), 8);
                    var addrLo = Avx2.Add(baseLo, Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int64(offset.GetLower()), 2));
                    var addrHi = Avx2.Add(baseHi, Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int64(offset.GetUpper()), 2));
                    var lo = Avx2.GatherVector128((uint*)null, addrLo, 1);
                    var hi = Avx2.GatherVector128((uint*)null, addrHi, 1);
                    entries = Vector256.Create(lo, hi);
                }
                var extended = Avx2.CompareEqual(Avx2.And(entries, extendedBit), extendedBit);
                if (!Avx.TestZ(extended, extended))
                {
                    // Second-level groups only for /25–/32 routes: rare enough for a scalar fix-up per lane.
                    var mask = (uint)Avx.MoveMask(extended.AsSingle());
                    Avx.Store(buffer, entries);
                    while (mask != 0)
                    {
                        var lane = BitOperations.TrailingZeroCount(mask);
                        mask &= mask - 1;
                        buffer[lane] = ((uint*)_groupDirectory[buffer[lane] & ValueMask])[src[i + lane] & 0xFF];
                    }
                    entries = Avx.LoadVector256(buffer);
                }
                var valid = Avx2.CompareEqual(Avx2.And(entries, validBit), validBit);
                Avx.Store(dst + i, Avx2.BlendVariable(noRoute, Avx2.And(entries, valueMask), valid));
            }
        }
        for (; i < addresses.Length; i++)
            values[i] = Lookup(addresses[i]);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowValuesTooShort() => throw new ArgumentException("values must be at least as long as addresses");
}
