using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Pipeline;

/// <summary>
/// Several workers of one node: a neighbour learned by one reaches the others, and a packet another worker parked
/// for it is released and delivered (PACKET_FANOUT_HASH may hand the ARP reply to any worker).
/// </summary>
public class NeighbourExchangeTests
{
    [Fact]
    public void Updates_reach_every_other_worker_and_not_the_sender()
    {
        var exchange = new NeighbourExchange(3, capacity: 4);
        exchange.Publish(1, new NeighbourUpdate(7, 0x0A58_0000_0007, 2));
        var into = new NeighbourUpdate[8];
        Assert.Equal(0, exchange.Drain(1, into));
        Assert.Equal(1, exchange.Drain(0, into));
        Assert.Equal(new NeighbourUpdate(7, 0x0A58_0000_0007, 2), into[0]);
        Assert.Equal(1, exchange.Drain(2, into));
        Assert.Equal(0, exchange.Drain(2, into));
    }

    [Fact]
    public void A_full_ring_loses_updates_instead_of_blocking()
    {
        var exchange = new NeighbourExchange(2, capacity: 4);
        for (uint i = 0; i < 10; i++) exchange.Publish(0, new NeighbourUpdate(i, i, 1));
        Assert.Equal(4, exchange.Drain(1, new NeighbourUpdate[16]));
    }

    private sealed class Worker
    {
        public Worker(NodeOptions options, NeighbourExchange exchange, int index, ManualClock clock)
        {
            Pool = new PacketPool(1024);
            var (underlay, _) = RingPort.CreatePair($"underlay{index}", "fabric", 256);
            Pods = new RingPort[2];
            var attachments = new List<PodAttachment>();
            for (var i = 0; i < 2; i++)
            {
                var (nodeEnd, podEnd) = RingPort.CreatePair($"w{index}veth{i}", $"w{index}pod{i}", 256);
                Pods[i] = podEnd;
                attachments.Add(new PodAttachment(nodeEnd, new Ipv4Address(options.Subnet.Address + 2 + (uint)i)));
            }
            Forwarder = new NodeForwarder(Pool, ForwardingState.Build(options, underlay, attachments, [NodeHarness.PeerB]), clock, exchange: exchange, worker: index);
        }

        public PacketPool Pool { get; }
        public RingPort[] Pods { get; }
        public NodeForwarder Forwarder { get; }

        public void Inject(int pod, byte[] frame)
        {
            var h = Pool.Allocate();
            frame.CopyTo(Pool.WritableFrame(h));
            Pool.SetLength(h, frame.Length);
            Assert.Equal(1, Pods[pod].Transmit([h]));
        }

        public List<byte[]> Drain(int pod)
        {
            var frames = new List<byte[]>();
            var handles = new int[64];
            int n;
            while ((n = Pods[pod].Receive(handles)) > 0)
            {
                foreach (var h in handles.AsSpan(0, n))
                {
                    frames.Add(Pool.Frame(h).ToArray());
                    Pool.Free(h);
                }
            }
            return frames;
        }
    }

    [Fact]
    public void A_packet_parked_on_one_worker_goes_out_when_another_worker_learns_its_next_hop()
    {
        var options = new NodeHarness().Options;
        var clock = new ManualClock();
        var exchange = new NeighbourExchange(2);
        var w0 = new Worker(options, exchange, 0, clock);
        var w1 = new Worker(options, exchange, 1, clock);
        var pod0 = new Ipv4Address(options.Subnet.Address + 2);
        var pod1 = new Ipv4Address(options.Subnet.Address + 3);
        var mac0 = new MacAddress(0x0A58_0000_0000UL | pod0.Value);
        var mac1 = new MacAddress(0x0A58_0000_0000UL | pod1.Value);

        // pod0 → pod1 arrives on worker 0, which has never heard of pod1: parked, ARP request out of its pod1 socket.
        w0.Inject(0, NodeHarness.UdpFrame(mac0, options.GatewayMac, pod0.Value, pod1.Value));
        w0.Forwarder.Poll();
        var request = Assert.Single(w0.Drain(1));
        Assert.Equal(Ethernet.TypeArp, Ethernet.Parse(request, out var type, out _) == DropReason.None ? type : (ushort)0);

        // The reply lands on worker 1 (fanout chose it): worker 1 learns pod1 and tells worker 0.
        w1.Inject(1, NodeHarness.ArpFrame(ArpPacket.OpReply, mac1, pod1.Value, options.GatewayIp, options.GatewayMac, options.GatewayMac));
        w1.Forwarder.Poll();
        Assert.Equal(ArpState.Reachable, w1.Forwarder.Arp.Lookup(pod1.Value, clock.Now, out _, out _));
        Assert.Empty(w1.Drain(1));

        w0.Forwarder.Poll();
        var delivered = Assert.Single(w0.Drain(1));
        Assert.Equal(mac1, Ethernet.Destination(delivered));
        Assert.Equal(pod1.Value, Ipv4Header.Destination(delivered.AsSpan(Ethernet.HeaderLength)));
        Assert.Equal(1, w0.Forwarder.Counters[Counter.ArpReleased]);
    }
}
