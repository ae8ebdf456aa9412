using System.Buffers.Binary;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Tables;
using FastOverlay.Tests.Pipeline;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Hostile;

/// <summary>
/// Resource bounds under attack. Each test floods the node for thousands of bursts with one legitimate packet
/// mixed into every burst, and checks that the tables stay within their bounds, buffers in use stay bounded,
/// the forwarder's thread allocates nothing once warm, and every legitimate packet is delivered.
/// The node has a /16 pod subnet so that a flood can name far more neighbours than any table holds.
/// </summary>
public class FloodTests
{
    private const int Burst = 256;
    private const int WarmupRounds = 300;
    private const int Rounds = 2000;

    private static readonly NodeOptions s_wide = new()
    {
        Name = "node1",
        PublicIp = NodeHarness.PublicIp,
        Subnet = Ipv4Prefix.Parse("10.245.0.0/16"),
        VtepMac = NodeHarness.VtepMac,
        GatewayMac = NodeHarness.GatewayMac,
        UnderlayMac = NodeHarness.UnderlayMac,
    };

    /// <summary>Writes one flood frame into a buffer, given the round and its index in the burst. Must not allocate.</summary>
    private delegate void FloodWriter(Span<byte> frame, int round, int i);

    private sealed class Rig
    {
        public readonly NodeHarness H = new(options: s_wide, poolSize: 8192);
        public readonly byte[] Flood;
        public readonly byte[] Legit;
        public long LegitSent;
        public long LegitDelivered;
        public int MaxInUse;
        public long ArpRepliesByPod1;
        /// <summary>Bursts sent by <see cref="Run"/>, warm-up included.</summary>
        public int RoundsRun;
        private readonly int[] _handles = new int[Burst];
        private readonly byte[] _arpReply;

        public Rig(byte[] flood)
        {
            H.LearnPods();
            Flood = flood;
            Legit = NodeHarness.UdpFrame(H.PodMacAddress(0), NodeHarness.GatewayMac, H.PodAddress(0).Value, H.PodAddress(1).Value);
            _arpReply = NodeHarness.ArpFrame(ArpPacket.OpReply, H.PodMacAddress(1), H.PodAddress(1).Value, H.Options.GatewayIp, NodeHarness.GatewayMac, NodeHarness.GatewayMac);
        }

        /// <summary>One burst: Burst - 1 flood frames into <paramref name="input"/> plus one legitimate pod0 → pod1 packet, a poll, and everything drained.</summary>
        public void Round(RingPort input, FloodWriter write, int round)
        {
            var pool = H.Pool;
            for (var i = 0; i < Burst - 1; i++)
            {
                var h = pool.Allocate();
                var frame = pool.WritableFrame(h)[..Flood.Length];
                Flood.CopyTo(frame);
                write(frame, round, i);
                pool.SetLength(h, Flood.Length);
                _handles[i] = h;
            }
            // Plain checks here, not Assert.Equal: the measured loop must not allocate, and the assertion helpers may.
            if (input.Transmit(_handles.AsSpan(0, Burst - 1)) != Burst - 1) throw new InvalidOperationException("input ring full");
            var legit = pool.Allocate();
            Legit.CopyTo(pool.WritableFrame(legit));
            pool.SetLength(legit, Legit.Length);
            _handles[0] = legit;
            if (H.PodPorts[0].Transmit(_handles.AsSpan(0, 1)) != 1) throw new InvalidOperationException("pod ring full");
            LegitSent++;

            H.Node.Poll();
            MaxInUse = Math.Max(MaxInUse, pool.InUse);
            DrainAll();
            H.Clock.Advance(TimeSpan.FromMilliseconds(10));
        }

