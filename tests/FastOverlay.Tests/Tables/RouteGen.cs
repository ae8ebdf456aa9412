using System.Text;
using FastOverlay.Tables;
using FastOverlay.Wire;
using FsCheck;
using FsCheck.Fluent;

namespace FastOverlay.Tests.Tables;

internal enum RouteOpKind : byte { Add, Replace, Remove, RemoveMissing }

/// <summary>
/// One step of a route-table scenario. Replace and Remove pick an existing rule by <see cref="Pick"/> when there
/// is one (otherwise they act on <see cref="Prefix"/>), so the generated sequence stays meaningful whatever
/// came before. <see cref="BuildAfter"/> publishes a table after the step; <see cref="FreshBuilder"/> then
/// continues from a new builder over that table instead of reusing the old one.
/// </summary>
internal readonly record struct RouteOp(RouteOpKind Kind, Ipv4Prefix Prefix, uint Value, int Pick, bool BuildAfter, bool FreshBuilder)
{
    public override string ToString() =>
        $"{Kind} {Prefix}={Value} pick={Pick}{(BuildAfter ? " build" : "")}{(BuildAfter && FreshBuilder ? "+fresh" : "")}";
}

/// <summary>How an address under test is chosen: uniformly, inside a current rule, or on a rule's edge.</summary>
internal enum ProbeKind : byte { Uniform, Inside, Edge }

internal readonly record struct AddressProbe(ProbeKind Kind, uint Random, int Pick)
{
    public uint Resolve(IReadOnlyList<Ipv4Prefix> prefixes)
    {
        if (Kind == ProbeKind.Uniform || prefixes.Count == 0) return Random;
        var p = prefixes[(int)((uint)Pick % (uint)prefixes.Count)];
        if (Kind == ProbeKind.Inside) return p.Address | (Random & ~p.Mask);
        // Edges: first, last, one before the first, one past the last (wrapping at 0 and 2^32-1 on purpose).
        return (Random & 3) switch
        {
            0 => p.First,
            1 => p.Last,
            2 => p.First - 1,
            _ => p.Last + 1,
        };
    }

    public override string ToString() => $"{Kind}:{Random:X8}/{Pick}";
}

internal sealed record RouteScenario(RouteOp[] Ops, AddressProbe[] Probes)
{
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(Ops.Length).Append(" ops [");
        sb.AppendJoin("; ", Ops);
        sb.Append("] ").Append(Probes.Length).Append(" probes [");
        sb.AppendJoin(" ", Probes);
        return sb.Append(']').ToString();
    }
}

internal static class RouteGen
{
    public static readonly Gen<uint> AnyUint =
        Gen.Choose(0, 0xFFFF).SelectMany(_ => Gen.Choose(0, 0xFFFF), (hi, lo) => ((uint)hi << 16) | (uint)lo);

    /// <summary>Every length 0..32, weighted towards /25–/32 (second-level groups) with a real share of /0–/8 (whole chunks).</summary>
    public static readonly Gen<int> Length = Gen.Frequency(
        (3, Gen.Choose(0, 8)),
        (3, Gen.Choose(9, 24)),
        (6, Gen.Choose(25, 32)));

    public static readonly Gen<uint> Value = Gen.Frequency(
        (8, Gen.Choose(0, (int)RouteTable.MaxValue).Select(v => (uint)v)),
        (1, Gen.Constant(RouteTable.MaxValue)),
        (1, Gen.Constant(0u)));

    /// <summary>
    /// A few anchor addresses per scenario so prefixes nest and collide (random prefixes almost never overlap);
    /// some anchors sit at the ends of the address space and in 10/8.
    /// </summary>
    public static readonly Gen<uint[]> Anchors = Gen.Choose(1, 4).SelectMany(n =>
        Gen.ArrayOf(Gen.Frequency(
            (6, AnyUint),
            (1, Gen.Constant(0u)),
            (1, Gen.Constant(uint.MaxValue)),
            (2, AnyUint.Select(a => 0x0A00_0000u | (a & 0x00FF_FFFF)))), n));

    public static Gen<Ipv4Prefix> PrefixNear(uint[] anchors) =>
        from anchor in Gen.Elements(anchors)
        from flipBits in Gen.Choose(0, 32)
        from noise in AnyUint
        from length in Length
        select new Ipv4Prefix(anchor ^ (flipBits == 32 ? noise : noise & ((1u << flipBits) - 1)), length);

    public static Gen<RouteOp> Op(uint[] anchors) =>
        from kind in Gen.Frequency(
            (6, Gen.Constant(RouteOpKind.Add)),
            (2, Gen.Constant(RouteOpKind.Replace)),
            (3, Gen.Constant(RouteOpKind.Remove)),
            (1, Gen.Constant(RouteOpKind.RemoveMissing)))
        from prefix in PrefixNear(anchors)
        from value in Value
        from pick in Gen.Choose(0, int.MaxValue)
        from build in Gen.Frequency((1, Gen.Constant(true)), (3, Gen.Constant(false)))
        from fresh in Gen.Elements(true, false)
        select new RouteOp(kind, prefix, value, pick, build, fresh);

    public static readonly Gen<AddressProbe> Probe =
        from kind in Gen.Frequency(
            (3, Gen.Constant(ProbeKind.Uniform)),
            (6, Gen.Constant(ProbeKind.Inside)),
            (2, Gen.Constant(ProbeKind.Edge)))
        from random in AnyUint
        from pick in Gen.Choose(0, int.MaxValue)
        select new AddressProbe(kind, random, pick);

    public static Gen<RouteScenario> Scenario(int maxOps, int probes) =>
        from anchors in Anchors
        from n in Gen.Choose(1, maxOps)
        from ops in Gen.ArrayOf(Op(anchors), n)
        from probeList in Gen.ArrayOf(Probe, probes)
        select new RouteScenario(ops, probeList);

    /// <summary>Shrinks by dropping ops (halves first, then one at a time); probes are kept.</summary>
    public static IEnumerable<RouteScenario> Shrink(RouteScenario s)
    {
        var ops = s.Ops;
        if (ops.Length > 1)
        {
            yield return s with { Ops = ops[..(ops.Length / 2)] };
            yield return s with { Ops = ops[(ops.Length / 2)..] };
        }
        for (var i = 0; i < ops.Length && ops.Length > 1; i++)
            yield return s with { Ops = [.. ops[..i], .. ops[(i + 1)..]] };
    }

    public static Arbitrary<RouteScenario> ScenarioArb(int maxOps, int probes) => Arb.From(Scenario(maxOps, probes), Shrink);

    /// <summary>A resolved rule set: prefixes (weighted to /25+) and values, for one-shot tables.</summary>
    public static Gen<(Ipv4Prefix Prefix, uint Value)[]> Rules(int max) =>
        from anchors in Anchors
        from n in Gen.Choose(0, max)
        from rules in Gen.ArrayOf(PrefixNear(anchors).SelectMany(_ => Value, (p, v) => (p, v)), n)
        select rules;

    public static RouteTable Build(IEnumerable<(Ipv4Prefix Prefix, uint Value)> rules, out NaiveLpm reference)
    {
        var builder = new RouteTableBuilder(RouteTable.Empty);
        reference = new NaiveLpm();
        foreach (var (prefix, value) in rules)
        {
            builder.Add(prefix, value);
            reference.Add(prefix, value);
        }
        return builder.Build();
    }

    public static string Hex(uint a) => Ipv4Address.Format(a);
}
