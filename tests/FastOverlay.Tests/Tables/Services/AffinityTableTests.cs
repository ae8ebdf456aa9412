using FastOverlay.Tables.Services;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace FastOverlay.Tests.Tables.Services;

public class AffinityTableTests
{
    private const uint Client = 0x0A00_0105;   // 10.0.1.5
    private const uint BackendA = 0x0AF4_0105; // 10.244.1.5
    private const uint BackendB = 0x0AF4_0207;
    private const long Timeout = 10_800;       // ticks; the unit does not matter to the table

    private static AffinityTable Table(int capacity = 1024) => new(capacity, ConntrackTableTests.Seed);

    [Fact]
    public void Hit_and_miss()
    {
        var t = Table();
        Assert.False(t.TryGet(1, Client, 100, Timeout, out var ip, out var port));
        Assert.Equal((0u, (ushort)0), (ip, port));
        t.Set(1, Client, BackendA, 8080, 100);
        Assert.True(t.TryGet(1, Client, 100, Timeout, out ip, out port));
        Assert.Equal((BackendA, (ushort)8080), (ip, port));
        Assert.False(t.TryGet(2, Client, 100, Timeout, out _, out _));          // another service port
        Assert.False(t.TryGet(1, Client + 1, 100, Timeout, out _, out _));      // another client
        Assert.Equal(1, t.Count);
    }

    /// <summary>Valid in [lastUsed, lastUsed + timeout), Cilium's semantics.</summary>
    [Fact]
    public void Timeout_boundary()
    {
        var t = Table();
        t.Set(1, Client, BackendA, 80, 1000);
        Assert.True(t.TryGet(1, Client, 1000, Timeout, out _, out _));
        Assert.True(t.TryGet(1, Client, 1000 + Timeout - 1, Timeout, out _, out _));
        Assert.False(t.TryGet(1, Client, 1000 + Timeout, Timeout, out _, out _));
        Assert.False(t.TryGet(1, Client, 999, Timeout, out _, out _));
        // Each service has its own timeout; the entry is the same.
        Assert.True(t.TryGet(1, Client, 1000 + Timeout, Timeout + 1, out _, out _));
    }

    [Fact]
    public void Set_refreshes_and_rebinds()
    {
        var t = Table();
        t.Set(1, Client, BackendA, 80, 1000);
        t.Set(1, Client, BackendA, 80, 6000);
        Assert.True(t.TryGet(1, Client, 6000 + Timeout - 1, Timeout, out _, out _));
        Assert.False(t.TryGet(1, Client, 6000 + Timeout, Timeout, out _, out _));
        // TryGet alone does not refresh: the caller sets on each new connection.
        Assert.False(t.TryGet(1, Client, 6000 + Timeout, Timeout, out _, out _));
        t.Set(1, Client, BackendB, 81, 20_000);
        Assert.True(t.TryGet(1, Client, 20_000, Timeout, out var ip, out var port));
        Assert.Equal((BackendB, (ushort)81), (ip, port));
        Assert.Equal(1, t.Count);
    }

    [Fact]
    public void Remove_forgets_one_entry()
    {
        var t = Table();
        t.Set(1, Client, BackendA, 80, 0);
        t.Set(2, Client, BackendB, 80, 0);
        t.Remove(1, Client);
        t.Remove(1, Client);
        t.Remove(3, Client);
        Assert.False(t.TryGet(1, Client, 0, Timeout, out _, out _));
        Assert.True(t.TryGet(2, Client, 0, Timeout, out _, out _));
        Assert.Equal(1, t.Count);
    }

    [Fact]
    public void Broadcast_client_and_zero_keys()
    {
        var t = Table();
        t.Set(1, uint.MaxValue, BackendA, 80, 0); // never a source address: ignored (it marks empty ways)
        Assert.False(t.TryGet(1, uint.MaxValue, 0, Timeout, out _, out _));
        t.Remove(1, uint.MaxValue);
        Assert.Equal(0, t.Count);
        t.Set(0, 0, BackendA, 0, 0); // port id 0 and 0.0.0.0 are ordinary keys
        Assert.True(t.TryGet(0, 0, 0, Timeout, out var ip, out _));
        Assert.Equal(BackendA, ip);
        t.Set(uint.MaxValue, Client, BackendB, 1, 0);
        Assert.True(t.TryGet(uint.MaxValue, Client, 0, Timeout, out ip, out _));
        Assert.Equal(BackendB, ip);
    }

    /// <summary>One bucket (capacity 8): the ninth client evicts the least recently set, not the oldest inserted.</summary>
    [Fact]
    public void Overflow_evicts_the_least_recently_used_way()
    {
        var t = Table(1);
        Assert.Equal(AffinityTable.Ways, t.Capacity);
        for (var c = 0u; c < 8; c++) t.Set(1, Client + c, BackendA + c, 80, 100 + c);
        t.Set(1, Client, BackendA, 80, 200); // client 0 used again: client 1 is now the least recent
        t.Set(1, Client + 8, BackendB, 80, 201);
        Assert.Equal(8, t.Count);
        Assert.False(t.TryGet(1, Client + 1, 201, Timeout, out _, out _));
        for (var c = 0u; c <= 8; c++)
        {
            if (c != 1) Assert.True(t.TryGet(1, Client + c, 201, Timeout, out _, out _), $"client {c}");
        }
    }

    [Fact]
    public void Constructor_rounds_capacity()
    {
        Assert.Equal(8, Table(1).Capacity);
        Assert.Equal(1024, Table(1000).Capacity);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AffinityTable(0, 1));
    }

    /// <summary>Any sequence of sets and removes on a small table agrees with a dictionary wherever the table still holds the entry, and the table never loses a key it was not forced to evict.</summary>
    [Property(MaxTest = 200)]
    public Property Agrees_with_a_dictionary() => Prop.ForAll(
        Arb.From(Gen.ArrayOf(
            from port in Gen.Choose(0, 3)
            from client in Gen.Choose(0, 40)
            from set in Gen.Elements(true, true, true, false)
            select (Port: port, Client: client, Set: set))), ops =>
        {
            var t = Table(32);
            var model = new Dictionary<(uint, uint), (uint Ip, long Last)>();
            long now = 0;
            foreach (var (port, client, set) in ops)
            {
                now++;
                var key = ((uint)port, Client + (uint)client);
                if (set)
                {
                    t.Set(key.Item1, key.Item2, BackendA + (uint)now, 80, now);
                    model[key] = (BackendA + (uint)now, now);
                }
                else
                {
                    t.Remove(key.Item1, key.Item2);
                    model.Remove(key);
                }
                Assert.True(t.TryGet(key.Item1, key.Item2, now, long.MaxValue, out var ip, out _) == set);
                if (set) Assert.Equal(BackendA + (uint)now, ip);
            }
            var held = 0;
            foreach (var ((port, client), (ip, _)) in model)
            {
                if (!t.TryGet(port, client, now, long.MaxValue, out var got, out _)) continue;
                Assert.Equal(ip, got);
                held++;
            }
            Assert.Equal(held, t.Count);
            if (model.Count <= AffinityTable.Ways) Assert.Equal(model.Count, held);
        });
}
