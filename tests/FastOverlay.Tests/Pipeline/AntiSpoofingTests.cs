using FastOverlay.Pipeline;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Pipeline;

public class AntiSpoofingTests
{
    private static readonly FastOverlay.Tables.Peer B = NodeHarness.PeerB;

    [Fact]
    public void Pod_cannot_send_from_another_pods_address()
    {
        var h = new NodeHarness();
        h.LearnPods();
        // pod0 claims pod1's source address.
        h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(1).Value, B.Subnet.Address + 9));
        h.Node.Poll();
        Assert.Empty(h.Drain(h.Underlay));
        Assert.Equal(1, h.Node.Counters.Drops(DropReason.SpoofedSource));
    }

    [Fact]
    public void Pod_cannot_send_with_another_mac_once_its_mac_is_learned()
    {
        var h = new NodeHarness();
        h.LearnPods();
        h.Inject(0, NodeHarness.UdpFrame(MacAddress.Parse("0a:58:de:ad:be:ef"), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, B.Subnet.Address + 9));
        h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, B.Subnet.Address + 9));
        h.Node.Poll();
        Assert.Single(h.Drain(h.Underlay));
        Assert.Equal(1, h.Node.Counters.Drops(DropReason.SpoofedSource));
    }

    [Fact]
    public void Arp_reply_claiming_another_pods_address_is_refused_and_the_cache_keeps_the_real_owner()
    {
        var h = new NodeHarness();
        h.LearnPods();
        var attacker = MacAddress.Parse("0a:58:de:ad:be:ef");
        h.Inject(0, NodeHarness.ArpFrame(ArpPacket.OpReply, attacker, NodeHarness.PodIp(1).Value, h.Options.GatewayIp, NodeHarness.GatewayMac, NodeHarness.GatewayMac));
        // The gateway address is not a pod's to claim either.
        h.Inject(0, NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(0), h.Options.GatewayIp, h.Options.GatewayIp, MacAddress.Broadcast));
        h.Node.Poll();
        Assert.Equal(2, h.Node.Counters.Drops(DropReason.ArpSpoofed));
        Assert.True(h.Node.Arp.TryGetExact(NodeHarness.PodIp(1).Value, out var mac, out var port));
        Assert.Equal(NodeHarness.PodMac(1), mac);
        Assert.Equal(2, port);
    }

    [Fact]
    public void Unconfigured_port_binds_the_first_address_it_arps_for_and_keeps_it()
    {
        var h = new NodeHarness(configurePodIps: false);
        var ip = NodeHarness.PodIp(0).Value;
        h.Inject(0, NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(0), ip, h.Options.GatewayIp, MacAddress.Broadcast));
        h.Node.Poll();
        Assert.Single(h.Drain(0));
        // Now the port is 10.244.1.2 with its MAC: another address from it is spoofed, the bound one passes.
        h.Inject(0, NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(0), ip + 50, h.Options.GatewayIp, MacAddress.Broadcast));
        h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, ip + 50, B.Subnet.Address + 9));
        h.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, ip, B.Subnet.Address + 9));
        h.Node.Poll();
        Assert.Equal(1, h.Node.Counters.Drops(DropReason.ArpSpoofed));
        Assert.Equal(1, h.Node.Counters.Drops(DropReason.SpoofedSource));
        Assert.Single(h.Drain(h.Underlay));
        // A second port cannot take the first one's address.
        h.Inject(1, NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(1), ip, h.Options.GatewayIp, MacAddress.Broadcast));
        h.Node.Poll();
        Assert.Equal(2, h.Node.Counters.Drops(DropReason.ArpSpoofed));
    }

    [Fact]
    public void Decap_refuses_inner_sources_outside_the_sending_peers_subnet()
    {
        var h = new NodeHarness();
        h.LearnPods();
        // Peer B sends a frame claiming to come from a pod of this node's own subnet, then one from a third subnet.
        foreach (var source in new[] { NodeHarness.PodIp(0).Value, Ipv4Address.Parse("10.244.9.9").Value })
        {
            var inner = NodeHarness.UdpFrame(B.VtepMac, NodeHarness.VtepMac, source, NodeHarness.PodIp(1).Value);
            h.InjectUnderlay(NodeHarness.VxlanFrame(B.PublicIp.Value, NodeHarness.PublicIp.Value, 1, inner));
        }
        var good = NodeHarness.UdpFrame(B.VtepMac, NodeHarness.VtepMac, B.Subnet.Address + 5, NodeHarness.PodIp(1).Value);
        h.InjectUnderlay(NodeHarness.VxlanFrame(B.PublicIp.Value, NodeHarness.PublicIp.Value, 1, good));
        h.Node.Poll();
        Assert.Equal(2, h.Node.Counters.Drops(DropReason.SpoofedSource));
        Assert.Single(h.Drain(1));
    }
}
