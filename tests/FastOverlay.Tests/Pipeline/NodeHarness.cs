using System.Buffers.Binary;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Pipeline;

/// <summary>
/// One node under test: pod ports and an underlay port made of ring pairs whose far ends the test drives
/// directly, a manual clock, and helpers that build frames with the wire writers.
/// </summary>
internal sealed class NodeHarness
{
    public static readonly MacAddress GatewayMac = MacAddress.Parse("0a:58:0a:f4:01:01");
    public static readonly MacAddress VtepMac = MacAddress.Parse("0e:fd:00:00:01:00");
    public static readonly MacAddress UnderlayMac = MacAddress.Parse("52:54:00:00:00:01");
    public static readonly Ipv4Address PublicIp = Ipv4Address.Parse("172.31.77.1");
    public static readonly Ipv4Prefix Subnet = Ipv4Prefix.Parse("10.244.1.0/24");

    public static Peer PeerB => new("node2", Ipv4Address.Parse("172.31.77.2"), Ipv4Prefix.Parse("10.244.2.0/24"), MacAddress.Parse("0e:fd:00:00:02:00")) { UnderlayMac = MacAddress.Parse("52:54:00:00:00:02") };

    public NodeHarness(int pods = 2, IReadOnlyList<Peer>? peers = null, NodeOptions? options = null, int poolSize = 8192, bool configurePodIps = true)
    {
        Pool = new PacketPool(poolSize);
        Clock = new ManualClock();
        Options = options ?? new NodeOptions
        {
            Name = "node1",
            PublicIp = PublicIp,
            Subnet = Subnet,
            VtepMac = VtepMac,
            GatewayMac = GatewayMac,
            UnderlayMac = UnderlayMac,
        };
        var (underlayNode, underlayFar) = RingPort.CreatePair("underlay", "fabric", 4096);
        Underlay = underlayFar;
        UnderlayNodeEnd = underlayNode;
        PodPorts = new RingPort[pods];
        Attachments = [];
        for (var i = 0; i < pods; i++)
        {
            var (nodeEnd, podEnd) = RingPort.CreatePair($"veth{i}", $"pod{i}", 4096);
            PodPorts[i] = podEnd;
            Attachments.Add(new PodAttachment(nodeEnd, configurePodIps ? PodAddress(i) : null));
        }
        Peers = peers ?? [PeerB];
        Node = new NodeForwarder(Pool, ForwardingState.Build(Options, underlayNode, Attachments, Peers), Clock);
    }

    public PacketPool Pool { get; }
    public ManualClock Clock { get; }
    public NodeOptions Options { get; }
    public NodeForwarder Node { get; }
    public RingPort Underlay { get; }
    public RingPort UnderlayNodeEnd { get; }
    public RingPort[] PodPorts { get; }
    public List<PodAttachment> Attachments { get; }
    public IReadOnlyList<Peer> Peers { get; }

    public static Ipv4Address PodIp(int i) => new(Subnet.Address + 2 + (uint)i);
    public Ipv4Address PodAddress(int i) => new(Options.Subnet.Address + 2 + (uint)i);
    public MacAddress PodMacAddress(int i) => new(0x0A58_0000_0000UL | PodAddress(i).Value);
    public static MacAddress PodMac(int i) => new(0x0A58_0000_0000UL | PodIp(i).Value);

    public void Republish(IReadOnlyList<Peer> peers) => Node.Publish(ForwardingState.Build(Options, UnderlayNodeEnd, Attachments, peers, previous: Node.State));

    /// <summary>Teaches the node every pod's MAC, as the pods' own ARP requests would.</summary>
    public void LearnPods()
    {
        for (var i = 0; i < PodPorts.Length; i++)
        {
            Inject(i, ArpFrame(ArpPacket.OpRequest, PodMacAddress(i), PodAddress(i).Value, Options.GatewayIp, MacAddress.Broadcast));
            Node.Poll();
            Drain(i);
        }
    }

