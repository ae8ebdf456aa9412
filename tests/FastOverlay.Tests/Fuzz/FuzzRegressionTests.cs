using System.Buffers.Binary;
using System.Text;
using FastOverlay.Config;
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

    /// <summary>
    /// config, found by replaying 3000 mutations of the seeds through the config target before its AFL run (102
    /// crashed): a key with a byte that is not UTF-8 (flannel's own net-conf.json with one byte flipped). JsonDocument
    /// checks a string's text only when it is read and then throws InvalidOperationException, which escaped
    /// ConfigLoader.Load instead of a ConfigException ("bad config exits 2" would have been an unhandled crash).
    /// </summary>
    internal static readonly byte[] ConfigKeyNotUtf8 = [.. "{\n  \"Net"u8, 0xF7, .. "ork\": \"10.244.0.0/16\",\n  \"Backend\": {\n    \"Type\": \"vxlan\"\n  }\n}\n"u8];

    /// <summary>The same failure from text that is valid UTF-8: an escaped lone surrogate in a value and in a key.</summary>
    internal static readonly string[] ConfigLoneSurrogates =
    [
        """{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"},"Node":{"Name":"\ud800","PublicIP":"10.0.0.1","Subnet":"10.5.52.0/24","VtepMAC":"0e:00:00:00:00:01"}}""",
        """{"Net\udc00work":"10.5.0.0/16"}""",
        """{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"},"Node":{"Name":"n","PublicIP":"10.0.0.1","Subnet":"10.5.52.0/24","VtepMAC":["\ud83d"]}}""",
    ];

    [Fact]
    public void Config_crash_inputs_pass_the_target()
    {
        var target = new ConfigTarget();
        target.Run(ConfigKeyNotUtf8);
        foreach (var json in ConfigLoneSurrogates) target.Run(Encoding.UTF8.GetBytes(json));
    }

    [Fact]
    public void Config_text_that_is_not_valid_is_a_config_error_naming_where()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(ConfigKeyNotUtf8, new SysfsInterfaceCatalog("/nonexistent")));
        Assert.Contains("not valid text", e.Message);
        e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(Encoding.UTF8.GetBytes(ConfigLoneSurrogates[0]), new SysfsInterfaceCatalog("/nonexistent")));
        Assert.Equal("Node.Name", e.Path);
        Assert.Throws<ConfigException>(() => ConfigLoader.Load(Encoding.UTF8.GetBytes(ConfigLoneSurrogates[1]), new SysfsInterfaceCatalog("/nonexistent")));
        Assert.Throws<ConfigException>(() => ConfigLoader.Load(Encoding.UTF8.GetBytes(ConfigLoneSurrogates[2]), new SysfsInterfaceCatalog("/nonexistent")));
    }
}
