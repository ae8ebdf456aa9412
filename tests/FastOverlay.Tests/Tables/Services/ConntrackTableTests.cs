using FastOverlay.Pipeline;
using FastOverlay.Tables.Services;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace FastOverlay.Tests.Tables.Services;

public class ConntrackTableTests
{
    internal const ulong Seed = 0x5EED_0000_C0FF_EE00;
    internal const byte Icmp = 1, Tcp = 6, Udp = 17;
    internal const byte Fin = 0x01, Rst = 0x04, Ack = 0x10;
    private const uint Vip = 0x0A60_000A;      // 10.96.0.10
    private const uint Backend = 0x0AF4_0105;  // 10.244.1.5
    private const long T0 = 1_000_000;

    internal static ConntrackTable Table(int capacity = 1024, ConntrackTimeouts? timeouts = null) =>
        new(capacity, timeouts ?? ConntrackTimeouts.Default, Seed);

    /// <summary>Client 10.0.x.y:port → 10.96.0.10:80, DNATed to 10.244.1.5:8080; the reply comes back reversed.</summary>
    internal static (FlowKey Original, FlowKey Reply) Flow(int client, byte protocol = Tcp)
    {
        var original = new FlowKey(0x0A00_0000u + (uint)(client >> 8), Vip, (ushort)(32768 + (client & 0xFF)), 80, protocol);
        var reply = new FlowKey(Backend, original.Source, 8080, original.SourcePort, protocol);
        return (original, reply);
    }

    private static int Insert(ConntrackTable t, int client, byte protocol = Tcp, long now = T0, ConntrackFlags flags = ConntrackFlags.None)
    {
        var (o, r) = Flow(client, protocol);
        return t.Insert(o, r, (uint)client, 7, flags, now);
    }

    private static bool Found(ConntrackTable t, in FlowKey key, long now) => t.TryFind(key, now, out _, out _, out _);

    [Fact]
    public void Entry_is_one_cache_line() => Assert.Equal(64, System.Runtime.CompilerServices.Unsafe.SizeOf<ConntrackEntry>());

    [Fact]
    public void FlowKey_reverse_and_equality()
    {
        var (o, r) = Flow(5);
        Assert.Equal(new FlowKey(Vip, o.Source, 80, o.SourcePort, Tcp), o.Reverse());
        Assert.Equal(o, o.Reverse().Reverse());
        Assert.True(o == new FlowKey(o.Source, o.Destination, o.SourcePort, o.DestinationPort, o.Protocol));
        Assert.True(o != new FlowKey(o.Source, o.Destination, o.SourcePort, o.DestinationPort, Udp));
        Assert.NotEqual(o, r);
        Assert.Equal("10.0.0.0:32773 -> 10.96.0.10:80 proto 6", o.ToString());
    }

    [Fact]
    public void Insert_then_find_both_directions()
    {
        var t = Table();
        var (o, r) = Flow(1);
        var index = t.Insert(o, r, 42, 3, ConntrackFlags.Snat | ConntrackFlags.External, T0);
        Assert.True(index >= 0);
        Assert.Equal(1, t.Count);

        Assert.True(t.TryFind(o, T0 + 5, out var i1, out var reply1, out var f1));
        Assert.Equal(index, i1);
        Assert.False(reply1);
        Assert.Equal(o, f1.Original);
        Assert.Equal(r, f1.Reply);
        Assert.Equal(42u, f1.ServicePortId);
        Assert.Equal(3u, f1.Epoch);
        Assert.Equal(ConntrackFlags.Snat | ConntrackFlags.External, f1.Flags);
        Assert.Equal(T0, f1.LastSeen);

        Assert.True(t.TryFind(r, T0 + 5, out var i2, out var reply2, out var f2));
        Assert.Equal(index, i2);
        Assert.True(reply2);
        Assert.Equal(o, f2.Original);
    }

