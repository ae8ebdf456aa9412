using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Pipeline;

/// <summary>
/// The host port (Node.HostInterface): the node's own stack behind a veth, at the subnet's first address, with the
/// default route through it. What cbr0 and the node's routing table give flannel's pods.
/// </summary>
public class HostPortTests
{
    private static readonly MacAddress HostMac = MacAddress.Parse("02:00:00:00:00:aa");
    private static readonly uint HostAddress = NodeHarness.Subnet.Address;
    private static readonly uint Outside = Ipv4Address.Parse("192.0.2.7").Value;

    private sealed class Rig
    {
        public Rig(bool withHost = true)
        {
            H = new NodeHarness();
            var (nodeEnd, hostEnd) = RingPort.CreatePair("fohost-fo", "fohost", 4096);
            Host = hostEnd;
            if (withHost) H.Node.Publish(ForwardingState.Build(H.Options, H.UnderlayNodeEnd, H.Attachments, H.Peers, previous: H.Node.State, host: nodeEnd));
            H.LearnPods();
        }

        public NodeHarness H { get; }
        public RingPort Host { get; }

        public void FromHost(byte[] frame)
        {
            Assert.Equal(1, Host.Transmit([H.Alloc(frame)]));
            H.Node.Poll();
        }

        /// <summary>The kernel's side: answers the forwarder's ARP for the host address, as a veth holding it would.</summary>
        public void AnswerArp()
        {
            var asked = Assert.Single(H.Drain(Host));
            Assert.Equal(DropReason.None, ArpPacket.TryParse(asked.AsSpan(Ethernet.HeaderLength), out var arp));
            Assert.Equal((ArpPacket.OpRequest, HostAddress), (arp.Operation, arp.TargetIp));
            FromHost(NodeHarness.ArpFrame(ArpPacket.OpReply, HostMac, HostAddress, arp.SenderIp, NodeHarness.GatewayMac, arp.SenderMac));
        }
    }

    [Fact]
    public void A_pod_reaches_outside_the_cluster_through_the_host_port_once_the_host_address_is_resolved()
    {
        var r = new Rig();
        r.H.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, Outside, ttl: 64));
        r.H.Node.Poll();
        r.AnswerArp();

        var frame = Assert.Single(r.H.Drain(r.Host));
        Assert.Equal(HostMac, Ethernet.Destination(frame));
        Assert.Equal(NodeHarness.GatewayMac, Ethernet.Source(frame));
        var ip = frame.AsSpan(Ethernet.HeaderLength);
        Assert.Equal((NodeHarness.PodIp(0).Value, Outside), (Ipv4Header.Source(ip), Ipv4Header.Destination(ip)));
        Assert.Equal(63, Ipv4Header.Ttl(ip));
        Assert.True(Ipv4Header.HeaderChecksumValid(ip, 20));

        // The node's overlay address too, now without another ARP.
        r.H.Inject(1, NodeHarness.UdpFrame(NodeHarness.PodMac(1), NodeHarness.GatewayMac, NodeHarness.PodIp(1).Value, HostAddress));
        r.H.Node.Poll();
        Assert.Equal(HostAddress, Ipv4Header.Destination(Assert.Single(r.H.Drain(r.Host)).AsSpan(Ethernet.HeaderLength)));
    }

    [Fact]
    public void The_host_sends_to_pods_from_any_of_its_addresses_and_its_arp_for_the_gateway_is_answered()
    {
        var r = new Rig();
        // The kernel asks for the gateway from the address of the packet it routes: the node's public IP here.
        r.FromHost(NodeHarness.ArpFrame(ArpPacket.OpRequest, HostMac, NodeHarness.PublicIp.Value, NodeHarness.Subnet.Address + 1, MacAddress.Broadcast));
        Assert.Equal(DropReason.None, ArpPacket.TryParse(Assert.Single(r.H.Drain(r.Host)).AsSpan(Ethernet.HeaderLength), out var reply));
        Assert.Equal((ArpPacket.OpReply, NodeHarness.GatewayMac), (reply.Operation, reply.SenderMac));

        foreach (var source in new[] { NodeHarness.PublicIp.Value, HostAddress })
        {
            r.FromHost(NodeHarness.UdpFrame(HostMac, NodeHarness.GatewayMac, source, NodeHarness.PodIp(1).Value));
            var delivered = Assert.Single(r.H.Drain(1));
            Assert.Equal(source, Ipv4Header.Source(delivered.AsSpan(Ethernet.HeaderLength)));
        }
        Assert.Equal(0, r.H.Node.Counters.Drops(DropReason.SpoofedSource));
    }

    [Fact]
    public void Pods_get_a_proxy_arp_answer_for_the_host_address_only_when_there_is_a_host_port()
    {
        foreach (var withHost in new[] { true, false })
        {
            var r = new Rig(withHost);
            r.H.Inject(0, NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(0), NodeHarness.PodIp(0).Value, HostAddress, MacAddress.Broadcast));
            r.H.Node.Poll();
            Assert.Equal(withHost ? 1 : 0, r.H.Drain(0).Count);
        }
    }

    [Fact]
    public void A_pod_cannot_claim_the_host_address_and_the_host_cannot_claim_a_pod_address()
    {
        var r = new Rig();
        r.H.Inject(0, NodeHarness.ArpFrame(ArpPacket.OpReply, NodeHarness.PodMac(0), HostAddress, NodeHarness.Subnet.Address + 1, NodeHarness.GatewayMac));
        r.H.Node.Poll();
        r.FromHost(NodeHarness.ArpFrame(ArpPacket.OpReply, HostMac, NodeHarness.PodIp(1).Value, NodeHarness.Subnet.Address + 1, NodeHarness.GatewayMac));
        Assert.Equal(2, r.H.Node.Counters.Drops(DropReason.ArpSpoofed));
    }

    [Fact]
    public void Without_a_host_port_outside_is_unreachable_and_from_the_host_port_it_is_not_sent_back()
    {
        var none = new Rig(withHost: false);
        none.H.Inject(0, NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, Outside));
        none.H.Node.Poll();
        Assert.Equal(1, none.H.Node.Counters.Drops(DropReason.NoRoute));

        var r = new Rig();
        r.FromHost(NodeHarness.UdpFrame(HostMac, NodeHarness.GatewayMac, NodeHarness.PublicIp.Value, Outside));
        Assert.Equal(1, r.H.Node.Counters.Drops(DropReason.NoRoute));
        // The host hears why, once its address is resolved: an ICMP host unreachable back out of the host port.
        r.AnswerArp();
        var error = Assert.Single(r.H.Drain(r.Host)).AsSpan(Ethernet.HeaderLength);
        Assert.Equal((Ipv4Header.ProtocolIcmp, NodeHarness.PublicIp.Value), (Ipv4Header.Protocol(error), Ipv4Header.Destination(error)));
        Assert.Equal(Icmpv4.TypeDestinationUnreachable, error[20]);
    }
}