        /// <summary>Frees everything that came out; pod1 answers the gateway's ARP requests for its address, as its stack would.</summary>
        private void DrainAll()
        {
            var pool = H.Pool;
            int n;
            while ((n = H.Underlay.Receive(_handles)) > 0) pool.Free(_handles.AsSpan(0, n));
            while ((n = H.PodPorts[0].Receive(_handles)) > 0) pool.Free(_handles.AsSpan(0, n));
            var answer = false;
            while ((n = H.PodPorts[1].Receive(_handles)) > 0)
            {
                for (var k = 0; k < n; k++)
                {
                    var frame = pool.Frame(_handles[k]);
                    var type = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
                    if (type == Ethernet.TypeIpv4 && BinaryPrimitives.ReadUInt32BigEndian(frame[(14 + 16)..]) == H.PodAddress(1).Value) LegitDelivered++;
                    if (type == Ethernet.TypeArp && BinaryPrimitives.ReadUInt32BigEndian(frame[(14 + 24)..]) == H.PodAddress(1).Value) answer = true;
                }
                pool.Free(_handles.AsSpan(0, n));
            }
            if (answer)
            {
                var h = pool.Allocate();
                _arpReply.CopyTo(pool.WritableFrame(h));
                pool.SetLength(h, _arpReply.Length);
                _handles[0] = h;
                H.PodPorts[1].Transmit(_handles.AsSpan(0, 1));
                ArpRepliesByPod1++;
            }
        }

        /// <summary>
        /// Warms up, then floods for <see cref="Rounds"/> bursts; returns the bytes the forwarder's thread allocated
        /// meanwhile. A window that allocated is flooded once or twice more: the runtime can allocate a few hundred
        /// bytes once on the thread that triggers a tier-up (seen in a full CI run, never alone: 352 bytes in one
        /// window), while an allocation of the forwarder's own comes back in every window of the same flood.
        /// </summary>
        public long Run(RingPort input, FloodWriter write, Action? checkEachRound = null)
        {
            for (var r = 0; r < WarmupRounds; r++) Round(input, write, r);
            long allocated = 0;
            var round = WarmupRounds;
            for (var window = 0; window < 3; window++)
            {
                var before = GC.GetAllocatedBytesForCurrentThread();
                for (var end = round + Rounds; round < end; round++)
                {
                    Round(input, write, round);
                    checkEachRound?.Invoke();
                }
                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                if (allocated == 0) break;
            }
            RoundsRun = round;
            // Let the node settle: parked packets time out, every buffer comes back.
            for (var t = 0; t < 10; t++)
            {
                H.Clock.Advance(TimeSpan.FromSeconds(1.1));
                H.Node.Poll();
                DrainAll();
            }
            H.Node.Poll();
            DrainAll();
            return allocated;
        }

        public void AssertBoundedAndClean(long allocated)
        {
            var node = H.Node;
            Assert.Equal(0, allocated);
            Assert.Equal(LegitSent, LegitDelivered);
            Assert.True(node.Arp.Count <= node.Arp.Capacity, $"ARP cache {node.Arp.Count} > {node.Arp.Capacity}");
            Assert.Equal(0, node.PendingArp.PendingPackets);
            Assert.Equal(0, H.Pool.InUse);
            // Buffers in use stay far below the pool: one burst in flight plus what ARP may park.
            Assert.True(MaxInUse <= Burst + node.PendingArp.AddressCapacity * node.PendingArp.PacketsPerAddress + 64, $"up to {MaxInUse} buffers in use");
            var c = node.Counters;
            Assert.Equal(c[Counter.RxPackets] + c[Counter.ArpRequestsSent] + c[Counter.IcmpErrorsSent],
                c[Counter.TxPackets] + c.TotalDrops + c[Counter.ArpConsumed]);
            Assert.Equal(0, c.Drops(DropReason.PoolExhausted));
            Assert.Equal(0, c.Drops(DropReason.TxFull));
        }
    }

    private static void WriteDestination(Span<byte> frame, uint destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(frame[(14 + 16)..], destination);
        Ipv4Header.UpdateChecksum(frame[14..]);
    }

