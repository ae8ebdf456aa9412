using FastOverlay.Tables;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using static FastOverlay.Tables.ArpPendingQueue;

namespace FastOverlay.Tests.Tables;

public class ArpPendingQueueTests
{
    private const long R = 1000;          // retransmit interval
    private const long T0 = 5_000_000;    // a realistic, positive Stopwatch timestamp
    private const uint A = 0x0AF4_0102;
    private const uint B = 0x0AF4_0103;
    private const uint C = 0x0AF4_0104;

    private static int[] Released(ArpPendingQueue q, uint address)
    {
        var buffer = new int[q.PacketsPerAddress];
        var n = q.Release(address, buffer);
        return buffer[..n];
    }

    private static (List<(uint Address, int Port)> Probes, int[] Expired) Tick(ArpPendingQueue q, long now, int probeRoom = 16, int expiredRoom = 64)
    {
        var probes = new (uint, int)[probeRoom];
        var expired = new int[expiredRoom];
        var n = q.Tick(now, probes, out var count, expired);
        return ([.. probes[..count]], expired[..n]);
    }

    [Fact]
    public void ConstructorValidates()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ArpPendingQueue(0, 3, R));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ArpPendingQueue(4, 0, R));
        var q = new ArpPendingQueue(4, 3, R);
        Assert.Equal(4, q.AddressCapacity);
        Assert.Equal(3, q.PacketsPerAddress);
        Assert.Equal(R, q.RetransmitTicks);
        Assert.Equal(0, q.PendingAddresses);
        Assert.Equal(0, q.PendingPackets);
    }

    [Fact]
    public void ReleaseReturnsPacketsInParkOrder()
    {
        var q = new ArpPendingQueue(4, 8, R);
        foreach (var p in new[] { 11, 12, 13 }) Assert.Equal(ParkResult.Parked, q.Park(A, p, 1, T0, out _, out var d));
        Assert.Equal(ParkResult.Parked, q.Park(B, 21, 2, T0, out _, out _));
        Assert.Equal(2, q.PendingAddresses);
        Assert.Equal(4, q.PendingPackets);
        Assert.Equal([11, 12, 13], Released(q, A));
        Assert.Equal(1, q.PendingAddresses);
        Assert.Equal(1, q.PendingPackets);
        Assert.Empty(Released(q, A));
        Assert.Empty(Released(q, C));
        Assert.Equal([21], Released(q, B));
        Assert.Equal(0, q.PendingAddresses);
        Assert.Equal(0, q.PendingPackets);
    }

    [Fact]
    public void PerAddressLimitDisplacesTheOldest()
    {
        var q = new ArpPendingQueue(4, 3, R);
        Assert.Equal(ParkResult.Parked, q.Park(A, 1, 0, T0, out _, out var d1));
        Assert.Equal(-1, d1);
        q.Park(A, 2, 0, T0, out _, out _);
        q.Park(A, 3, 0, T0, out _, out _);
        Assert.Equal(ParkResult.ParkedDisplacedOldest, q.Park(A, 4, 0, T0, out _, out var d4));
        Assert.Equal(1, d4);
        Assert.Equal(ParkResult.ParkedDisplacedOldest, q.Park(A, 5, 0, T0, out _, out var d5));
        Assert.Equal(2, d5);
        Assert.Equal(3, q.PendingPackets);
        Assert.Equal([3, 4, 5], Released(q, A));
    }

    [Fact]
    public void PerAddressLimitOfOne()
    {
        var q = new ArpPendingQueue(2, 1, R);
        q.Park(A, 1, 0, T0, out _, out _);
        Assert.Equal(ParkResult.ParkedDisplacedOldest, q.Park(A, 2, 0, T0, out _, out var d));
        Assert.Equal(1, d);
        Assert.Equal([2], Released(q, A));
    }

    [Fact]
    public void FullTableRefusesNewAddresses()
    {
        var q = new ArpPendingQueue(2, 2, R);
        q.Park(A, 1, 0, T0, out _, out _);
        q.Park(B, 2, 0, T0, out _, out _);
        Assert.Equal(ParkResult.Refused, q.Park(C, 3, 0, T0, out var probe, out var displaced));
        Assert.False(probe);
        Assert.Equal(-1, displaced);
        Assert.Equal(2, q.PendingAddresses);
        Assert.Empty(Released(q, C));
        // Known addresses still take packets.
        Assert.Equal(ParkResult.Parked, q.Park(A, 4, 0, T0, out _, out _));
        // A freed slot is taken by the next new address.
        Assert.Equal([2], Released(q, B));
        Assert.Equal(ParkResult.Parked, q.Park(C, 5, 0, T0, out _, out _));
        Assert.Equal([1, 4], Released(q, A));
        Assert.Equal([5], Released(q, C));
    }

    [Fact]
    public void FirstParkProbesImmediately()
    {
        var q = new ArpPendingQueue(4, 4, R);
        q.Park(A, 1, 7, T0, out var probe, out _);
        Assert.True(probe, "the first packet for an address must trigger an ARP request");
        // Also at time 0 and at negative timestamps.
        q.Park(B, 2, 7, 0, out probe, out _);
        Assert.True(probe);
        q.Park(C, 3, 7, -T0, out probe, out _);
        Assert.True(probe);
    }

    [Fact]
    public void ProbesAreRateLimitedPerAddress()
    {
        var q = new ArpPendingQueue(4, 8, R);
        q.Park(A, 1, 7, T0, out var probe, out _);
        Assert.True(probe);
        q.Park(A, 2, 7, T0, out probe, out _);
        Assert.False(probe);
        q.Park(A, 3, 7, T0 + R - 1, out probe, out _);
        Assert.False(probe);
        // Another address is not held back by A.
        q.Park(B, 4, 7, T0 + R - 1, out var probeB, out _);
        Assert.True(probeB);
        q.Park(A, 5, 7, T0 + R, out probe, out _);
        Assert.True(probe);
        q.Park(A, 6, 7, T0 + 2 * R, out probe, out _);
        Assert.True(probe);
        // MaxProbes reached: no more, however long we wait.
        q.Park(A, 7, 7, T0 + 3 * R, out probe, out _);
        Assert.False(probe);
        q.Park(A, 8, 7, T0 + 100 * R, out probe, out _);
        Assert.False(probe);
        Assert.Equal(3, MaxProbes);
    }

    [Fact]
    public void TickRetransmitsThenExpires()
    {
        var q = new ArpPendingQueue(4, 4, R);
        q.Park(A, 1, 7, T0, out var probe, out _);
        Assert.True(probe);
        q.Park(A, 2, 7, T0 + 1, out _, out _);

        var (probes, expired) = Tick(q, T0 + R - 1);
        Assert.Empty(probes);
        Assert.Empty(expired);

        (probes, expired) = Tick(q, T0 + R);
        Assert.Equal([(A, 7)], probes);
        Assert.Empty(expired);
        (probes, _) = Tick(q, T0 + R + 1);
        Assert.Empty(probes);

        (probes, expired) = Tick(q, T0 + 2 * R);
        Assert.Equal([(A, 7)], probes);
        Assert.Empty(expired);

        // Three probes sent (one by Park, two by Tick): the next interval gives up.
        (probes, expired) = Tick(q, T0 + 3 * R - 1);
        Assert.Empty(probes);
        Assert.Empty(expired);
        (probes, expired) = Tick(q, T0 + 3 * R);
        Assert.Empty(probes);
        Assert.Equal([1, 2], expired);
        Assert.Equal(0, q.PendingAddresses);
        Assert.Equal(0, q.PendingPackets);
        (probes, expired) = Tick(q, T0 + 10 * R);
        Assert.Empty(probes);
        Assert.Empty(expired);
    }

    [Fact]
    public void ProbesSentByParkCountTowardsMaxProbes()
    {
        var q = new ArpPendingQueue(4, 8, R);
        q.Park(A, 1, 3, T0, out _, out _);
        q.Park(A, 2, 3, T0 + R, out var probe, out _);
        Assert.True(probe);
        var (probes, _) = Tick(q, T0 + R + R / 2);
        Assert.Empty(probes);                                   // Park's retransmit reset the interval
        (probes, _) = Tick(q, T0 + 2 * R);
        Assert.Equal([(A, 3)], probes);
        var (_, expired) = Tick(q, T0 + 3 * R);
        Assert.Equal([1, 2], expired);
    }

    [Fact]
    public void TickReportsTheFirstParksPort()
    {
        var q = new ArpPendingQueue(4, 8, R);
        q.Park(A, 1, 5, T0, out _, out _);
        q.Park(A, 2, 9, T0, out _, out _);
        var (probes, _) = Tick(q, T0 + R);
        Assert.Equal([(A, 5)], probes);
    }

    [Fact]
    public void TickDefersWhatDoesNotFit()
    {
        var q = new ArpPendingQueue(4, 4, R);
        q.Park(A, 1, 1, T0, out _, out _);
        q.Park(B, 2, 2, T0, out _, out _);
        q.Park(B, 3, 2, T0, out _, out _);
        // Room for one probe: the other address gets its turn on the next tick.
        var (probes, _) = Tick(q, T0 + R, probeRoom: 1);
        Assert.Single(probes);
        var (more, _) = Tick(q, T0 + R, probeRoom: 1);
        Assert.Single(more);
        Assert.NotEqual(probes[0].Address, more[0].Address);
        Tick(q, T0 + 2 * R);
        // Expiry: only A's single packet fits; B's two wait for a bigger buffer.
        var (_, expired) = Tick(q, T0 + 3 * R, expiredRoom: 1);
        Assert.Equal([1], expired);
        Assert.Equal(1, q.PendingAddresses);
        (_, expired) = Tick(q, T0 + 3 * R, expiredRoom: 2);
        Assert.Equal([2, 3], expired);
        Assert.Equal(0, q.PendingAddresses);
    }

    [Fact]
    public void ReleaseStopsTheProbesAndAReparkStartsAfresh()
    {
        var q = new ArpPendingQueue(4, 4, R);
        q.Park(A, 1, 1, T0, out _, out _);
        Tick(q, T0 + R);
        Tick(q, T0 + 2 * R);
        Assert.Equal([1], Released(q, A));
        var (probes, expired) = Tick(q, T0 + 3 * R);
        Assert.Empty(probes);
        Assert.Empty(expired);
        // Parked again later: a new resolution with a full probe budget.
        q.Park(A, 2, 1, T0 + 4 * R, out var probe, out _);
        Assert.True(probe);
        (probes, _) = Tick(q, T0 + 5 * R);
        Assert.Equal([(A, 1)], probes);
        (probes, _) = Tick(q, T0 + 6 * R);
        Assert.Equal([(A, 1)], probes);
        (_, expired) = Tick(q, T0 + 7 * R);
        Assert.Equal([2], expired);
    }

    [Fact]
    public void ReleaseAllGivesUpEverything()
    {
        var q = new ArpPendingQueue(4, 2, R);
        q.Park(A, 1, 0, T0, out _, out _);
        q.Park(B, 2, 0, T0, out _, out _);
        q.Park(A, 3, 0, T0, out _, out _);
        q.Park(C, 4, 0, T0, out _, out _);
        q.Park(C, 5, 0, T0, out _, out _);
        q.Park(C, 6, 0, T0, out _, out _);        // displaces 4
        var buffer = new int[16];
        var n = q.ReleaseAll(buffer);
        Assert.Equal(5, n);
        Assert.Equal([1, 2, 3, 5, 6], buffer[..n].Order());
        Assert.Equal(0, q.PendingAddresses);
        Assert.Equal(0, q.PendingPackets);
        Assert.Equal(0, q.ReleaseAll(buffer));
        // The table is usable again afterwards.
        Assert.Equal(ParkResult.Parked, q.Park(B, 7, 0, T0, out var probe, out _));
        Assert.True(probe);
    }

    [Fact]
    public void AddressZeroIsRefused()
    {
        // 0 marks a free slot; a packet parked "for" it could never be released, ticked or counted.
        var q = new ArpPendingQueue(2, 2, R);
        Assert.Equal(ParkResult.Refused, q.Park(0, 1, 0, T0, out var probe, out var displaced));
        Assert.False(probe);
        Assert.Equal(-1, displaced);
        Assert.Equal(0, q.PendingAddresses);
        Assert.Equal(0, q.PendingPackets);
        // Both slots are still free for real addresses.
        Assert.Equal(ParkResult.Parked, q.Park(A, 2, 0, T0, out _, out _));
        Assert.Equal(ParkResult.Parked, q.Park(B, 3, 0, T0, out _, out _));
    }

    // ---- property: parking is a bounded FIFO per address ----

    internal sealed record ParkCase(int Addresses, int PerAddress, (byte Op, int Address)[] Ops)
    {
        public override string ToString() => $"{Addresses}x{PerAddress}: {string.Join(" ", Ops.Select(o => o.Op == 0 ? $"p{o.Address}" : $"r{o.Address}"))}";
    }

    private static readonly Gen<ParkCase> ParkCases =
        from addresses in Gen.Choose(1, 6)
        from per in Gen.Choose(1, 5)
        from n in Gen.Choose(0, 200)
        from ops in Gen.ArrayOf(Gen.Zip(Gen.Frequency((6, Gen.Constant((byte)0)), (1, Gen.Constant((byte)1))), Gen.Choose(1, 9)), n)
        select new ParkCase(addresses, per, ops);

    [Property(MaxTest = 200)]
    public Property ParkAndReleaseFollowABoundedFifoModel() => Prop.ForAll(Arb.From(ParkCases), c =>
    {
        var q = new ArpPendingQueue(c.Addresses, c.PerAddress, R);
        var model = new Dictionary<uint, Queue<int>>();
        var packet = 0;
        foreach (var (op, address) in c.Ops)
        {
            var a = (uint)address;
            if (op == 0)
            {
                packet++;
                var result = q.Park(a, packet, 0, T0, out var probe, out var displaced);
                if (!model.TryGetValue(a, out var queue))
                {
                    if (model.Count == c.Addresses)
                    {
                        Assert.Equal(ParkResult.Refused, result);
                        Assert.False(probe);
                        continue;
                    }
                    Assert.True(probe, "first packet of a new address probes");
                    model[a] = queue = new Queue<int>();
                }
                else
                {
                    Assert.False(probe, "same timestamp: no second probe");
                }
                if (queue.Count == c.PerAddress)
                {
                    Assert.Equal(ParkResult.ParkedDisplacedOldest, result);
                    Assert.Equal(queue.Dequeue(), displaced);
                }
                else
                {
                    Assert.Equal(ParkResult.Parked, result);
                    Assert.Equal(-1, displaced);
                }
                queue.Enqueue(packet);
            }
            else
            {
                var expected = model.Remove(a, out var queue) ? queue.ToArray() : [];
                Assert.Equal(expected, Released(q, a));
            }
            Assert.Equal(model.Count, q.PendingAddresses);
            Assert.Equal(model.Values.Sum(x => x.Count), q.PendingPackets);
        }
        var all = new int[c.Addresses * c.PerAddress];
        var n = q.ReleaseAll(all);
        Assert.Equal(model.Values.SelectMany(x => x).Order(), all[..n].Order());
    });
}
