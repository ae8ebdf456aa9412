using System.Diagnostics;
using FastOverlay.Tables.Services;

namespace FastOverlay.Tests.Tables.Services;

public class MaglevTableTests
{
    internal static List<string> PodNames(int n, int port = 8080) =>
        Enumerable.Range(0, n).Select(i => $"10.244.{i / 250}.{i % 250 + 1}:{port}").ToList();

    /// <summary>Slots that changed owner, not counting those that belonged to (or now belong to) <paramref name="mover"/>.</summary>
    internal static int ExtraMoves(MaglevTable before, MaglevTable after, string mover)
    {
        var extra = 0;
        for (var s = 0; s < before.Size; s++)
        {
            var a = before.Backends[before.Slots[s]];
            var b = after.Backends[after.Slots[s]];
            if (a != mover && b != mover && a != b) extra++;
        }
        return extra;
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(3, true)]
    [InlineData(4, false)]
    [InlineData(7, true)]
    [InlineData(9, false)]
    [InlineData(25, false)]
    [InlineData(49, false)]
    [InlineData(-7, false)]
    [InlineData(16381, true)]
    [InlineData(65535, false)]
    [InlineData(65537, true)]
    [InlineData(655373, true)]
    [InlineData(1_000_000_007, true)]
    [InlineData(int.MaxValue, true)]
    [InlineData(int.MaxValue - 1, false)]
    [InlineData(46337 * 46337, false)] // the square of the largest prime below √int.MaxValue: the loop's last divisor
    [InlineData(46337 * 46327, false)]
    public void IsPrime(int m, bool expected) => Assert.Equal(expected, MaglevTable.IsPrime(m));

    [Theory]
    [InlineData(16380)]
    [InlineData(65536)]
    [InlineData(1)]
    [InlineData(5)] // prime, but below the minimum
    [InlineData(0)]
    [InlineData(-16381)]
    public void Size_must_be_a_prime_of_at_least_seven(int size) =>
        Assert.Throws<ArgumentException>(() => MaglevTable.Build(PodNames(3), size));

    [Fact]
    public void Backend_names_must_be_distinct_and_one_to_65535()
    {
        Assert.Throws<ArgumentException>(() => MaglevTable.Build(["a", "b", "a"]));
        Assert.Throws<ArgumentException>(() => MaglevTable.Build(Array.Empty<string>()));
        Assert.Throws<ArgumentException>(() => MaglevTable.Build(Enumerable.Range(0, 65536).Select(i => i.ToString("x", null)).ToList(), 65537));
        Assert.Throws<ArgumentException>(() => MaglevTable.Build(new string[] { "a", null! }));
        var max = MaglevTable.Build(Enumerable.Range(0, 65535).Select(i => i.ToString("x", null)).ToList(), 65537);
        Assert.Equal(65535, max.Backends.Count);
        Assert.Equal(65534, max.Slots.ToArray().Max());
    }

    [Fact]
    public void Smallest_table_and_one_backend()
    {
        var one = MaglevTable.Build(["only"], MaglevTable.MinSize);
        Assert.Equal(7, one.Size);
        Assert.All(one.Slots.ToArray(), s => Assert.Equal(0, s));
        Assert.Equal(0, one.Lookup(ulong.MaxValue));
        Assert.Equal(MaglevTable.DefaultSize, MaglevTable.Build(["a", "b"]).Size);
    }

    [Fact]
    public void Backends_are_sorted_ordinally_and_read_only()
    {
        var table = MaglevTable.Build(["b", "B", "a", "é", "A"]);
        Assert.Equal(["A", "B", "a", "b", "é"], table.Backends);
        Assert.False(table.Backends is string[]);
    }

    /// <summary>
    /// Every node must build the same table and pick the same backend forever: these literals pin the name hashes
    /// (through whole tables) and the flow hash. If one fails, the change breaks cross-node consistency and rolling
    /// upgrades (half the nodes would balance differently); do not update the literals without a migration plan.
    /// </summary>
    [Fact]
    public void Tables_are_pinned_by_literal_vectors()
    {
        Assert.Equal([1, 2, 2, 2, 0, 1, 2, 0, 1, 0, 1, 0, 0], MaglevTable.Build(["b", "a", "c"], 13).Slots.ToArray().Select(s => (int)s));
        Assert.Equal(
            [0, 1, 3, 1, 3, 1, 2, 2, 0, 3, 1, 3, 2, 0, 0, 1, 0, 1, 0, 0, 3, 2, 2, 2, 2, 2, 0, 1, 3, 3, 1],
            MaglevTable.Build(["10.244.1.5:8080", "10.244.2.7:8080", "10.244.3.9:8080", "10.244.1.6:8080"], 31).Slots.ToArray().Select(s => (int)s));
        // UTF-8 names (multi-byte characters), and a name longer than two 8-byte blocks.
        var utf8 = MaglevTable.Build(["pod-é:80", "日本:80", "backend-with-a-long-name-0001:8443", "x"], 17);
        Assert.Equal(["backend-with-a-long-name-0001:8443", "pod-é:80", "x", "日本:80"], utf8.Backends);
        Assert.Equal([3, 0, 1, 1, 2, 2, 2, 1, 3, 3, 0, 0, 2, 1, 0, 3, 0], utf8.Slots.ToArray().Select(s => (int)s));
    }

