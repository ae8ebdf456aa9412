using System.Buffers.Binary;
using FastOverlay.Pipeline;
using FastOverlay.Pipeline.Stages;
using FastOverlay.Wire;
using static FastOverlay.Tests.Pipeline.Stages.ServiceHarness;

namespace FastOverlay.Tests.Pipeline.Stages;

/// <summary>
/// UDP datagrams larger than the MTU through a Service (a DNS answer over 1500 bytes, say): the pod's kernel sends
/// them as IPv4 fragments, only the first of which carries the ports. Every fragment must be translated, and the
/// receiver's reassembly must give the datagram back with a valid checksum.
/// </summary>
public class ServiceNatFragmentTests
{
    private const int Payload = 3000;

    /// <summary>A UDP datagram cut as ip_fragment does: 8-byte aligned pieces of at most mtu - 20 bytes, in order.</summary>
    internal static List<byte[]> Fragments(MacAddress srcMac, MacAddress dstMac, uint src, uint dst, ushort sport, ushort dport,
        ushort id, int payload = Payload, int mtu = 1500, byte seed = 1)
    {
        var datagram = new byte[UdpHeader.Length + payload];
        for (var k = UdpHeader.Length; k < datagram.Length; k++) datagram[k] = (byte)(k * 7 + seed);
        UdpHeader.Write(datagram, sport, dport, (ushort)datagram.Length);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(6), UdpHeader.ComputeChecksum(src, dst, datagram));
        var piece = (mtu - Ipv4Header.MinLength) & ~7;
        var frames = new List<byte[]>();
        for (var offset = 0; offset < datagram.Length; offset += piece)
        {
            var length = Math.Min(piece, datagram.Length - offset);
            var more = offset + length < datagram.Length;
            var frame = new byte[Math.Max(Ethernet.MinFrameLength, Ethernet.HeaderLength + Ipv4Header.MinLength + length)];
            Ethernet.Write(frame, dstMac, srcMac, Ethernet.TypeIpv4);
            var flags = (ushort)((more ? Ipv4Header.FlagMoreFragments : 0) | (offset / 8));
            Ipv4Header.Write(frame.AsSpan(Ethernet.HeaderLength), (ushort)(Ipv4Header.MinLength + length), id, flags, 64, Ipv4Header.ProtocolUdp, src, dst);
            datagram.AsSpan(offset, length).CopyTo(frame.AsSpan(Ethernet.HeaderLength + Ipv4Header.MinLength));
            frames.Add(frame);
        }
        return frames;
    }

    /// <summary>Reassembles fragments as a receiving kernel would: one id, both addresses, contiguous, every header checksum valid.</summary>
    internal static (uint Src, uint Dst, byte[] Udp) Reassemble(IReadOnlyList<byte[]> frames)
    {
        Assert.NotEmpty(frames);
        var first = frames[0].AsSpan(Ethernet.HeaderLength);
        var (src, dst, id) = (Ipv4Header.Source(first), Ipv4Header.Destination(first), Ipv4Header.Identification(first));
        var pieces = new List<(int Offset, byte[] Data, bool More)>();
        foreach (var f in frames)
        {
            var ip = f.AsSpan(Ethernet.HeaderLength, Ipv4Header.TotalLength(f.AsSpan(Ethernet.HeaderLength)));
            Assert.True(Ipv4Header.HeaderChecksumValid(ip, Ipv4Header.HeaderLength(ip)), "IPv4 header checksum of a fragment");
            Assert.Equal((src, dst, id), (Ipv4Header.Source(ip), Ipv4Header.Destination(ip), Ipv4Header.Identification(ip)));
            var flags = Ipv4Header.FlagsFragment(ip);
            pieces.Add(((flags & Ipv4Header.FragmentOffsetMask) * 8, ip[Ipv4Header.HeaderLength(ip)..].ToArray(), (flags & Ipv4Header.FlagMoreFragments) != 0));
        }
        pieces.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        var udp = new List<byte>();
        foreach (var (offset, data, _) in pieces)
        {
            Assert.Equal(udp.Count, offset);
            udp.AddRange(data);
        }
        Assert.False(pieces[^1].More, "the last fragment has MF clear");
        return (src, dst, [.. udp]);
    }

    private static int Receiver(List<byte[]>[] received) => Array.FindIndex(received, r => r.Count > 0);

    [Fact]
    public void A_fragmented_datagram_to_a_cluster_ip_and_its_fragmented_reply_are_translated_fragment_by_fragment()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1), Pod(2)));
        var client = NodeHarness.PodIp(0).Value;

        var sent = Fragments(NodeHarness.PodMac(0), NodeHarness.GatewayMac, client, Vip.Value, 41000, 53, id: 0x1234);
        Assert.Equal(3, sent.Count);
        var received = s.SendAll(0, sent);
        var backend = Receiver(received);
        Assert.True(backend is 1 or 2, "delivered to an endpoint");
        Assert.Equal(3, received[backend].Count);
        var (src, dst, udp) = Reassemble(received[backend]);
        var backendIp = NodeHarness.PodIp(backend).Value;
        Assert.Equal((client, backendIp), (src, dst));
        Assert.Equal((41000, 5353), (UdpHeader.SourcePort(udp), UdpHeader.DestinationPort(udp)));
        Assert.True(UdpHeader.ChecksumAcceptable(src, dst, udp), "UDP checksum of the reassembled datagram");
        Assert.Equal(Reassemble(sent).Udp[UdpHeader.Length..], udp[UdpHeader.Length..]);

        // The backend answers with a fragmented datagram: it comes back from the service address.
        var reply = Fragments(NodeHarness.PodMac(backend), NodeHarness.GatewayMac, backendIp, client, 5353, 41000, id: 0x0777, payload: 4000, seed: 9);
        var back = s.SendAll(backend, reply)[0];
        Assert.Equal(reply.Count, back.Count);
        var (rsrc, rdst, rudp) = Reassemble(back);
        Assert.Equal((Vip.Value, client), (rsrc, rdst));
        Assert.Equal((53, 41000), (UdpHeader.SourcePort(rudp), UdpHeader.DestinationPort(rudp)));
        Assert.True(UdpHeader.ChecksumAcceptable(rsrc, rdst, rudp), "UDP checksum of the reassembled reply");

        Assert.Equal(1, s.H.Node.Counters[Counter.ServiceFlowsCreated]);
        Assert.Equal(2 + (reply.Count - 1), s.H.Node.Counters[Counter.ServiceFragmentsTranslated]);
        var port = s.Table.Ports.Single(p => p.PortName == "dns");
        Assert.Equal(3, port.Counters[FastOverlay.Tables.Services.ServiceCounter.Packets]);
        Assert.Equal(reply.Count, port.Counters[FastOverlay.Tables.Services.ServiceCounter.ReplyPackets]);
        Assert.Equal(0, s.H.Node.Counters.TotalDrops);
    }

    [Fact]
    public void Later_fragments_in_another_burst_than_their_first_follow_it_and_interleaved_datagrams_stay_apart()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1), Pod(2)));
        var client = NodeHarness.PodIp(0).Value;
        // Two datagrams from two source ports (two flows, possibly two backends), fragments interleaved over two polls.
        var a = Fragments(NodeHarness.PodMac(0), NodeHarness.GatewayMac, client, Vip.Value, 42001, 53, id: 100);
        var b = Fragments(NodeHarness.PodMac(0), NodeHarness.GatewayMac, client, Vip.Value, 42002, 53, id: 101, seed: 5);
        var first = s.SendAll(0, [a[0], b[0]]);
        var second = s.SendAll(0, [b[1], a[1], b[2], a[2]]);
        var all = new List<byte[]>();
        for (var p = 1; p < first.Length; p++) all.AddRange(first[p].Concat(second[p]));
        Assert.Equal(6, all.Count);
        foreach (var id in new ushort[] { 100, 101 })
        {
            var mine = all.Where(f => Ipv4Header.Identification(f.AsSpan(Ethernet.HeaderLength)) == id).ToList();
            var (src, dst, udp) = Reassemble(mine);
            Assert.Equal(client, src);
            Assert.True(dst == NodeHarness.PodIp(1).Value || dst == NodeHarness.PodIp(2).Value, "to an endpoint");
            Assert.Equal(id == 100 ? 42001 : 42002, UdpHeader.SourcePort(udp));
            Assert.True(UdpHeader.ChecksumAcceptable(src, dst, udp));
        }
    }

    [Fact]
    public void A_later_fragment_without_its_first_is_dropped_when_it_is_for_a_service_and_passes_when_it_is_plain_traffic()
    {
        var s = new ServiceHarness();
        s.Publish(Web(Pod(1)));
        var client = NodeHarness.PodIp(0).Value;

        var toService = Fragments(NodeHarness.PodMac(0), NodeHarness.GatewayMac, client, Vip.Value, 43000, 53, id: 7);
        var received = s.SendAll(0, toService.Skip(1));
        Assert.All(received, r => Assert.Empty(r));
        Assert.Equal(2, s.H.Node.Counters.Drops(DropReason.ServiceFragmentUnmatched));

        var plain = Fragments(NodeHarness.PodMac(0), NodeHarness.GatewayMac, client, NodeHarness.PodIp(2).Value, 43000, 9999, id: 8);
        var delivered = s.SendAll(0, plain)[2];
        Assert.Equal(plain.Count, delivered.Count);
        for (var k = 0; k < plain.Count; k++)
            Assert.Equal(plain[k].AsSpan(Ethernet.HeaderLength + 12, 8).ToArray(), delivered[k].AsSpan(Ethernet.HeaderLength + 12, 8).ToArray());
        Assert.Equal(0, s.Conntrack.Count);
    }

    [Fact]
    public void Later_fragments_of_a_datagram_whose_first_was_refused_are_dropped_too()
    {
        var s = new ServiceHarness();
        s.Publish(Web());
        var frames = Fragments(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, Vip.Value, 44000, 53, id: 9);
        var received = s.SendAll(0, frames);
        // The first fragment gets the port-unreachable (to the client, pod 0); the rest cannot be translated.
        Assert.All(received.Skip(1), r => Assert.Empty(r));
        Assert.Equal(1, s.H.Node.Counters.Drops(DropReason.ServiceNoEndpoints));
        Assert.Equal(2, s.H.Node.Counters.Drops(DropReason.ServiceFragmentUnmatched));
    }

    /// <summary>
    /// The outer source port (and so the receiving node's worker) of every fragment of a datagram is the same, as
    /// the kernel's skb_get_hash gives them; a whole datagram's hash includes its ports.
    /// </summary>
    [Fact]
    public void Every_fragment_of_a_datagram_gets_the_same_flow_hash_and_whole_datagrams_hash_their_ports()
    {
        var frames = Fragments(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, Vip.Value, 45000, 53, id: 10);
        var hashes = frames.Select(f => VxlanEncap.FlowHash(f.AsSpan(Ethernet.HeaderLength))).Distinct().ToList();
        Assert.Single(hashes);
        var w1 = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, Vip.Value, sport: 45000, dport: 53);
        var w2 = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, Vip.Value, sport: 45001, dport: 53);
        Assert.NotEqual(VxlanEncap.FlowHash(w1.AsSpan(Ethernet.HeaderLength)), VxlanEncap.FlowHash(w2.AsSpan(Ethernet.HeaderLength)));
    }
}