    [Fact]
    public void Unknown_keys_miss()
    {
        var t = Table();
        var (o, r) = Flow(1);
        t.Insert(o, r, 1, 1, ConntrackFlags.None, T0);
        Assert.False(t.TryFind(o.Reverse(), T0, out var index, out _, out var flow)); // client ← VIP is not a key
        Assert.Equal(-1, index);
        Assert.Equal(default(FlowKey), flow.Original);
        Assert.False(Found(t, new FlowKey(o.Source, o.Destination, o.SourcePort, o.DestinationPort, Udp), T0));
        Assert.False(Found(t, Flow(2).Original, T0));
        Assert.False(Found(t, Flow(2).Reply, T0));
        Assert.False(Found(Table(), o, T0));
    }

    /// <summary>The packets seen after the first one, and the timeout the flow is then in.</summary>
    public static TheoryData<string, byte, (bool Reply, byte TcpFlags)[], Func<ConntrackTimeouts, TimeSpan>> TimeoutCases() => new()
    {
        { "tcp syn", Tcp, [], x => x.TcpSyn },
        { "tcp syn, more from the client", Tcp, [(false, Ack)], x => x.TcpSyn },
        { "tcp established", Tcp, [(true, 0x12), (false, Ack)], x => x.TcpEstablished },
        { "tcp one fin", Tcp, [(true, Ack), (false, Fin | Ack)], x => x.TcpEstablished },
        { "tcp fin both ways", Tcp, [(true, Ack), (false, Fin | Ack), (true, Fin | Ack)], x => x.TcpClosing },
        { "tcp fin both ways, reply first", Tcp, [(true, Fin | Ack), (false, Fin | Ack)], x => x.TcpClosing },
        { "tcp rst from the client", Tcp, [(true, Ack), (false, Rst)], x => x.TcpClosing },
        { "tcp rst from the backend before any reply", Tcp, [(true, Rst)], x => x.TcpClosing },
        { "udp", Udp, [(false, 0)], x => x.Udp },
        { "udp stream", Udp, [(true, 0)], x => x.UdpStream },
        { "icmp", Icmp, [], x => x.Icmp },
        { "icmp echo replied", Icmp, [(true, 0)], x => x.Icmp },
        { "other protocol (sctp) as udp", 132, [(true, 0)], x => x.UdpStream },
    };

    /// <summary>Each timeout expires exactly at LastSeen + timeout: found one tick before, missed at it.</summary>
    [Theory]
    [MemberData(nameof(TimeoutCases))]
    public void Every_timeout_expires_at_its_boundary(string name, byte protocol, (bool Reply, byte TcpFlags)[] packets, Func<ConntrackTimeouts, TimeSpan> timeout)
    {
        // Distinct values so a wrong class cannot pass by coincidence.
        var timeouts = new ConntrackTimeouts(TimeSpan.FromSeconds(61), TimeSpan.FromSeconds(3600), TimeSpan.FromSeconds(11),
            TimeSpan.FromSeconds(31), TimeSpan.FromSeconds(121), TimeSpan.FromSeconds(29));
        var t = Table(16, timeouts);
        var index = Insert(t, 9, protocol);
        foreach (var (reply, tcpFlags) in packets) t.Observe(index, reply, tcpFlags, T0);
        var ticks = NodeOptions.Ticks(timeout(timeouts));
        var (o, r) = Flow(9, protocol);
        Assert.True(t.TryFind(o, T0 + ticks - 1, out _, out _, out var flow), name);
        Assert.Equal(ticks, t.TimeoutTicks(flow));
        Assert.True(Found(t, r, T0 + ticks - 1), name);
        Assert.False(Found(t, o, T0 + ticks), name);
        Assert.False(Found(t, r, T0 + ticks), name);
        Assert.False(Found(t, o, T0 + ticks + 1), name);
        Assert.Equal(1, t.CountLive(T0 + ticks - 1));
        Assert.Equal(0, t.CountLive(T0 + ticks));
    }