    [Theory]
    [InlineData(0x0000_0000u, (ushort)0, (byte)0, 0x25666B9C9F50CE8DUL)]
    [InlineData(0x0A00_0001u, (ushort)12345, (byte)6, 0x68699D4218541895UL)]
    [InlineData(0x0A00_0001u, (ushort)0, (byte)6, 0x178935941D9CF482UL)]
    [InlineData(0x0AF4_0102u, (ushort)53, (byte)17, 0xED373044D7B878AEUL)]
    [InlineData(0xC0A8_0001u, (ushort)65535, (byte)1, 0x6CA7485E155C4C08UL)]
    [InlineData(0xFFFF_FFFFu, (ushort)65535, (byte)255, 0xCC159359E3C6DFE5UL)]
    public void FlowHash_is_pinned(uint sourceIp, ushort sourcePort, byte protocol, ulong expected) =>
        Assert.Equal(expected, MaglevTable.FlowHash(sourceIp, sourcePort, protocol));

    [Fact]
    public void Name_hash_reads_whole_bytes_and_length()
    {
        // Zero padding in the tail must not make "ab" and "ab\0" collide; the length is folded in.
        Assert.NotEqual(MaglevHash.Hash("ab"u8, 1), MaglevHash.Hash("ab\0"u8, 1));
        Assert.NotEqual(MaglevHash.Hash(""u8, 1), MaglevHash.Hash("\0"u8, 1));
        Assert.NotEqual(MaglevHash.Hash("12345678"u8, 1), MaglevHash.Hash("12345678"u8, 2));
        Assert.NotEqual(MaglevHash.Hash("123456789"u8, 1), MaglevHash.Hash("123456780"u8, 1));
    }

    [Fact]
    public void Lookup_is_the_slot_of_the_hash_modulo_size()
    {
        var table = MaglevTable.Build(PodNames(10), 65537);
        var random = new Random(11);
        for (var i = 0; i < 10_000; i++)
        {
            var h = (ulong)random.NextInt64() ^ ((ulong)random.Next() << 63);
            Assert.Equal(table.Slots[(int)(h % 65537)], table.Lookup(h));
        }
    }

    /// <summary>
    /// χ² over 1M flows on 100 backends, for raw random hashes and for FlowHash of realistic clients (a few
    /// consecutive addresses, consecutive ephemeral ports). Expected counts follow each backend's slot share. The critical
    /// value of χ²(99) at p = 0.001 is 148.2; the seeds are fixed, so this cannot flake.
    /// </summary>
    [Theory]
    [InlineData(65537, false)]
    [InlineData(16381, false)]
    [InlineData(65537, true)]
    [InlineData(16381, true)]
    public void Lookup_is_uniform_over_backends(int size, bool realisticClients)
    {
        const int N = 100;
        const int Flows = 1_000_000;
        var table = MaglevTable.Build(PodNames(N), size);
        var share = new int[N];
        foreach (var s in table.Slots) share[s]++;
        var counts = new long[N];
        var random = new Random(size);
        for (var i = 0; i < Flows; i++)
        {
            // Realistic: 36 consecutive client addresses, each with 27778 consecutive ephemeral ports. Every flow
            // is distinct; drawing clients at random would repeat some and inflate χ² by itself.
            var h = realisticClients
                ? MaglevTable.FlowHash(0x0A01_0000u + (uint)(i / 27778), (ushort)(32768 + i % 27778), 6)
                : (ulong)random.NextInt64() ^ ((ulong)random.Next() << 63);
            counts[table.Lookup(h)]++;
        }
        var chi2 = 0.0;
        for (var b = 0; b < N; b++)
        {
            var expected = (double)Flows * share[b] / size;
            chi2 += (counts[b] - expected) * (counts[b] - expected) / expected;
        }
        Assert.True(chi2 < 148.2, $"chi2 = {chi2:F1} over {N - 1} degrees of freedom");
    }

