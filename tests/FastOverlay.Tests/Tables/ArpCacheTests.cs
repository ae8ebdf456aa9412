using FastOverlay.Tables;
using FastOverlay.Wire;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FastOverlay.Tests.Tables;

public class ArpCacheTests
{
    private const long Reachable = 30;
    private const long Expire = 60;

    private static MacAddress Mac(ulong n) => new(0x0A58_0000_0000UL | n);
    private static ArpCache Cache(int capacity = 64) => new(capacity, Reachable, Expire);

    [Theory]
    [InlineData(1, 8)]
    [InlineData(8, 8)]
    [InlineData(9, 16)]
    [InlineData(64, 64)]
    [InlineData(65, 128)]
    [InlineData(100, 128)]
    [InlineData(1000, 1024)]
    public void CapacityIsRoundedUpToPowerOfTwoBuckets(int requested, int capacity)
    {
        var cache = new ArpCache(requested, Reachable, Expire);
        Assert.Equal(capacity, cache.Capacity);
        Assert.True(cache.Capacity >= requested);
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void ZeroCapacityThrows() => Assert.Throws<ArgumentOutOfRangeException>(() => new ArpCache(0, Reachable, Expire));

    [Fact]
    public void LookupOfUnknownAddressMisses()
    {
        var cache = Cache();
        Assert.Equal(ArpState.Miss, cache.Lookup(0x0AF4_0102, 0, out var mac, out var port));
        Assert.Equal(default, mac);
        Assert.Equal(-1, port);
    }

    [Fact]
    public void LookupIsReachableThenStaleThenMiss()
    {
        var cache = Cache();
        Assert.True(cache.Learn(0x0AF4_0102, Mac(1), 3, now: 1000));
        Assert.Equal(ArpState.Reachable, cache.Lookup(0x0AF4_0102, 1000, out var mac, out var port));
        Assert.Equal(Mac(1), mac);
        Assert.Equal(3, port);
        Assert.Equal(ArpState.Reachable, cache.Lookup(0x0AF4_0102, 1000 + Reachable - 1, out _, out _));
        Assert.Equal(ArpState.Stale, cache.Lookup(0x0AF4_0102, 1000 + Reachable, out mac, out port));
        // A stale entry still answers with its binding.
        Assert.Equal(Mac(1), mac);
        Assert.Equal(3, port);
        Assert.Equal(ArpState.Stale, cache.Lookup(0x0AF4_0102, 1000 + Expire - 1, out _, out _));
        Assert.Equal(ArpState.Miss, cache.Lookup(0x0AF4_0102, 1000 + Expire, out mac, out port));
        Assert.Equal(default, mac);
        Assert.Equal(-1, port);
        // Lookup does not remove: the entry is still counted until Expire or recycling.
        Assert.Equal(1, cache.Count);
    }

    [Fact]
    public void LearnRefreshesAndUpdatesMacAndPort()
    {
        var cache = Cache();
        cache.Learn(0x0AF4_0102, Mac(1), 3, now: 0);
        Assert.Equal(ArpState.Stale, cache.Lookup(0x0AF4_0102, 40, out _, out _));
        Assert.True(cache.Learn(0x0AF4_0102, Mac(2), 5, now: 40));
        Assert.Equal(ArpState.Reachable, cache.Lookup(0x0AF4_0102, 40, out var mac, out var port));
        Assert.Equal(Mac(2), mac);
        Assert.Equal(5, port);
        Assert.Equal(ArpState.Stale, cache.Lookup(0x0AF4_0102, 40 + Reachable, out _, out _));
        Assert.Equal(1, cache.Count);
        Assert.True(cache.TryGetExact(0x0AF4_0102, out mac, out port));
        Assert.Equal(Mac(2), mac);
        Assert.Equal(5, port);
    }

    [Fact]
    public void RemoveForgetsOneAddress()
    {
        var cache = Cache();
        cache.Learn(1, Mac(1), 1, 0);
        cache.Learn(2, Mac(2), 1, 0);
        Assert.True(cache.Remove(1));
        Assert.False(cache.Remove(1));
        Assert.False(cache.Remove(3));
        Assert.Equal(1, cache.Count);
        Assert.Equal(ArpState.Miss, cache.Lookup(1, 0, out _, out _));
        Assert.False(cache.TryGetExact(1, out _, out _));
        Assert.Equal(ArpState.Reachable, cache.Lookup(2, 0, out _, out _));
    }

    [Fact]
    public void RemovePortForgetsEverythingLearnedThere()
    {
        var cache = Cache();
        for (uint a = 1; a <= 20; a++) cache.Learn(a, Mac(a), (int)(a % 3), 0);
        cache.Learn(100, Mac(100), 1, 0, permanent: true);
        var onPort1 = Enumerable.Range(1, 20).Count(a => a % 3 == 1) + 1;
        Assert.Equal(onPort1, cache.RemovePort(1));
        Assert.Equal(21 - onPort1, cache.Count);
        for (uint a = 1; a <= 20; a++)
            Assert.Equal(a % 3 == 1 ? ArpState.Miss : ArpState.Reachable, cache.Lookup(a, 0, out _, out _));
        Assert.Equal(ArpState.Miss, cache.Lookup(100, 0, out _, out _));
        Assert.Equal(0, cache.RemovePort(1));
        Assert.Equal(0, cache.RemovePort(7));
    }

    [Fact]
    public void ExpireDropsOnlyEntriesPastExpiry()
    {
        var cache = Cache();
        cache.Learn(1, Mac(1), 0, now: 0);
        cache.Learn(2, Mac(2), 0, now: 10);
        cache.Learn(3, Mac(3), 0, now: 20);
        cache.Learn(4, Mac(4), 0, now: 0, permanent: true);
        Assert.Equal(0, cache.Expire(Expire - 1));
        Assert.Equal(4, cache.Count);
        Assert.Equal(1, cache.Expire(Expire));       // 1 is exactly ExpireTicks old
        Assert.Equal(3, cache.Count);
        Assert.Equal(ArpState.Miss, cache.Lookup(1, Expire, out _, out _));
        Assert.Equal(2, cache.Expire(1_000_000));
        Assert.Equal(1, cache.Count);
        Assert.Equal(ArpState.Reachable, cache.Lookup(4, 1_000_000, out var mac, out _));
        Assert.Equal(Mac(4), mac);
        Assert.Equal(0, cache.Expire(long.MaxValue / 2));
    }

    [Fact]
    public void PermanentEntriesNeverExpireOrGoStale()
    {
        var cache = Cache();
        cache.Learn(7, Mac(7), 2, now: 0, permanent: true);
        Assert.Equal(ArpState.Reachable, cache.Lookup(7, long.MaxValue / 2, out var mac, out var port));
        Assert.Equal(Mac(7), mac);
        Assert.Equal(2, port);
        // Relearning without the flag keeps it permanent.
        cache.Learn(7, Mac(8), 3, now: 5);
        Assert.Equal(0, cache.Expire(10_000));
        Assert.Equal(ArpState.Reachable, cache.Lookup(7, 10_000, out _, out _));
        var entry = Assert.Single(cache.Snapshot());
        Assert.True(entry.Permanent);
    }

    [Fact]
    public void PermanentEntriesAreNeverEvicted()
    {
        // Capacity 8 is a single bucket: every address competes for the same 8 ways.
        var cache = Cache(8);
        for (uint a = 1; a <= 3; a++) Assert.True(cache.Learn(a, Mac(a), 0, now: 0, permanent: true));
        for (uint a = 100; a < 1100; a++) Assert.True(cache.Learn(a, Mac(a), 0, now: a));
        Assert.Equal(8, cache.Count);
        for (uint a = 1; a <= 3; a++) Assert.Equal(ArpState.Reachable, cache.Lookup(a, 2000, out _, out _));
        // The 5 non-permanent ways hold the 5 most recent addresses.
        var dynamic = cache.Snapshot().Where(e => !e.Permanent).Select(e => e.Address.Value).Order().ToArray();
        Assert.Equal([1095u, 1096u, 1097u, 1098u, 1099u], dynamic);
    }

    [Fact]
    public void AFullyPermanentBucketRefusesNewAddresses()
    {
        var cache = Cache(8);
        for (uint a = 1; a <= 8; a++) Assert.True(cache.Learn(a, Mac(a), 0, now: 0, permanent: true));
        Assert.False(cache.Learn(9, Mac(9), 0, now: 0));
        Assert.False(cache.Learn(10, Mac(10), 0, now: 0, permanent: true));
        Assert.Equal(8, cache.Count);
        Assert.Equal(ArpState.Miss, cache.Lookup(9, 0, out _, out _));
        // Known addresses can still be refreshed.
        Assert.True(cache.Learn(3, Mac(33), 1, now: 5));
        Assert.True(cache.TryGetExact(3, out var mac, out _));
        Assert.Equal(Mac(33), mac);
    }

    [Fact]
    public void EvictionPrefersExpiredThenLeastRecentlyConfirmed()
    {
        var cache = Cache(8);
        for (uint a = 1; a <= 8; a++) cache.Learn(a, Mac(a), 0, now: 100 + a);
        cache.Learn(1, Mac(1), 0, now: 200);        // 1 is now the most recent; 2 the oldest
        Assert.True(cache.Learn(9, Mac(9), 0, now: 201));
        Assert.Equal(ArpState.Miss, cache.Lookup(2, 201, out _, out _));
        Assert.Equal(ArpState.Reachable, cache.Lookup(1, 201, out _, out _));
        Assert.Equal(8, cache.Count);
    }

    [Fact]
    public void SnapshotReturnsEveryEntry()
    {
        var cache = Cache(256);
        var expected = new Dictionary<uint, (ulong Mac, int Port, long Confirmed, bool Permanent)>();
        for (uint a = 1; a <= 40; a++)
        {
            var address = 0x0AF4_0000u | (a * 37);
            var permanent = a % 7 == 0;
            Assert.True(cache.Learn(address, Mac(a), (int)a, now: a, permanent));
            expected[address] = (Mac(a).Value, (int)a, a, permanent);
        }
        var snapshot = cache.Snapshot();
        Assert.Equal(expected.Count, snapshot.Count);
        Assert.Equal(cache.Count, snapshot.Count);
        foreach (var e in snapshot)
        {
            Assert.True(expected.TryGetValue(e.Address.Value, out var x), $"unexpected {e.Address}");
            Assert.Equal(x, (e.Mac.Value, e.Port, e.Confirmed, e.Permanent));
        }
    }

    [Fact]
    public void AddressZeroIsNeverStored()
    {
        var cache = Cache(8);
        Assert.False(cache.Learn(0, Mac(1), 1, 0));
        Assert.False(cache.Learn(0, Mac(1), 1, 0, permanent: true));
        Assert.Equal(0, cache.Count);
        Assert.Empty(cache.Snapshot());
        Assert.Equal(ArpState.Miss, cache.Lookup(0, 0, out _, out var port));
        Assert.Equal(-1, port);
        Assert.False(cache.TryGetExact(0, out _, out _));
        Assert.False(cache.Remove(0));
        // Empty ways hold 0 internally; a full bucket must still not match address 0.
        for (uint a = 1; a <= 8; a++) cache.Learn(a, Mac(a), 0, 0);
        Assert.Equal(ArpState.Miss, cache.Lookup(0, 0, out _, out _));
        Assert.False(cache.TryGetExact(0, out _, out _));
    }

    // ---- properties ----

    internal readonly record struct ArpOp(byte Kind, uint Address, ulong Mac, int Port, int Advance, bool Permanent)
    {
        public override string ToString() => Kind switch
        {
            0 => $"learn {Address:X}={Mac:X}@{Port}{(Permanent ? "!" : "")}+{Advance}",
            1 => $"remove {Address:X}+{Advance}",
            2 => $"removePort {Port}+{Advance}",
            _ => $"expire+{Advance}",
        };
    }

    internal sealed record ArpCase(int Capacity, ArpOp[] Ops)
    {
        public override string ToString() => $"capacity {Capacity}: {string.Join("; ", Ops)}";
    }

    private static readonly Gen<ArpCase> ArpCases =
        from capacity in Gen.Elements(1, 8, 16, 24, 64)
        from poolSize in Gen.Choose(1, 4 * 64)
        from pool in Gen.ArrayOf(RouteGen.AnyUint.Where(a => a != 0), poolSize)
        from n in Gen.Choose(0, 400)
        from ops in Gen.ArrayOf(
            from kind in Gen.Frequency((20, Gen.Constant((byte)0)), (2, Gen.Constant((byte)1)), (1, Gen.Constant((byte)2)), (1, Gen.Constant((byte)3)))
            from address in Gen.Frequency((19, Gen.Elements(pool)), (1, Gen.Constant(0u)))
            from mac in Gen.Choose(0, int.MaxValue)
            from port in Gen.Choose(0, 5)
            from advance in Gen.Frequency((4, Gen.Choose(0, 3)), (1, Gen.Choose(0, 70)))
            from permanent in Gen.Frequency((1, Gen.Constant(true)), (30, Gen.Constant(false)))
            select new ArpOp(kind, address, (ulong)mac, port, advance, permanent), n)
        select new ArpCase(capacity, ops);

    /// <summary>
    /// Any sequence of learns, removes and expiries: the cache never holds more than its capacity, Count matches
    /// the snapshot, every cached binding is the last one learned for its address, a just-learned address is
    /// present, permanent entries stay, and address 0 never appears.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property NeverExceedsCapacityAndKeepsLatestBindings() => Prop.ForAll(Arb.From(ArpCases), c =>
    {
        var cache = Cache(c.Capacity);
        var latest = new Dictionary<uint, (ulong Mac, int Port, long Confirmed, bool Permanent)>();
        long now = 1;
        foreach (var op in c.Ops)
        {
            now += op.Advance;
            switch (op.Kind)
            {
                case 0:
                    var ok = cache.Learn(op.Address, new MacAddress(op.Mac), op.Port, now, op.Permanent);
                    if (op.Address == 0)
                    {
                        Assert.False(ok);
                        break;
                    }
                    var wasPermanent = latest.TryGetValue(op.Address, out var before) && before.Permanent && cache.TryGetExact(op.Address, out _, out _);
                    if (ok)
                    {
                        Assert.Equal(ArpState.Reachable, cache.Lookup(op.Address, now, out var mac, out var port));
                        Assert.Equal(op.Mac, mac.Value);
                        Assert.Equal(op.Port, port);
                        latest[op.Address] = (op.Mac, op.Port, now, op.Permanent || wasPermanent);
                    }
                    else
                    {
                        // Refused only when the bucket is all permanent, and then the address is not cached.
                        Assert.False(cache.TryGetExact(op.Address, out _, out _));
                        Assert.True(cache.Snapshot().Count(e => e.Permanent) >= ArpCache.Ways);
                    }
                    break;
                case 1:
                    var present = cache.TryGetExact(op.Address, out _, out _);
                    Assert.Equal(present, cache.Remove(op.Address));
                    latest.Remove(op.Address);
                    break;
                case 2:
                    var onPort = cache.Snapshot().Count(e => e.Port == op.Port);
                    Assert.Equal(onPort, cache.RemovePort(op.Port));
                    foreach (var a in latest.Where(kv => kv.Value.Port == op.Port).Select(kv => kv.Key).ToArray()) latest.Remove(a);
                    break;
                default:
                    var due = cache.Snapshot().Count(e => !e.Permanent && now - e.Confirmed >= Expire);
                    Assert.Equal(due, cache.Expire(now));
                    break;
            }

            var snapshot = cache.Snapshot();
            Assert.True(cache.Count <= cache.Capacity, $"count {cache.Count} > capacity {cache.Capacity}");
            Assert.Equal(snapshot.Count, cache.Count);
            Assert.Equal(snapshot.Count, snapshot.Select(e => e.Address.Value).Distinct().Count());
            foreach (var e in snapshot)
            {
                Assert.NotEqual(0u, e.Address.Value);
                Assert.True(latest.TryGetValue(e.Address.Value, out var x), $"{e.Address} cached but never learned (or removed)");
                Assert.Equal(x, (e.Mac.Value, e.Port, e.Confirmed, e.Permanent));
            }
            var cached = snapshot.Select(e => e.Address.Value).ToHashSet();
            foreach (var (address, x) in latest)
            {
                if (x.Permanent) Assert.True(cached.Contains(address), $"permanent {address:X} lost");
                if (!cached.Contains(address)) Assert.Equal(ArpState.Miss, cache.Lookup(address, now, out _, out _));
            }
        }
    });

