using FastOverlay.Tables.Services;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace FastOverlay.Tests.Tables.Services;

public class MaglevTablePropertyTests
{
    private static readonly int[] Primes = [7, 13, 251, 1021, 4093, 16381, 65537];

    /// <summary>Distinct names: arbitrary strings (any Unicode) made unique by a suffix, or pod-like addresses.</summary>
    private static Gen<string[]> Names(int min, int max) =>
        from n in Gen.Choose(min, max)
        from raw in Gen.ArrayOf(ArbMap.Default.GeneratorFor<NonNull<string>>(), n)
        from podLike in Gen.Elements(true, false)
        from salt in Gen.Choose(0, 1 << 20)
        select raw.Select((s, i) => podLike ? $"10.{salt & 0xFF}.{i / 250}.{i % 250 + 1}:{8000 + salt % 1000}" : $"{s.Get}#{i}").ToArray();

    internal sealed record BuildCase(string[] Names, int Size, int ShuffleSeed)
    {
        public override string ToString() => $"M={Size} N={Names.Length} shuffle={ShuffleSeed} [{string.Join(", ", Names.Take(8))}{(Names.Length > 8 ? ", …" : "")}]";
    }

    private static readonly Gen<BuildCase> BuildCases =
        from names in Names(1, 300)
        from size in Gen.Elements(Primes)
        from seed in Gen.Choose(0, int.MaxValue)
        select new BuildCase(names, size, seed);

    /// <summary>Equal weights: every backend owns ⌊M/N⌋ or ⌈M/N⌉ slots (including 0 or 1 when N &gt; M).</summary>
    [Property(MaxTest = 100)]
    public Property Every_backend_owns_floor_or_ceiling_of_M_over_N() => Prop.ForAll(Arb.From(BuildCases), c =>
    {
        var table = MaglevTable.Build(c.Names, c.Size);
        var owned = new int[c.Names.Length];
        foreach (var s in table.Slots) owned[s]++;
        var floor = c.Size / c.Names.Length;
        var ceiling = (c.Size + c.Names.Length - 1) / c.Names.Length;
        for (var b = 0; b < owned.Length; b++)
        {
            if (owned[b] != floor && owned[b] != ceiling)
                Assert.Fail($"backend {b} ({table.Backends[b]}) owns {owned[b]} slots, expected {floor} or {ceiling}");
        }
        Assert.Equal(c.Size, owned.Sum());
    });

    /// <summary>Cross-node consistency: the same set in any order builds byte-identical tables (Backends and Slots).</summary>
    [Property(MaxTest = 100)]
    public Property Shuffled_inputs_build_identical_tables() => Prop.ForAll(Arb.From(BuildCases), c =>
    {
        var shuffled = (string[])c.Names.Clone();
        new Random(c.ShuffleSeed).Shuffle(shuffled);
        var a = MaglevTable.Build(c.Names, c.Size);
        var b = MaglevTable.Build(shuffled, c.Size);
        Assert.Equal(a.Backends, b.Backends);
        Assert.True(a.Slots.SequenceEqual(b.Slots));
        Assert.Equal(c.Names.Order(StringComparer.Ordinal), a.Backends);
    });

    internal sealed record ChurnCase(string[] Names, int Size, int Victim, string Newcomer)
    {
        public override string ToString() => $"M={Size} victim={Victim} newcomer={Newcomer} names [{string.Join(", ", Names.Take(5))}, …]";
    }

    private static readonly Gen<ChurnCase> ChurnCases =
        from names in Names(100, 100)
        from size in Gen.Elements(16381, 65537)
        from victim in Gen.Choose(0, 99)
        from newcomer in Gen.Choose(0, int.MaxValue)
        select new ChurnCase(names, size, victim, $"newcomer-{newcomer}");

    /// <summary>
    /// Remove one of 100 random backends, or add one: slots move only if they belonged to the victim (went to the
    /// newcomer), plus a small extra. Per random set the extra has a tail: over 3000 sets it averaged 0.56 % with a
    /// maximum of 1.52 % at M = 65537, and 1.34 % with a maximum of 2.07 % at M = 16381, so the per-case bounds are
    /// 2 % and 3 %; the 1 % (1.5 %) bounds are held per case for realistic names and on average in MaglevTableTests.
    /// </summary>
    [Property(MaxTest = 20)]
    public Property Removing_or_adding_one_backend_moves_little_else() => Prop.ForAll(Arb.From(ChurnCases), c =>
    {
        var bound = c.Size == 65537 ? 0.02 : 0.03;
        var table = MaglevTable.Build(c.Names, c.Size);
        var victim = c.Names[c.Victim];
        var without = MaglevTable.Build(c.Names.Where(n => n != victim).ToArray(), c.Size);
        var extra = MaglevTableTests.ExtraMoves(table, without, victim);
        Assert.True(extra <= bound * c.Size, $"remove: {extra} extra slots of {c.Size}");
        if (!c.Names.Contains(c.Newcomer))
        {
            var with = MaglevTable.Build([.. c.Names, c.Newcomer], c.Size);
            extra = MaglevTableTests.ExtraMoves(table, with, c.Newcomer);
            Assert.True(extra <= bound * c.Size, $"add: {extra} extra slots of {c.Size}");
        }
    });

    /// <summary>Lookup is Slots[hash % Size] for any hash.</summary>
    [Property(MaxTest = 50)]
    public Property Lookup_matches_slots() => Prop.ForAll(Arb.From(BuildCases), ArbMap.Default.ArbFor<ulong>(), (c, h) =>
    {
        var table = MaglevTable.Build(c.Names, c.Size);
        Assert.Equal(table.Slots[(int)(h % (ulong)c.Size)], table.Lookup(h));
    });
}
