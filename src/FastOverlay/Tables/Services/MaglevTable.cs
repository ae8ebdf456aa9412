using System.Collections.ObjectModel;
using System.Runtime.CompilerServices;
using System.Text;

namespace FastOverlay.Tables.Services;

/// <summary>
/// A Maglev lookup table (Eisenbud et al., NSDI'16 §3.4): M slots, M prime, each holding the index of a backend,
/// built so that every backend owns ⌊M/N⌋ or ⌈M/N⌉ slots and removing or adding one backend moves few slots
/// besides its own (services.md §2.1: about 0.5–1.5 % of M extra). A new flow picks
/// <c>Slots[FlowHash % M]</c>; the conntrack table remembers the choice, and this table is what makes losing that
/// memory (table full, restart, a flow arriving on another node) survivable: every node computes the same answer.
///
/// Immutable once built. Building is control plane (it allocates); a reader keeps a reference and never locks,
/// and an update builds a new table and swaps the reference, as the route table does.
/// </summary>
public sealed class MaglevTable
{
    /// <summary>Cilium's default (pkg/maglev DefaultTableSize): balanced within 1 % up to ~160 backends.</summary>
    public const int DefaultSize = 16381;
    /// <summary>Katran's and Envoy's default: ~650 backends within 1 %.</summary>
    public const int LargeSize = 65537;
    public const int MinSize = 7;
    public const int MaxBackends = ushort.MaxValue;

    private const ushort EmptySlot = ushort.MaxValue; // never a backend index: there are at most 65535 backends

    private readonly ushort[] _slots;

    private MaglevTable(ReadOnlyCollection<string> backends, ushort[] slots)
    {
        Backends = backends;
        _slots = slots;
    }

    /// <summary>Backend names, sorted ordinally; <see cref="Slots"/> holds indices into this list.</summary>
    public IReadOnlyList<string> Backends { get; }

    public int Size => _slots.Length;

    public ReadOnlySpan<ushort> Slots => _slots;

    /// <summary>The backend index for a flow: <c>Slots[flowHash % Size]</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Lookup(ulong flowHash) => _slots[(int)(flowHash % (ulong)_slots.Length)];

    /// <summary>
    /// Fixed-seed hash of (client address, client port, protocol). The destination is left out on purpose, as in
    /// Cilium's lb4_select_backend_id_maglev: a client reaching a service by its ClusterIP, a NodePort or a
    /// LoadBalancer address lands on the same backend. With sessionAffinity: ClientIP the caller passes port 0,
    /// so the choice depends on the client address alone. Stable across nodes and .NET versions (pinned by tests).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong FlowHash(uint sourceIp, ushort sourcePort, byte protocol) => MaglevHash.Flow(sourceIp, sourcePort, protocol);

    public static bool IsPrime(int m)
    {
        if (m < 2) return false;
        if (m % 2 == 0) return m == 2;
        for (var d = 3; (long)d * d <= m; d += 2)
        {
            if (m % d == 0) return false;
        }
        return true;
    }

    /// <summary>
    /// Builds the table for a set of backends. The names are sorted (ordinal) first, as Cilium does, so every node
    /// builds a byte-identical table whatever order the endpoints arrived in.
    /// </summary>
    /// <param name="backendNames">1..65535 distinct names, e.g. "10.244.1.5:8080" (the name is the identity:
    /// a backend keeps its slots' preferences across rebuilds only if its name is unchanged).</param>
    /// <param name="size">A prime of at least 7; M ≥ 100·N keeps the balance within 1 % (the paper's rule).</param>
    public static MaglevTable Build(IReadOnlyList<string> backendNames, int size = DefaultSize)
    {
        ArgumentNullException.ThrowIfNull(backendNames);
        if (size < MinSize || !IsPrime(size))
            throw new ArgumentException($"Maglev table size must be a prime of at least {MinSize}, not {size}", nameof(size));
        var n = backendNames.Count;
        if (n is < 1 or > MaxBackends)
            throw new ArgumentException($"a Maglev table needs 1..{MaxBackends} backends, not {n}", nameof(backendNames));

        var names = new string[n];
        for (var i = 0; i < n; i++)
            names[i] = backendNames[i] ?? throw new ArgumentException($"backend name {i} is null", nameof(backendNames));
        Array.Sort(names, StringComparer.Ordinal);
        for (var i = 1; i < n; i++)
        {
            if (string.Equals(names[i - 1], names[i], StringComparison.Ordinal))
                throw new ArgumentException($"backend name '{names[i]}' appears twice", nameof(backendNames));
        }

        var slots = Populate(names, (uint)size);
        return new MaglevTable(Array.AsReadOnly(names), slots);
    }

    /// <summary>
    /// The paper's population loop. Backend i's preference list is (offset_i + j·skip_i) mod M; since M is prime
    /// and 1 ≤ skip &lt; M, it visits every slot once. Backends take turns, each claiming its next preferred empty slot,
    /// until all M are taken. As in Katran's MaglevBase, only (skip, next) is stored per backend, next being the
    /// current position in its list (it starts at offset): O(N) memory instead of the N·M permutation matrix.
    /// Expected work is O(M log M) steps (the coupon-collector tail); about 1 ms for M = 65537, N = 1000.
    /// </summary>
    private static ushort[] Populate(string[] names, uint m)
    {
        var n = names.Length;
        var skip = new uint[n];
        var next = new uint[n];
        var utf8 = new byte[64];
        for (var i = 0; i < n; i++)
        {
            var length = Encoding.UTF8.GetByteCount(names[i]);
            if (length > utf8.Length) utf8 = new byte[length];
            Encoding.UTF8.GetBytes(names[i], utf8);
            var bytes = utf8.AsSpan(0, length);
            next[i] = (uint)(MaglevHash.Hash(bytes, MaglevHash.OffsetSeed) % m);
            skip[i] = (uint)(MaglevHash.Hash(bytes, MaglevHash.SkipSeed) % (m - 1)) + 1;
        }

        var slots = new ushort[m];
        Array.Fill(slots, EmptySlot);
        var filled = 0u;
        while (true)
        {
            for (var i = 0; i < n; i++)
            {
                // Both below m, so the sum fits a uint for any int-sized m.
                var c = next[i];
                var s = skip[i];
                while (slots[c] != EmptySlot)
                {
                    c += s;
                    if (c >= m) c -= m;
                }
                slots[c] = (ushort)i;
                c += s;
                next[i] = c >= m ? c - m : c;
                if (++filled == m) return slots;
            }
        }
    }
}