    [Fact]
    public void Arp_miss_flood_to_many_unresolved_pod_addresses_stays_bounded_and_legit_traffic_flows()
    {
        var rig = new Rig(NodeHarness.UdpFrame(default, NodeHarness.GatewayMac, 0, 0));
        var mac = rig.H.PodMacAddress(0);
        mac.Write(rig.Flood.AsSpan(6));
        BinaryPrimitives.WriteUInt32BigEndian(rig.Flood.AsSpan(14 + 12), rig.H.PodAddress(0).Value);
        var subnet = s_wide.Subnet.Address;
        var pending = rig.H.Node.PendingArp;
        // 10.245.1.0 - 10.245.255.255: never a pod, never answered; a fresh address for almost every packet.
        var allocated = rig.Run(rig.H.PodPorts[0], (frame, round, i) => WriteDestination(frame, subnet + 256 + (uint)((round * 255 + i) % 65000)),
            () =>
            {
                if (pending.PendingAddresses > pending.AddressCapacity || pending.PendingPackets > pending.AddressCapacity * pending.PacketsPerAddress)
                    throw new InvalidOperationException("ARP pending queue past its bounds");
            });
        rig.AssertBoundedAndClean(allocated);
        var c = rig.H.Node.Counters;
        Assert.True(c.Drops(DropReason.ArpQueueFull) > Rounds * 200, $"only {c.Drops(DropReason.ArpQueueFull)} refused");
        Assert.True(c.Drops(DropReason.ArpUnresolved) > 0);
        // The flood may make the gateway ask, but rate-limited: far fewer requests than flood packets.
        Assert.True(c[Counter.ArpRequestsSent] * 50 < rig.RoundsRun * (Burst - 1), $"{c[Counter.ArpRequestsSent]} ARP requests sent");
        Assert.Equal(2, rig.H.Node.Arp.Count); // a miss teaches nothing
    }

    [Fact]
    public void Random_destination_flood_is_routed_dropped_or_refused_within_bounds_and_legit_traffic_flows()
    {
        var rig = new Rig(NodeHarness.UdpFrame(default, NodeHarness.GatewayMac, 0, 0));
        rig.H.PodMacAddress(0).Write(rig.Flood.AsSpan(6));
        BinaryPrimitives.WriteUInt32BigEndian(rig.Flood.AsSpan(14 + 12), rig.H.PodAddress(0).Value);
        var random = new Random(11);
        var destinations = new uint[Burst * 64];
        for (var i = 0; i < destinations.Length; i++) destinations[i] = (uint)random.NextInt64(0, 1L << 32);
        var allocated = rig.Run(rig.H.PodPorts[0], (frame, round, i) => WriteDestination(frame, destinations[(round * 255 + i) % destinations.Length]));
        rig.AssertBoundedAndClean(allocated);
        var c = rig.H.Node.Counters;
        Assert.True(c.Drops(DropReason.NoRoute) > Rounds * 200);
        // ICMP errors are rate-limited (1000/s, burst 50); the flood ran 23 simulated seconds.
        var seconds = rig.RoundsRun / 100.0 + 11;
        Assert.True(c[Counter.IcmpErrorsSent] <= 50 + seconds * rig.H.Options.IcmpErrorsPerSecond, $"{c[Counter.IcmpErrorsSent]} ICMP errors");
        Assert.True(c[Counter.IcmpErrorsSuppressed] > 0);
    }

    [Fact]
    public void Flood_to_the_subnets_of_nodes_that_are_not_peers_is_unroutable_within_bounds_and_legit_traffic_flows()
    {
        var rig = new Rig(NodeHarness.UdpFrame(default, NodeHarness.GatewayMac, 0, 0));
        rig.H.PodMacAddress(0).Write(rig.Flood.AsSpan(6));
        BinaryPrimitives.WriteUInt32BigEndian(rig.Flood.AsSpan(14 + 12), rig.H.PodAddress(0).Value);
        // 10.244.3.0 - 10.244.255.255: pod subnets of nodes this node has no lease for (peer B is 10.244.2.0/24).
        var allocated = rig.Run(rig.H.PodPorts[0], (frame, round, i) => WriteDestination(frame, 0x0AF4_0300u + (uint)((round * 255 + i) % (253 * 256))));
        rig.AssertBoundedAndClean(allocated);
        var c = rig.H.Node.Counters;
        Assert.Equal(rig.RoundsRun * (Burst - 1), c.Drops(DropReason.NoRoute));
        Assert.Equal(0, c[Counter.Encapsulated]);
        Assert.True(c[Counter.IcmpErrorsSent] <= 50 + (rig.RoundsRun / 100.0 + 11) * rig.H.Options.IcmpErrorsPerSecond);
    }

