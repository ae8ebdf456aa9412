using FastOverlay.Pipeline;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Pipeline;

/// <summary>Traffic is counted per peer on encap and decap, and a peer that stays keeps its counters across rebuilds.</summary>
public class PeerCountersTests
{
    [Fact]
    public void Encap_and_decap_count_packets_and_bytes_per_peer()
    {
        var h = new NodeHarness();
        h.LearnPods();
        h.Node.Poll();
        h.Drain(0);
        var peer = NodeHarness.PeerB;
        var remote = peer.Subnet.Address + 7;
        for (var i = 0; i < 3; i++)
            h.Inject(0, NodeHarness.UdpFrame(h.PodMacAddress(0), h.Options.GatewayMac, h.PodAddress(0).Value, remote, payload: 100));
        h.Node.Poll();
        var sent = h.Drain(h.Underlay);
        Assert.Equal(3, sent.Count);
        var counters = h.Node.State.Templates[0].Counters;
        Assert.Equal(3, counters.TxPackets);
        Assert.Equal(sent.Sum(f => f.Length), counters.TxBytes);

        var inner = NodeHarness.UdpFrame(peer.VtepMac, h.Options.VtepMac, remote, h.PodAddress(1).Value, payload: 40);
        h.InjectUnderlay(NodeHarness.VxlanFrame(peer.PublicIp.Value, h.Options.PublicIp.Value, h.Options.Vni, inner));
        h.Node.Poll();
        Assert.Single(h.Drain(1));
        Assert.Equal(1, counters.RxPackets);
        Assert.Equal(inner.Length, counters.RxBytes);
    }

    [Fact]
    public void A_rebuild_keeps_the_counters_of_a_peer_that_stays_and_starts_new_ones_for_a_new_peer()
    {
        var h = new NodeHarness();
        var before = h.Node.State;
        var third = new FastOverlay.Tables.Peer("node3", Ipv4Address.Parse("172.31.77.3"), Ipv4Prefix.Parse("10.244.3.0/24"), MacAddress.Parse("0e:fd:00:00:03:00"));
        var after = ForwardingState.Build(h.Options, h.UnderlayNodeEnd, h.Attachments, [NodeHarness.PeerB, third], previous: before);
        Assert.Same(before.Templates[0].Counters, after.Templates.Single(t => t.Peer.Name == "node2").Counters);
        Assert.NotSame(before.Templates[0].Counters, after.Templates.Single(t => t.Peer.Name == "node3").Counters);
    }
}