    [Fact]
    public void Default_timeouts()
    {
        var d = ConntrackTimeouts.Default;
        Assert.Equal((60, 6 * 3600, 10, 30, 120, 30),
            ((int)d.TcpSyn.TotalSeconds, (int)d.TcpEstablished.TotalSeconds, (int)d.TcpClosing.TotalSeconds,
             (int)d.Udp.TotalSeconds, (int)d.UdpStream.TotalSeconds, (int)d.Icmp.TotalSeconds));
    }

    [Fact]
    public void Observe_refreshes_and_folds_flags_by_direction()
    {
        var t = Table();
        var index = Insert(t, 1, Tcp, flags: ConntrackFlags.Snat);
        t.Observe(index, isReply: false, Fin, T0 + 100);
        Assert.True(t.TryFind(Flow(1).Original, T0 + 100, out _, out _, out var flow));
        Assert.Equal(ConntrackFlags.Snat | ConntrackFlags.OriginalFin, flow.Flags);
        Assert.Equal(T0 + 100, flow.LastSeen);
        t.Observe(index, isReply: true, Ack, T0 + 50); // an older time never moves LastSeen back
        Assert.True(t.TryFind(Flow(1).Reply, T0 + 100, out _, out _, out flow));
        Assert.Equal(ConntrackFlags.Snat | ConntrackFlags.OriginalFin | ConntrackFlags.SeenReply, flow.Flags);
        Assert.Equal(T0 + 100, flow.LastSeen);
        // Refreshed: alive until the new LastSeen + timeout (now established, one FIN only).
        var established = NodeOptions.Ticks(ConntrackTimeouts.Default.TcpEstablished);
        Assert.True(Found(t, Flow(1).Original, T0 + 100 + established - 1));
        Assert.False(Found(t, Flow(1).Original, T0 + 100 + established));
    }

    [Fact]
    public void Observe_does_not_revive_an_expired_flow_and_ignores_bad_indices()
    {
        var t = Table();
        var index = Insert(t, 1, Udp);
        var ticks = NodeOptions.Ticks(ConntrackTimeouts.Default.Udp);
        t.Observe(index, true, 0, T0 + ticks);
        Assert.False(Found(t, Flow(1, Udp).Original, T0 + ticks));
        t.Observe(-1, false, 0, T0);
        t.Observe(t.Capacity, false, 0, T0);
        t.Observe(index + 1, false, 0, T0); // a free slot
        Assert.Equal(0, t.CountLive(T0 + ticks));
        Assert.Equal(1, t.Count);
    }

    [Fact]
    public void SetEpoch_is_seen_by_readers()
    {
        var t = Table();
        var index = Insert(t, 1);
        t.SetEpoch(index, 99);
        Assert.True(t.TryFind(Flow(1).Reply, T0, out _, out _, out var flow));
        Assert.Equal(99u, flow.Epoch);
        t.SetEpoch(-5, 1);
    }

    [Fact]
    public void Remove_frees_both_keys_and_the_slot()
    {
        var t = Table(4);
        var a = Insert(t, 1);
        Insert(t, 2);
        t.Remove(a);
        Assert.Equal(1, t.Count);
        Assert.False(Found(t, Flow(1).Original, T0));
        Assert.False(Found(t, Flow(1).Reply, T0));
        Assert.True(Found(t, Flow(2).Original, T0));
        t.Remove(a); // twice: ignored
        t.Remove(-1);
        t.Remove(100);
        Assert.Equal(1, t.Count);
        // The slot is reused, and the old keys still miss.
        Assert.Equal(a, Insert(t, 3));
        Assert.True(Found(t, Flow(3).Reply, T0));
        Assert.False(Found(t, Flow(1).Reply, T0));
        Insert(t, 4);
        Insert(t, 5);
        Assert.Equal(-1, Insert(t, 6));
        Assert.Equal(1, t.InsertFailures);
    }

