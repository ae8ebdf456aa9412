using FastOverlay.Tables.Services;

namespace FastOverlay.Tests.Tables.Services;

/// <summary>
/// The service tables' packet-path operations allocate nothing once warm: 100k rounds of each, measured with
/// GC.GetAllocatedBytesForCurrentThread as in Pipeline/ZeroAllocationTests, and the same loop with one 16-byte
/// array per round is seen, proving the measurement can fail.
/// </summary>
public class ServicesZeroAllocationTests
{
    private const int Rounds = 100_000;

    private readonly record struct Tally(long Found, long Inserted, long Failed);

    /// <summary>
    /// TryFind, Insert, TryFind of the reply, Observe, SetEpoch, Remove of every 8th, a burst TryFind every 64. 4096 keys on a table of 1024
    /// with flows of ~2000 rounds (udp) or ~8000 (once a reply is seen): it stays full, so inserts go through the
    /// clock-hand reclaim and about half fail, and keys often recur while live.
    /// </summary>
    private static readonly FlowKey[] BurstKeys = new FlowKey[64];
    private static readonly int[] BurstIndices = new int[64];
    private static readonly bool[] BurstReplies = new bool[64];
    private static readonly ConntrackFlow[] BurstFlows = new ConntrackFlow[64];

    private static Tally ConntrackRounds(ConntrackTable table, ref long now, long step, int rounds, bool allocateOnPurpose = false)
    {
        long found = 0, inserted = 0, failed = 0;
        object? sink = null;
        for (var i = 0; i < rounds; i++)
        {
            now += step;
            var (o, r) = ConntrackTableTests.Flow(i & 4095, ConntrackTableTests.Udp);
            BurstKeys[i & 63] = (i & 1) == 0 ? o : r;
            if ((i & 63) == 63) found += table.TryFind(BurstKeys, now, BurstIndices, BurstReplies, BurstFlows);
            if (table.TryFind(o, now, out var index, out _, out _))
            {
                found++;
                table.Observe(index, false, 0, now);
                if ((i & 1) == 0) table.Remove(index);
            }
            else
            {
                index = table.Insert(o, r, 1, 1, ConntrackFlags.Snat, now);
                if (index < 0)
                {
                    failed++;
                }
                else
                {
                    inserted++;
                    if (table.TryFind(r, now, out var again, out var isReply, out _) && isReply && again == index) found++;
                    if ((i & 1) == 0) table.Observe(again, true, 0, now);
                    table.SetEpoch(index, (uint)i);
                    if ((i & 7) == 0) table.Remove(index);
                }
            }
            if (allocateOnPurpose) sink = new byte[16];
        }
        GC.KeepAlive(sink);
        return new Tally(found, inserted, failed);
    }

    [Fact]
    public void Conntrack_packet_path_allocates_nothing()
    {
        var table = new ConntrackTable(1024, ConntrackTimeouts.Default, ConntrackTableTests.Seed) { StageBursts = true };
        var step = FastOverlay.Pipeline.NodeOptions.Ticks(TimeSpan.FromMilliseconds(15));
        long now = 0;
        ConntrackRounds(table, ref now, step, 300_000); // warm-up: JIT, OSR, tier-1
        var before = GC.GetAllocatedBytesForCurrentThread();
        var tally = ConntrackRounds(table, ref now, step, Rounds);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        // Every path was taken: hits, inserts into a full table (reclaiming), failures.
        Assert.True(tally.Found > Rounds / 10 && tally.Inserted > Rounds / 10 && tally.Failed > Rounds / 10, tally.ToString());
        Assert.True(table.Count > table.Capacity * 9 / 10, $"{table.Count}");

        before = GC.GetAllocatedBytesForCurrentThread();
        ConntrackRounds(table, ref now, step, Rounds, allocateOnPurpose: true);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before >= Rounds * 16L);
    }

    private static long AffinityAndMaglevRounds(AffinityTable affinity, MaglevTable maglev, int rounds, bool allocateOnPurpose = false)
    {
        long sum = 0;
        object? sink = null;
        for (var i = 0; i < rounds; i++)
        {
            var client = 0x0A00_0000u + (uint)(i % 5000);
            if (affinity.TryGet(7, client, i, 50_000, out var ip, out var port))
            {
                sum += ip + port;
            }
            else
            {
                var backend = maglev.Lookup(MaglevTable.FlowHash(client, 0, 6));
                affinity.Set(7, client, 0x0AF4_0000u + (uint)backend, 8080, i);
            }
            if ((i & 7) == 0) affinity.Remove(7, client);
            if (allocateOnPurpose) sink = new byte[16];
        }
        GC.KeepAlive(sink);
        return sum;
    }

    [Fact]
    public void Affinity_and_maglev_lookups_allocate_nothing()
    {
        var affinity = new AffinityTable(4096, ConntrackTableTests.Seed); // smaller than the 5000 clients: evicting
        var maglev = MaglevTable.Build(MaglevTableTests.PodNames(50));
        AffinityAndMaglevRounds(affinity, maglev, 300_000);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var sum = AffinityAndMaglevRounds(affinity, maglev, Rounds);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.NotEqual(0, sum);

        before = GC.GetAllocatedBytesForCurrentThread();
        AffinityAndMaglevRounds(affinity, maglev, Rounds, allocateOnPurpose: true);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before >= Rounds * 16L);
    }
}