    /// <summary>
    /// With capacity 8 there is one bucket, so replacement is fully observable: a new address takes a free way
    /// if there is one, and otherwise evicts an expired entry or else the least recently confirmed one, never a
    /// permanent one.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property SingleBucketEvictsTheOldestNonPermanent() => Prop.ForAll(Arb.From(ArpCases), c =>
    {
        var cache = Cache(8);
        long now = 1;
        foreach (var op in c.Ops.Where(o => o.Kind == 0 && o.Address != 0))
        {
            now += op.Advance;
            var before = cache.Snapshot().ToDictionary(e => e.Address.Value);
            var ok = cache.Learn(op.Address, new MacAddress(op.Mac), op.Port, now, op.Permanent);
            var after = cache.Snapshot().ToDictionary(e => e.Address.Value);
            if (before.ContainsKey(op.Address))
            {
                Assert.True(ok);
                Assert.Equal(before.Keys.Order(), after.Keys.Order());
                continue;
            }
            if (before.Count < 8)
            {
                Assert.True(ok);
                Assert.Equal(before.Count + 1, after.Count);
                Assert.True(before.Keys.All(after.ContainsKey));
                continue;
            }
            var candidates = before.Values.Where(e => !e.Permanent).ToList();
            if (candidates.Count == 0)
            {
                Assert.False(ok);
                Assert.Equal(before.Keys.Order(), after.Keys.Order());
                continue;
            }
            Assert.True(ok);
            var evicted = Assert.Single(before.Keys, a => !after.ContainsKey(a));
            var victim = before[evicted];
            Assert.False(victim.Permanent);
            var victimExpired = now - victim.Confirmed >= Expire;
            Assert.True(victimExpired || candidates.All(e => now - e.Confirmed < Expire && e.Confirmed >= victim.Confirmed),
                $"evicted {victim} at {now} though an older or expired entry was there: {string.Join(", ", candidates)}");
        }
    });
}