    /// <summary>
    /// Removing or adding one of 100 realistic backends, for 20 victims each. At M = 65537 every case moves at most
    /// the victim's (newcomer's) own slots plus 1 % of the table. At M = 16381 (= 164·N) Maglev itself moves
    /// about 1.35 % extra on average, up to ~2 % (services.md §2.1's simulation finds the same with another
    /// hash), so the bound there is 2 %: the 1 % rule needs a larger M, not a better hash.
    /// </summary>
    [Theory]
    [InlineData(65537, 0.010)]
    [InlineData(16381, 0.020)]
    public void One_backend_more_or_less_moves_little_else(int size, double bound)
    {
        var names = PodNames(100);
        var table = MaglevTable.Build(names, size);
        for (var v = 0; v < 100; v += 5)
        {
            var victim = names[v];
            var without = MaglevTable.Build(names.Where(n => n != victim).ToList(), size);
            var victimShare = table.Slots.ToArray().Count(s => table.Backends[s] == victim);
            var changed = Enumerable.Range(0, size).Count(s => table.Backends[table.Slots[s]] != without.Backends[without.Slots[s]]);
            Assert.True(changed <= victimShare + bound * size, $"remove {victim}: {changed} changed, victim had {victimShare}");

            var newcomer = $"10.245.0.{v + 1}:8080";
            var with = MaglevTable.Build([.. names, newcomer], size);
            Assert.True(ExtraMoves(table, with, newcomer) <= bound * size, $"add {newcomer}: {ExtraMoves(table, with, newcomer)} extra");
        }
    }

    /// <summary>Averaged over 40 random backend sets, the extra churn is near the simulation's 0.56 % / 1.34 %.</summary>
    [Theory]
    [InlineData(65537, 0.0075)]
    [InlineData(16381, 0.015)]
    public void Mean_extra_churn_over_random_backend_sets(int size, double bound)
    {
        var random = new Random(size);
        var total = 0.0;
        const int Trials = 40;
        for (var t = 0; t < Trials; t++)
        {
            var names = Enumerable.Range(0, 100).Select(i => $"{random.Next():x}-{i}").ToList();
            var table = MaglevTable.Build(names, size);
            var victim = names[random.Next(names.Count)];
            total += (double)ExtraMoves(table, MaglevTable.Build(names.Where(n => n != victim).ToList(), size), victim) / size;
        }
        Assert.True(total / Trials <= bound, $"mean extra churn {total / Trials:P2}");
    }

    /// <summary>services.md §5.3, flow level: of flows not on the removed backend, at least 98 % keep theirs.</summary>
    [Fact]
    public void Flows_not_on_the_removed_backend_keep_it()
    {
        var names = PodNames(100);
        var table = MaglevTable.Build(names, 65537);
        var without = MaglevTable.Build(names.Where(n => n != names[42]).ToList(), 65537);
        var random = new Random(5);
        int considered = 0, kept = 0;
        for (var i = 0; i < 200_000; i++)
        {
            var h = MaglevTable.FlowHash((uint)random.Next(), (ushort)random.Next(1024, 65536), 6);
            var before = table.Backends[table.Lookup(h)];
            if (before == names[42]) continue;
            considered++;
            if (before == without.Backends[without.Lookup(h)]) kept++;
        }
        Assert.True(kept >= 0.98 * considered, $"{kept} of {considered} kept their backend");
    }

    [Fact]
    public void FlowHash_depends_on_client_address_port_and_protocol()
    {
        // With affinity the caller passes port 0: every connection of a client then hashes alike.
        Assert.Equal(MaglevTable.FlowHash(0x0A00_0001, 0, 6), MaglevTable.FlowHash(0x0A00_0001, 0, 6));
        Assert.NotEqual(MaglevTable.FlowHash(0x0A00_0001, 1, 6), MaglevTable.FlowHash(0x0A00_0001, 2, 6));
        Assert.NotEqual(MaglevTable.FlowHash(0x0A00_0001, 1, 6), MaglevTable.FlowHash(0x0A00_0001, 1, 17));
        Assert.NotEqual(MaglevTable.FlowHash(0x0A00_0001, 1, 6), MaglevTable.FlowHash(0x0A00_0002, 1, 6));
    }

    /// <summary>Control plane, but rebuilt on every endpoint change: M = 65537, N = 1000 well under 100 ms.</summary>
    [Fact]
    public void Build_of_65537_slots_for_1000_backends_is_fast()
    {
        var names = PodNames(1000);
        MaglevTable.Build(names, 65537); // JIT
        var best = double.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            var sw = Stopwatch.StartNew();
            MaglevTable.Build(names, 65537);
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
        }
        Assert.True(best < 100, $"best of 3: {best:F1} ms");
    }
}
