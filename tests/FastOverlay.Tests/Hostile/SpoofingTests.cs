using FastOverlay.Pipeline;
using FastOverlay.Tests.Pipeline;
using FastOverlay.Wire;
using static FastOverlay.Tests.Hostile.HostileProbe;

namespace FastOverlay.Tests.Hostile;

/// <summary>
/// Attacks on identity: a peer sending inner packets from addresses it does not own, a pod sending as another
/// pod, ARP claiming another pod's address. Each is refused with SpoofedSource or ArpSpoofed, and the victim's
/// traffic still goes to the victim. (Written before the anti-spoofing rules reached this branch; all pass since
/// main was merged in.)
/// </summary>
public class SpoofingTests
{
    private static NodeHarness Node()
    {
        var h = new NodeHarness(poolSize: 512);
        h.LearnPods();
        return h;
    }

    private static byte[] FromPeerB(uint innerSource, uint innerDestination) =>
        NodeHarness.VxlanFrame(NodeHarness.PeerB.PublicIp.Value, NodeHarness.PublicIp.Value, 1,
            NodeHarness.UdpFrame(NodeHarness.PeerB.VtepMac, NodeHarness.VtepMac, innerSource, innerDestination));

    [Fact]
    public void Decap_refuses_inner_sources_outside_the_sending_peers_subnet()
    {
        var h = Node();
        var pod1 = NodeHarness.PodIp(1).Value;
        AssertDropped(h, 0, FromPeerB(Ipv4Address.Parse("10.244.3.7").Value, pod1), DropReason.SpoofedSource, "another peer's subnet");
        AssertDropped(h, 0, FromPeerB(NodeHarness.PodIp(0).Value, pod1), DropReason.SpoofedSource, "a local pod's address");
        AssertDropped(h, 0, FromPeerB(h.Options.GatewayIp, pod1), DropReason.SpoofedSource, "our gateway's address");
        AssertDropped(h, 0, FromPeerB(Ipv4Address.Parse("8.8.8.8").Value, pod1), DropReason.SpoofedSource, "an outside address");
        // The peer's own subnet, including its VTEP address (flannel's 10.244.2.0), is fine.
        AssertForwarded(h, 0, FromPeerB(NodeHarness.PeerB.Subnet.Address + 9, pod1), 2);
        AssertForwarded(h, 0, FromPeerB(NodeHarness.PeerB.Subnet.Address, pod1), 2);
    }

    [Fact]
    public void A_pod_port_refuses_another_pods_source_address()
    {
        var h = Node();
        var spoofed = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(1).Value, NodeHarness.PeerB.Subnet.Address + 9);
        AssertDropped(h, 1, spoofed, DropReason.SpoofedSource, "pod1's address from pod0's port");
        var outside = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, Ipv4Address.Parse("10.244.2.9").Value, NodeHarness.PodIp(1).Value);
        AssertDropped(h, 1, outside, DropReason.SpoofedSource, "a remote pod's address from pod0's port");
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void A_pod_port_refuses_a_source_mac_other_than_the_pods_own()
    {
        var h = Node();
        var spoofed = NodeHarness.UdpFrame(NodeHarness.PodMac(1), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, NodeHarness.PeerB.Subnet.Address + 9);
        AssertDropped(h, 1, spoofed, DropReason.SpoofedSource, "pod1's MAC from pod0's port");
        AssertGoodTrafficFlows(h);
    }

    [Fact]
    public void Arp_from_one_pod_claiming_another_pods_learned_address_is_refused()
    {
        var h = Node();
        var attacker = MacAddress.Parse("0a:58:de:ad:be:ef");
        var reply = NodeHarness.ArpFrame(ArpPacket.OpReply, attacker, NodeHarness.PodIp(1).Value, h.Options.GatewayIp, NodeHarness.GatewayMac, NodeHarness.GatewayMac);
        AssertDropped(h, 1, reply, DropReason.ArpSpoofed, "reply claiming pod1");
        var gratuitous = NodeHarness.ArpFrame(ArpPacket.OpRequest, attacker, NodeHarness.PodIp(1).Value, NodeHarness.PodIp(1).Value, MacAddress.Broadcast);
        AssertDropped(h, 1, gratuitous, DropReason.ArpSpoofed, "announcement claiming pod1");
        var request = NodeHarness.ArpFrame(ArpPacket.OpRequest, attacker, NodeHarness.PodIp(1).Value, h.Options.GatewayIp, MacAddress.Broadcast);
        AssertDropped(h, 1, request, DropReason.ArpSpoofed, "request asking as pod1");
        // pod1's traffic still reaches pod1's MAC on pod1's port.
        var delivered = AssertForwarded(h, 1, GoodIntra(), 2);
        Assert.Equal(NodeHarness.PodMac(1), Ethernet.Destination(delivered));
    }

    [Fact]
    public void Arp_claiming_a_configured_pods_address_is_refused_even_before_that_pod_spoke()
    {
        // pod1's address is configured on port 2; pod1 has not sent ARP yet, so nothing is learned for it.
        var h = new NodeHarness(poolSize: 512);
        var attacker = MacAddress.Parse("0a:58:de:ad:be:ef");
        var gratuitous = NodeHarness.ArpFrame(ArpPacket.OpRequest, attacker, NodeHarness.PodIp(1).Value, NodeHarness.PodIp(1).Value, MacAddress.Broadcast);
        AssertDropped(h, 1, gratuitous, DropReason.ArpSpoofed, "announcement claiming configured pod1");
        Assert.Equal(0, h.Node.Arp.Count);
    }

    [Fact]
    public void Arp_claiming_the_gateway_or_vtep_address_is_refused()
    {
        var h = Node();
        var attacker = MacAddress.Parse("0a:58:de:ad:be:ef");
        var gateway = NodeHarness.ArpFrame(ArpPacket.OpRequest, attacker, h.Options.GatewayIp, h.Options.GatewayIp, MacAddress.Broadcast);
        AssertDropped(h, 1, gateway, DropReason.ArpSpoofed, "announcement claiming the gateway");
        var vtep = NodeHarness.ArpFrame(ArpPacket.OpReply, attacker, h.Options.VtepIp, h.Options.GatewayIp, NodeHarness.GatewayMac, NodeHarness.GatewayMac);
        AssertDropped(h, 1, vtep, DropReason.ArpSpoofed, "reply claiming the VTEP address");
    }
}