    public int Alloc(ReadOnlySpan<byte> frame)
    {
        var h = Pool.Allocate();
        Assert.True(h >= 0, "pool exhausted");
        frame.CopyTo(Pool.WritableFrame(h));
        Pool.SetLength(h, frame.Length);
        return h;
    }

    public void Inject(int pod, ReadOnlySpan<byte> frame) => Assert.True(PodPorts[pod].Transmit([Alloc(frame)]) == 1);

    public void InjectUnderlay(ReadOnlySpan<byte> frame) => Assert.True(Underlay.Transmit([Alloc(frame)]) == 1);

    /// <summary>Takes every frame waiting at a far end, as byte arrays, and frees the buffers.</summary>
    public List<byte[]> Drain(RingPort port)
    {
        var result = new List<byte[]>();
        Span<int> handles = stackalloc int[256];
        int n;
        while ((n = port.Receive(handles)) > 0)
        {
            foreach (var h in handles[..n])
            {
                result.Add(Pool.Frame(h).ToArray());
                Pool.Free(h);
            }
        }
        return result;
    }

    public List<byte[]> Drain(int pod) => Drain(PodPorts[pod]);

    public static byte[] ArpFrame(ushort op, MacAddress senderMac, uint senderIp, uint targetIp, MacAddress ethDst, MacAddress? targetMac = null)
    {
        var frame = new byte[Ethernet.MinFrameLength];
        ArpPacket.WriteFrame(frame, ethDst, op, senderMac, senderIp, targetMac ?? MacAddress.Zero, targetIp);
        return frame;
    }

    /// <summary>An Ethernet/IPv4/UDP frame with correct checksums, padded to 60 bytes like a real NIC.</summary>
    public static byte[] UdpFrame(MacAddress src, MacAddress dst, uint srcIp, uint dstIp, int payload = 18, byte ttl = 64, ushort sport = 40000, ushort dport = 5201, bool dontFragment = true, byte fill = 0x78)
    {
        var udpLength = UdpHeader.Length + payload;
        var total = Ipv4Header.MinLength + udpLength;
        var frame = new byte[Math.Max(Ethernet.MinFrameLength, Ethernet.HeaderLength + total)];
        Ethernet.Write(frame, dst, src, Ethernet.TypeIpv4);
        Ipv4Header.Write(frame.AsSpan(Ethernet.HeaderLength), (ushort)total, 7, dontFragment ? Ipv4Header.FlagDontFragment : (ushort)0, ttl, Ipv4Header.ProtocolUdp, srcIp, dstIp);
        var udp = frame.AsSpan(Ethernet.HeaderLength + Ipv4Header.MinLength, udpLength);
        udp[UdpHeader.Length..].Fill(fill);
        UdpHeader.Write(udp, sport, dport, (ushort)udpLength);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], UdpHeader.ComputeChecksum(srcIp, dstIp, udp));
        return frame;
    }

    /// <summary>A VXLAN frame as peer B (or anyone) would send it to this node.</summary>
    public static byte[] VxlanFrame(uint outerSrc, uint outerDst, uint vni, ReadOnlySpan<byte> inner, ushort dport = VxlanHeader.LinuxPort, byte flags = VxlanHeader.FlagI)
    {
        var frame = new byte[VxlanHeader.OverheadIpv4 + inner.Length];
        var span = frame.AsSpan();
        Ethernet.Write(span, UnderlayMac, MacAddress.Parse("52:54:00:00:00:02"), Ethernet.TypeIpv4);
        Ipv4Header.Write(span[14..], (ushort)(frame.Length - 14), 0, Ipv4Header.FlagDontFragment, 64, Ipv4Header.ProtocolUdp, outerSrc, outerDst);
        UdpHeader.Write(span[34..], 51000, dport, (ushort)(frame.Length - 34));
        VxlanHeader.Write(span[42..], vni);
        span[42] = flags;
        inner.CopyTo(span[50..]);
        return frame;
    }
}
