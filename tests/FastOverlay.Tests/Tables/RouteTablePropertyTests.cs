using FastOverlay.Tables;
using FastOverlay.Wire;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FastOverlay.Tests.Tables;

public class RouteTablePropertyTests
{
    private static void AssertAgrees(RouteTable table, NaiveLpm reference, AddressProbe[] probes, string context)
    {
        Assert.Equal(reference.Count, table.Count);
        foreach (var (prefix, value) in reference.Rules)
        {
            Assert.True(table.TryGetRoute(prefix, out var got), $"{context}: rule {prefix} missing from Routes");
            Assert.Equal(value, got);
        }
        var prefixes = reference.Prefixes;
        foreach (var probe in probes)
        {
            var address = probe.Resolve(prefixes);
            var expected = reference.Lookup(address);
            var actual = table.Lookup(address);
            if (expected != actual)
                Assert.Fail($"{context}: Lookup({RouteGen.Hex(address)}) = {actual:X}, reference {expected:X} (probe {probe})");
        }
    }

    /// <summary>
    /// Property 1: through any sequence of adds, replaces and removes, every published version answers like a
    /// linear scan, and (copy on write) every earlier version still answers like its own snapshot at the end.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property MatchesNaiveLpmThroughUpdates() => Prop.ForAll(RouteGen.ScenarioArb(maxOps: 50, probes: 200), scenario =>
    {
        var builder = new RouteTableBuilder(RouteTable.Empty);
        var reference = new NaiveLpm();
        var versions = new List<(RouteTable Table, NaiveLpm Reference)> { (RouteTable.Empty, new NaiveLpm()) };
        for (var step = 0; step < scenario.Ops.Length; step++)
        {
            var op = scenario.Ops[step];
            var existing = reference.Prefixes;
            var picked = existing.Count > 0 ? existing[(int)((uint)op.Pick % (uint)existing.Count)] : op.Prefix;
            switch (op.Kind)
            {
                case RouteOpKind.Add:
                    builder.Add(op.Prefix, op.Value);
                    reference.Add(op.Prefix, op.Value);
                    break;
                case RouteOpKind.Replace:
                    builder.Add(picked, op.Value);
                    reference.Add(picked, op.Value);
                    break;
                case RouteOpKind.Remove:
                    Assert.Equal(reference.Remove(picked), builder.Remove(picked));
                    break;
                case RouteOpKind.RemoveMissing:
                    var expected = reference.Remove(op.Prefix);
                    Assert.Equal(expected, builder.Remove(op.Prefix));
                    break;
            }
            Assert.Equal(reference.Count, builder.Count);
            if (op.BuildAfter || step == scenario.Ops.Length - 1)
            {
                var table = builder.Build();
                AssertAgrees(table, reference, scenario.Probes, $"after step {step} ({op})");
                versions.Add((table, reference.Clone()));
                if (op.FreshBuilder) builder = new RouteTableBuilder(table);
            }
        }
        for (var v = 0; v < versions.Count; v++)
            AssertAgrees(versions[v].Table, versions[v].Reference, scenario.Probes, $"version {v} re-checked at the end");
    });

    private static Gen<uint[]> Addresses((Ipv4Prefix Prefix, uint Value)[] rules)
    {
        var prefixes = rules.Select(r => r.Prefix).ToArray();
        var inside = prefixes.Length == 0
            ? RouteGen.AnyUint
            : from p in Gen.Elements(prefixes) from r in RouteGen.AnyUint select p.Address | (r & ~p.Mask);
        var mixed = Gen.Frequency((1, RouteGen.AnyUint), (3, inside));
        // One first octet for every lane: the single-gather path. Taken from a rule when there is one.
        var sameOctet =
            from octet in prefixes.Length == 0 ? RouteGen.AnyUint : Gen.OneOf(RouteGen.AnyUint, inside)
            from n in Gen.Choose(0, 300)
            from arr in Gen.ArrayOf(mixed, n)
            select arr.Select(a => (octet & 0xFF00_0000) | (a & 0x00FF_FFFF)).ToArray();
        var anyOctet = from n in Gen.Choose(0, 300) from arr in Gen.ArrayOf(mixed, n) select arr;
        return Gen.OneOf(sameOctet, anyOctet);
    }

    internal sealed record BatchCase((Ipv4Prefix Prefix, uint Value)[] Rules, uint[] Addresses, int Offset)
    {
        public override string ToString() =>
            $"rules [{string.Join(", ", Rules.Select(r => $"{r.Prefix}={r.Value}"))}] offset {Offset} addresses [{string.Join(" ", Addresses.Select(a => a.ToString("X8")))}]";
    }

    private static readonly Gen<BatchCase> BatchCases =
        from rules in RouteGen.Rules(40)
        from addresses in Addresses(rules)
        from offset in Gen.Choose(0, 7)
        select new BatchCase(rules, addresses, offset);

    /// <summary>
    /// Property 2: the burst lookup (AVX2 where the CPU has it), its scalar twin and the single lookup agree,
    /// and all match the reference, for any length 0..300, start alignment, one-octet or mixed bursts.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property BatchEqualsScalarEqualsSingle() => Prop.ForAll(Arb.From(BatchCases), c =>
    {
        var table = RouteGen.Build(c.Rules, out var reference);
        // Slice at an offset so the vector loads are not always 32-byte aligned.
        var backing = new uint[c.Addresses.Length + c.Offset];
        c.Addresses.CopyTo(backing, c.Offset);
        ReadOnlySpan<uint> addresses = backing.AsSpan(c.Offset);

        const uint Sentinel = 0xDEAD_BEEF;
        var batch = new uint[addresses.Length + 3];
        var scalar = new uint[addresses.Length + 3];
        Array.Fill(batch, Sentinel);
        Array.Fill(scalar, Sentinel);
        table.Lookup(addresses, batch);
        table.LookupScalar(addresses, scalar);
        for (var i = 0; i < addresses.Length; i++)
        {
            var single = table.Lookup(addresses[i]);
            var expected = reference.Lookup(addresses[i]);
            if (single != expected || batch[i] != single || scalar[i] != single)
                Assert.Fail($"lane {i} address {RouteGen.Hex(addresses[i])}: batch {batch[i]:X} scalar {scalar[i]:X} single {single:X} reference {expected:X}");
        }
        // Nothing is written past the burst.
        for (var i = addresses.Length; i < batch.Length; i++)
        {
            Assert.Equal(Sentinel, batch[i]);
            Assert.Equal(Sentinel, scalar[i]);
        }
    });

    internal sealed record ForkCase((Ipv4Prefix Prefix, uint Value)[] Base, RouteScenario Left, RouteScenario Right);

    private static readonly Gen<ForkCase> ForkCases =
        from baseRules in RouteGen.Rules(30)
        from left in RouteGen.Scenario(20, 150)
        from right in RouteGen.Scenario(20, 0)
        select new ForkCase(baseRules, left, right);

    private static NaiveLpm Apply(RouteTableBuilder builder, NaiveLpm reference, RouteOp[] ops)
    {
        foreach (var op in ops)
        {
            var existing = reference.Prefixes;
            var target = op.Kind is RouteOpKind.Replace or RouteOpKind.Remove && existing.Count > 0
                ? existing[(int)((uint)op.Pick % (uint)existing.Count)]
                : op.Prefix;
            if (op.Kind is RouteOpKind.Add or RouteOpKind.Replace)
            {
                builder.Add(target, op.Value);
                reference.Add(target, op.Value);
            }
            else
            {
                Assert.Equal(reference.Remove(target), builder.Remove(target));
            }
        }
        return reference;
    }

    /// <summary>
    /// Property 3: copy-on-write isolation. v1 is built; two builders fork from it (v2, v3) and one of them keeps
    /// writing after its Build (v4). v1, v2 and v3 must each still answer like their own snapshot.
    /// </summary>
    [Property(MaxTest = 60)]
    public Property OldVersionsAreUnaffectedByLaterBuilds() => Prop.ForAll(Arb.From(ForkCases), c =>
    {
        var v1 = RouteGen.Build(c.Base, out var ref1);
        var probes = c.Left.Probes;

        var leftBuilder = new RouteTableBuilder(v1);
        var ref2 = Apply(leftBuilder, ref1.Clone(), c.Left.Ops);
        var v2 = leftBuilder.Build();

        var rightBuilder = new RouteTableBuilder(v1);
        var ref3 = Apply(rightBuilder, ref1.Clone(), c.Right.Ops);
        var v3 = rightBuilder.Build();

        // The left builder goes on after publishing v2: its writes must copy again, not touch v2.
        var ref4 = Apply(leftBuilder, ref2.Clone(), c.Right.Ops);
        var v4 = leftBuilder.Build();

        AssertAgrees(v1, ref1, probes, "v1");
        AssertAgrees(v2, ref2, probes, "v2");
        AssertAgrees(v3, ref3, probes, "v3");
        AssertAgrees(v4, ref4, probes, "v4");
        // Probes picked from v1's rules too, so v1's own prefixes are hit even if later versions removed them.
        var v1Probes = probes.Select(p => p with { Kind = p.Kind == ProbeKind.Uniform ? ProbeKind.Inside : p.Kind }).ToArray();
        AssertAgrees(v1, ref1, v1Probes, "v1 (own prefixes)");
        foreach (var (table, reference, name) in new[] { (v2, ref2, "v2"), (v3, ref3, "v3"), (v4, ref4, "v4") })
        {
            // Addresses inside v1's rules, looked up in the later versions, must still follow those versions.
            foreach (var p in v1Probes)
            {
                var a = p.Resolve(ref1.Prefixes);
                Assert.True(reference.Lookup(a) == table.Lookup(a), $"{name}: Lookup({RouteGen.Hex(a)})");
            }
        }
    });
}