    [Fact]
    public void Vxlan_flood_from_unknown_peers_is_refused_and_legit_traffic_flows()
    {
        var inner = NodeHarness.UdpFrame(NodeHarness.PeerB.VtepMac, NodeHarness.VtepMac, NodeHarness.PeerB.Subnet.Address + 9, 0x0AF5_0003);
        var rig = new Rig(NodeHarness.VxlanFrame(0, NodeHarness.PublicIp.Value, 1, inner));
        var allocated = rig.Run(rig.H.Underlay, (frame, round, i) =>
        {
            // Outer sources 100.64.0.0/10: none of them a peer.
            BinaryPrimitives.WriteUInt32BigEndian(frame[(14 + 12)..], 0x6440_0000u + (uint)(round * 255 + i) % 0x3F_FFFF);
            Ipv4Header.UpdateChecksum(frame[14..]);
        });
        rig.AssertBoundedAndClean(allocated);
        var c = rig.H.Node.Counters;
        Assert.Equal(rig.RoundsRun * (Burst - 1), c.Drops(DropReason.UnknownPeer));
        Assert.Equal(0, c[Counter.Decapsulated]);
    }

    [Fact]
    public void Arp_flood_claiming_many_addresses_is_refused_and_the_cache_never_grows()
    {
        var rig = new Rig(NodeHarness.ArpFrame(ArpPacket.OpRequest, default, 0, 0, MacAddress.Broadcast));
        var subnet = s_wide.Subnet.Address;
        var cache = rig.H.Node.Arp;
        var pod0 = rig.H.PodAddress(0).Value;
        // Gratuitous ARP from pod0's port for 10.245.1.0 onward, each with its own MAC, far more than the cache
        // holds; every 16th claims pod0's own address with a MAC that is not pod0's.
        var allocated = rig.Run(rig.H.PodPorts[0], (frame, round, i) =>
        {
            var address = i % 16 == 0 ? pod0 : subnet + 256 + (uint)((round * 255 + i) % 65000);
            var mac = new MacAddress(0x0A58_0000_0000UL | (subnet + 256 + (uint)((round * 255 + i) % 65000)));
            mac.Write(frame[6..]);
            ArpPacket.Write(frame[14..], ArpPacket.OpRequest, mac, address, MacAddress.Zero, address);
        }, () =>
        {
            if (cache.Count > cache.Capacity) throw new InvalidOperationException("ARP cache past its capacity");
        });
        rig.AssertBoundedAndClean(allocated);
        // A port speaks ARP for its own address and MAC only (anti-spoofing), so nothing of the flood is learned.
        Assert.Equal(rig.RoundsRun * (Burst - 1), rig.H.Node.Counters.Drops(DropReason.ArpSpoofed));
        Assert.Equal(2, cache.Count);
        Assert.Equal(rig.H.PodMacAddress(0), cache.Snapshot().Single(e => e.Address.Value == pod0).Mac);
    }

    [Fact]
    public void Control_the_allocation_measurement_sees_a_flood_that_allocates()
    {
        var rig = new Rig(NodeHarness.UdpFrame(default, NodeHarness.GatewayMac, 0, 0));
        object? sink = null;
        var allocated = rig.Run(rig.H.PodPorts[0], (frame, round, i) =>
        {
            if (i == 0) sink = new byte[32];
        });
        GC.KeepAlive(sink);
        Assert.True(allocated >= Rounds * 32, $"{allocated} bytes seen");
    }
}