    /// <summary>services.md §5.4: 110 % of capacity, all live. Exactly the overflow fails; every earlier flow still answers.</summary>
    [Theory]
    [InlineData(1000)]
    [InlineData(4096)]
    [InlineData(100_000)]
    public void Inserting_110_percent_fails_exactly_the_overflow(int capacity)
    {
        var t = Table(capacity);
        var overflow = capacity / 10;
        for (var c = 0; c < capacity + overflow; c++)
        {
            var index = Insert(t, c, Udp, T0 + c);
            Assert.True(c < capacity ? index >= 0 : index == -1, $"insert {c} returned {index}");
        }
        Assert.Equal(overflow, t.InsertFailures);
        Assert.Equal(capacity, t.Count);
        var now = T0 + capacity + overflow;
        for (var c = 0; c < capacity; c++)
        {
            var (o, r) = Flow(c, Udp);
            Assert.True(t.TryFind(o, now, out var i, out _, out var flow) && flow.ServicePortId == (uint)c, $"flow {c} lost");
            Assert.True(t.TryFind(r, now, out var j, out var isReply, out _) && isReply && i == j, $"flow {c} reply lost");
        }
        for (var c = capacity; c < capacity + overflow; c++) Assert.False(Found(t, Flow(c, Udp).Original, now));
    }

    /// <summary>No sweeper: once the flows of a full table time out, inserts succeed again, reclaiming as they go.</summary>
    [Fact]
    public void Capacity_recovers_after_the_timeout_without_a_sweep()
    {
        const int Capacity = 2048;
        var t = Table(Capacity);
        var udp = NodeOptions.Ticks(ConntrackTimeouts.Default.Udp);
        for (var c = 0; c < Capacity; c++) Insert(t, c, Udp, T0);
        // Every other flow stays alive.
        for (var c = 0; c < Capacity; c += 2)
        {
            Assert.True(t.TryFind(Flow(c, Udp).Original, T0 + udp / 2, out var index, out _, out _));
            t.Observe(index, false, 0, T0 + udp / 2);
        }
        Assert.Equal(-1, Insert(t, Capacity, Udp, T0 + udp - 1));
        Assert.Equal(1, t.InsertFailures);

        var later = T0 + udp;
        for (var c = Capacity; c < Capacity + Capacity / 2; c++)
            Assert.True(Insert(t, c, Udp, later) >= 0, $"insert {c} after the timeout failed");
        Assert.Equal(1, t.InsertFailures);
        Assert.Equal(Capacity, t.Count);
        Assert.Equal(Capacity, t.CountLive(later));
        for (var c = 0; c < Capacity + Capacity / 2; c++)
            Assert.Equal(c >= Capacity || c % 2 == 0, Found(t, Flow(c, Udp).Reply, later));
        Assert.Equal(-1, Insert(t, 10 * Capacity, Udp, later));
    }

    [Fact]
    public void A_key_reinserted_after_expiry_finds_the_new_flow()
    {
        var t = Table(64);
        var first = Insert(t, 1, Udp, T0);
        var expired = T0 + NodeOptions.Ticks(ConntrackTimeouts.Default.Udp);
        Assert.False(Found(t, Flow(1, Udp).Original, expired));
        var second = Insert(t, 1, Udp, expired);
        Assert.NotEqual(first, second); // the free list had room: the expired one is not reclaimed yet
        Assert.Equal(2, t.Count);
        Assert.True(t.TryFind(Flow(1, Udp).Reply, expired, out var index, out _, out _));
        Assert.Equal(second, index);
    }

    [Fact]
    public void Constructor_validates()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConntrackTable(0, ConntrackTimeouts.Default, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConntrackTable(ConntrackTable.MaxCapacity + 1, ConntrackTimeouts.Default, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConntrackTable(8, ConntrackTimeouts.Default with { Udp = TimeSpan.Zero }, 1));
        Assert.Throws<ArgumentNullException>(() => new ConntrackTable(8, null!, 1));
        var t = new ConntrackTable(1, ConntrackTimeouts.Default, 1);
        Assert.Equal(1, t.Capacity);
        Assert.Equal(16, t.IndexBuckets);
        Assert.True(Insert(t, 1) >= 0);
        Assert.Equal(-1, Insert(t, 2));
    }

