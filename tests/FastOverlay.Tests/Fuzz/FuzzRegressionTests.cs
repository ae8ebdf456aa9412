using System.Buffers.Binary;
using FastOverlay.Fuzz.Targets;
using FastOverlay.Pipeline;
using FastOverlay.Tests.Pipeline;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Fuzz;

/// <summary>
/// Every input the fuzzers crashed the node with, as bytes, replayed through its target and pinned down with a
/// direct assertion on the node (so the test says what was wrong, not only that the harness is happy now).
/// </summary>
public class FuzzRegressionTests
{
    /// <summary>
    /// underlay, crash id:000001 after 1.7 s of `fuzz/run.sh underlay`: a VXLAN packet from node2 whose UDP length
    /// is 16 (the VXLAN header and nothing else); behind the datagram, an ICMP echo for pod0. Decap took the inner
    /// frame up to the end of the received frame and delivered the smuggled echo to pod0.
    /// </summary>
    internal static readonly byte[] InnerFramePastUdpLength =
    [
        0x52, 0x54, 0x00, 0x00, 0x00, 0x01, 0x52, 0x54, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x45, 0x00, 0x00, 0x52, 0x00, 0x01,
        0x40, 0x00, 0x40, 0x11, 0x48, 0x58, 0xac, 0x1f, 0x4d, 0x02, 0xac, 0x1f, 0x4d, 0x01, 0xc8, 0x22, 0x21, 0x18, 0x00, 0x10,
        0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x0e, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x40, 0x00, 0x00, 0x00,
        0x02, 0x00, 0x08, 0x00, 0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0x61, 0xea, 0x0a, 0xf4, 0x02, 0x09,
        0x0a, 0xf4, 0x01, 0x02, 0x08, 0x00, 0x19, 0x25, 0x00, 0x09, 0x00, 0x01, 0x70, 0x69, 0x6e, 0x67,
    ];

    [Fact]
    public void Underlay_crash_inner_frame_past_udp_length_passes_the_target() => new UnderlayTarget().Run(InnerFramePastUdpLength);

    [Fact]
    public void Bytes_after_the_udp_datagram_are_never_delivered_as_tunnel_payload()
    {
        var h = new NodeHarness();
        h.LearnPods();
        h.InjectUnderlay(InnerFramePastUdpLength);
        h.Node.Poll();
        Assert.Empty(h.Drain(0));
        Assert.Empty(h.Drain(1));
        Assert.Empty(h.Drain(h.Underlay));
        Assert.Equal(0, h.Node.Counters[Counter.Decapsulated]);
        Assert.Equal(1, h.Node.Counters.Drops(DropReason.FrameTooShort));
        Assert.Equal(0, h.Pool.InUse);
    }

    [Fact]
    public void Inner_frame_is_cut_at_the_udp_length_so_a_longer_inner_datagram_is_truncated()
    {
        var h = new NodeHarness();
        h.LearnPods();
        var inner = NodeHarness.UdpFrame(NodeHarness.PeerB.VtepMac, NodeHarness.VtepMac, NodeHarness.PeerB.Subnet.Address + 9, NodeHarness.PodIp(1).Value);
        var frame = NodeHarness.VxlanFrame(NodeHarness.PeerB.PublicIp.Value, NodeHarness.PublicIp.Value, 1, inner);
        // UDP length four bytes short of the datagram: the inner IPv4 header now claims more than the tunnel carries.
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(38), (ushort)(frame.Length - 34 - 4));
        h.InjectUnderlay(frame);
        h.Node.Poll();
        Assert.Empty(h.Drain(1));
        Assert.Equal(1, h.Node.Counters.Drops(DropReason.Ipv4Truncated));
        Assert.Equal(0, h.Pool.InUse);

        // The same frame with its true UDP length is delivered.
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(38), (ushort)(frame.Length - 34));
        h.InjectUnderlay(frame);
        h.Node.Poll();
        Assert.Single(h.Drain(1));
    }

    /// <summary>
    /// pod-frame and arp seeds (arp-reply-to-gateway), first replay of the corpus: an ARP reply to the gateway was
    /// freed without being sent or counted as a drop, so the harness's books (received + built = sent + dropped +
    /// consumed) did not balance. Now counted as ArpConsumed.
    /// </summary>
    [Fact]
    public void An_arp_reply_the_node_takes_in_is_counted()
    {
        var h = new NodeHarness();
        h.Inject(0, NodeHarness.ArpFrame(ArpPacket.OpReply, NodeHarness.PodMac(0), NodeHarness.PodIp(0).Value, h.Options.GatewayIp, NodeHarness.GatewayMac, NodeHarness.GatewayMac));
        h.Node.Poll();
        var c = h.Node.Counters;
        Assert.Equal(1, c[Counter.RxPackets]);
        Assert.Equal(0, c[Counter.TxPackets]);
        Assert.Equal(0, c.TotalDrops);
        Assert.Equal(1, c[Counter.ArpConsumed]);
        Assert.Equal(c[Counter.RxPackets], c[Counter.TxPackets] + c.TotalDrops + c[Counter.ArpConsumed]);
    }
}