    /// <summary>
    /// The burst lookup gives the same answer as TryFind key by key: hits in both directions, unknown keys, removed
    /// and expired flows, for bursts of 0..300 keys (several chunks, ragged ends).
    /// </summary>
    [Property(MaxTest = 100)]
    public Property Burst_lookup_agrees_with_single_lookups() => Prop.ForAll(
        Arb.From(from n in Gen.Choose(0, 300) from seed in Gen.Choose(0, int.MaxValue) from staged in Gen.Elements(true, false) select (Length: n, Seed: seed, Staged: staged)), c =>
        {
            var random = new Random(c.Seed);
            var t = Table(256);
            Assert.False(t.StageBursts); // 24 KB: in cache
            t.StageBursts = c.Staged;
            var udp = NodeOptions.Ticks(ConntrackTimeouts.Default.Udp);
            for (var client = 0; client < 200; client++)
            {
                var index = Insert(t, client, Udp, T0 + random.Next(2) * udp); // about half expire at T0 + udp
                if (random.Next(8) == 0) t.Remove(index);
            }
            var now = T0 + udp + 5;
            var keys = new FlowKey[c.Length];
            for (var i = 0; i < keys.Length; i++)
            {
                var (o, r) = Flow(random.Next(300), Udp);
                keys[i] = random.Next(2) == 0 ? o : r;
            }
            var indices = new int[keys.Length];
            var replies = new bool[keys.Length];
            var flows = new ConntrackFlow[keys.Length];
            var hits = t.TryFind(keys, now, indices, replies, flows);
            var expectedHits = 0;
            for (var i = 0; i < keys.Length; i++)
            {
                var found = t.TryFind(keys[i], now, out var index, out var isReply, out var flow);
                expectedHits += found ? 1 : 0;
                Assert.Equal(found ? index : -1, indices[i]);
                if (!found) continue;
                Assert.Equal(isReply, replies[i]);
                Assert.Equal(flow.Original, flows[i].Original);
                Assert.Equal(flow.Reply, flows[i].Reply);
                Assert.Equal(flow.LastSeen, flows[i].LastSeen);
            }
            Assert.Equal(expectedHits, hits);
        });

    [Fact]
    public void Bursts_are_staged_for_tables_larger_than_L2()
    {
        Assert.False(Table(8_000).StageBursts);
        Assert.True(Table(10_000).StageBursts);
    }

    [Fact]
    public void Burst_lookup_wants_outputs_as_long_as_the_keys()
    {
        var t = Table();
        var keys = new FlowKey[4];
        Assert.Throws<ArgumentException>(() => t.TryFind(keys, T0, new int[3], new bool[4], new ConntrackFlow[4]));
        Assert.Throws<ArgumentException>(() => t.TryFind(keys, T0, new int[4], new bool[3], new ConntrackFlow[4]));
        Assert.Throws<ArgumentException>(() => t.TryFind(keys, T0, new int[4], new bool[4], new ConntrackFlow[3]));
        Assert.Equal(0, t.TryFind(keys, T0, new int[4], new bool[4], new ConntrackFlow[4]));
    }

    [Fact]
    public unsafe void Vector_and_scalar_bucket_match_agree()
    {
        var random = new Random(3);
        var words = new ulong[ConntrackTable.Ways];
        fixed (ulong* p = words)
        {
            for (var round = 0; round < 2000; round++)
            {
                var tag = (ulong)random.Next(4) << 32;
                for (var w = 0; w < words.Length; w++)
                    words[w] = random.Next(3) == 0 ? 0 : ((ulong)random.Next(4) << 32) | (uint)random.Next(3);
                Assert.Equal(ConntrackTable.MatchScalar(p, 0xFFFF_FFFF_0000_0000, tag), ConntrackTable.Match(p, 0xFFFF_FFFF_0000_0000, tag));
                Assert.Equal(ConntrackTable.MatchScalar(p, ulong.MaxValue, 0), ConntrackTable.Match(p, ulong.MaxValue, 0));
            }
        }
    }
}
