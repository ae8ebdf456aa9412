using System.Buffers.Binary;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Tables;
using FastOverlay.Tables.Services;
using FastOverlay.Config;
using FastOverlay.Wire;

namespace FastOverlay.Bench;

public enum BenchPath
{
    /// <summary>Pod → gateway → pod on the same node (ARP cache hit).</summary>
    IntraNode,
    /// <summary>Pod → remote subnet: route lookup, peer, VXLAN encap, out the underlay.</summary>
    Encap,
    /// <summary>Underlay VXLAN → decap → route lookup → ARP hit → local pod.</summary>
    Decap,
    /// <summary>ARP request for the gateway → reply built in place.</summary>
    Arp,
    /// <summary>Pod → ClusterIP of a flow already tracked: conntrack hit, DNAT, then the <see cref="Encap"/> path to the endpoint's node.</summary>
    ServiceEstablished,
    /// <summary>Pod → ClusterIP, 8 tracked flows in runs of 32 packets: what a burst of a few bulk TCP senders looks like (GSO cuts runs).</summary>
    ServiceBulk,
    /// <summary>Pod → ClusterIP, every packet a new flow: service lookup, Maglev, conntrack insert (reclaiming expired flows), DNAT, encap.</summary>
    ServiceFirstPacket,
}

/// <summary>
/// One node and one path driven through in-memory rings, for the BenchmarkDotNet suite, `fastoverlay bench` and
/// the allocation tests alike. Each burst stands in for a NIC: it writes the frames into pool buffers (a copy,
/// as a NIC's DMA or an AF_PACKET ring would), enqueues them on the input ring, runs one poll of the forwarder and
/// takes everything off the output ring. So a measured packet costs ring in → parse → route → rewrite or encap
/// → ring out, plus the copy-in.
/// </summary>
public sealed class PathBench
{
    private readonly RingPort _input;
    private readonly RingPort _output;
    private readonly byte[] _frame;
    private readonly int[] _handles;
    private readonly ManualClock _clock = new();
    private readonly bool _service;
    private int _flowBase;
    public static readonly Ipv4Address ServiceIp = Ipv4Address.Parse("10.96.0.10");

    public PathBench(BenchPath path, int burst = 256, int frameSize = 64, int extraRoutes = 0, int seed = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(frameSize, Ethernet.MinFrameLength);
        Path = path;
        Burst = burst;
        FrameSize = frameSize;
        Pool = new PacketPool(Math.Max(4096, burst * 4));
        var options = new NodeOptions
        {
            Name = "bench",
            PublicIp = Ipv4Address.Parse("172.31.77.1"),
            Subnet = Ipv4Prefix.Parse("10.244.1.0/24"),
            VtepMac = MacAddress.Parse("0e:fd:00:00:01:00"),
            GatewayMac = MacAddress.Parse("0a:58:0a:f4:01:01"),
            UnderlayMac = MacAddress.Parse("52:54:00:00:00:01"),
            // Jumbo inner frames need room on the underlay; the MTU check itself stays on the path.
            UnderlayMtu = Math.Max(1500, frameSize + 50),
        };
        var peer = new Peer("node2", Ipv4Address.Parse("172.31.77.2"), Ipv4Prefix.Parse("10.244.2.0/24"), MacAddress.Parse("0e:fd:00:00:02:00"))
        {
            UnderlayMac = MacAddress.Parse("52:54:00:00:00:02"),
        };
        var (underlayNode, underlayFar) = RingPort.CreatePair("underlay", "fabric", burst * 2);
        var (pod0Node, pod0) = RingPort.CreatePair("veth0", "pod0", burst * 2);
        var (pod1Node, pod1) = RingPort.CreatePair("veth1", "pod1", burst * 2);
        var pod0Ip = options.Subnet.Address + 2;
        var pod1Ip = options.Subnet.Address + 3;
        _service = path is BenchPath.ServiceEstablished or BenchPath.ServiceBulk or BenchPath.ServiceFirstPacket;
        var (services, conntrack) = _service ? Services(options, peer) : (null, null);
        var state = ForwardingState.Build(options, underlayNode,
            [new PodAttachment(pod0Node, new Ipv4Address(pod0Ip)), new PodAttachment(pod1Node, new Ipv4Address(pod1Ip))],
            [peer], ExtraRoutes(extraRoutes, seed), services: services, conntrack: conntrack);
        Node = new NodeForwarder(Pool, state, _clock);
        var pod0Mac = new MacAddress(0x0A58_0000_0000UL | pod0Ip);
        var pod1Mac = new MacAddress(0x0A58_0000_0000UL | pod1Ip);
        Node.Arp.Learn(pod0Ip, pod0Mac, 1, 0, permanent: true);
        Node.Arp.Learn(pod1Ip, pod1Mac, 2, 0, permanent: true);

        var payload = frameSize - 42;
        (_input, _output, _frame) = path switch
        {
            BenchPath.IntraNode => (pod0, pod1, Udp(pod0Mac, options.GatewayMac, pod0Ip, pod1Ip, payload)),
            BenchPath.Encap => (pod0, underlayFar, Udp(pod0Mac, options.GatewayMac, pod0Ip, peer.Subnet.Address + 9, payload)),
            BenchPath.Decap => (underlayFar, pod1, Vxlan(peer, options, Udp(peer.VtepMac, options.VtepMac, peer.Subnet.Address + 9, pod1Ip, payload))),
            BenchPath.Arp => (pod0, pod0, ArpRequest(pod0Mac, pod0Ip, options.GatewayIp)),
            BenchPath.ServiceEstablished or BenchPath.ServiceBulk or BenchPath.ServiceFirstPacket => (pod0, underlayFar, Udp(pod0Mac, options.GatewayMac, pod0Ip, ServiceIp.Value, payload)),
            _ => throw new ArgumentOutOfRangeException(nameof(path)),
        };
        _handles = new int[burst];
    }

    public BenchPath Path { get; }
    public int Burst { get; }
    public int FrameSize { get; }
    public PacketPool Pool { get; }
    public NodeForwarder Node { get; }
    public int RouteCount => Node.State.Routes.Count;

    /// <summary>One burst in, one poll, everything out. Returns the packets that came out.</summary>
    public int RunBurst()
    {
        var pool = Pool;
        var handles = _handles;
        var frame = _frame;
        for (var i = 0; i < handles.Length; i++)
        {
            var h = pool.Allocate();
            frame.CopyTo(pool.WritableFrame(h));
            pool.SetLength(h, frame.Length);
            handles[i] = h;
            if (_service) SetSourcePort(pool.WritableFrame(h), (ushort)(_flowBase + (Path == BenchPath.ServiceBulk ? i / 32 : i)));
        }
        if (Path == BenchPath.ServiceFirstPacket)
        {
            // New flows every burst; the clock jumps past the UDP timeout so the last burst's flows are expired
            // and the table reclaims them lazily, as it does under steady churn.
            _flowBase = (_flowBase + handles.Length) % 60000;
            _clock.Advance(TimeSpan.FromSeconds(31));
        }
        var queued = _input.Transmit(handles);
        for (var i = queued; i < handles.Length; i++) pool.Free(handles[i]);
        Node.Poll();
        var delivered = 0;
        int n;
        while ((n = _output.Receive(handles)) > 0)
        {
            delivered += n;
            pool.Free(handles.AsSpan(0, n));
        }
        return delivered;
    }

    /// <summary>Runs whole bursts until at least <paramref name="packets"/> came out (or nothing does).</summary>
    public long Run(long packets)
    {
        long delivered = 0;
        while (delivered < packets)
        {
            var n = RunBurst();
            if (n == 0) break;
            delivered += n;
        }
        return delivered;
    }

    /// <summary>One ClusterIP (UDP 5201) with ten endpoints on the peer node, so the service path ends in the encap path.</summary>
    private static (ServiceTable, ConntrackSet) Services(NodeOptions node, Peer peer)
    {
        var endpoints = new EndpointConfig[10];
        for (var i = 0; i < endpoints.Length; i++) endpoints[i] = new EndpointConfig(new Ipv4Address(peer.Subnet.Address + 10 + (uint)i), peer.Name);
        var service = new ServiceConfig
        {
            Name = "bench",
            ClusterIp = ServiceIp,
            Ports = [new ServicePortConfig("udp", L4Protocol.Udp, 5201, 5201, null)],
            Endpoints = endpoints,
        };
        var settings = new ServiceTableSettings(node.Name, node.Subnet, node.PublicIp.Value, node.GatewayIp, MaglevTable.DefaultSize, 1, System.Diagnostics.Stopwatch.Frequency);
        return (ServiceTableBuilder.Build([service], settings), new ConntrackSet(1, 65536, ConntrackTimeouts.Default, seed: 7));
    }

    /// <summary>What a NIC would deliver for another flow: the source port changed, the UDP checksum patched (RFC 1624).</summary>
    private static void SetSourcePort(Span<byte> frame, ushort port)
    {
        var udp = frame[34..];
        var old = BinaryPrimitives.ReadUInt16BigEndian(udp);
        port = (ushort)(1024 + port);
        BinaryPrimitives.WriteUInt16BigEndian(udp, port);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], InternetChecksum.Update(BinaryPrimitives.ReadUInt16BigEndian(udp[6..]), old, port));
    }

    /// <summary>Random /8–/24 prefixes outside 10/8, so they grow the table without matching the bench traffic.</summary>
    public static List<(Ipv4Prefix, RouteKind)> ExtraRoutes(int count, int seed)
    {
        var routes = new List<(Ipv4Prefix, RouteKind)>(count);
        var seen = new HashSet<Ipv4Prefix>();
        var random = new Random(seed);
        while (routes.Count < count)
        {
            var length = random.Next(16, 25);
            var address = (uint)random.NextInt64(11L << 24, 224L << 24);
            var prefix = new Ipv4Prefix(address, length);
            if (seen.Add(prefix)) routes.Add((prefix, RouteKind.Blackhole));
        }
        return routes;
    }

    private static byte[] Udp(MacAddress src, MacAddress dst, uint srcIp, uint dstIp, int payload)
    {
        var frame = new byte[Ethernet.HeaderLength + Ipv4Header.MinLength + UdpHeader.Length + payload];
        Ethernet.Write(frame, dst, src, Ethernet.TypeIpv4);
        Ipv4Header.Write(frame.AsSpan(14), (ushort)(frame.Length - 14), 1, Ipv4Header.FlagDontFragment, 64, Ipv4Header.ProtocolUdp, srcIp, dstIp);
        var udp = frame.AsSpan(34);
        udp[8..].Fill(0x78);
        UdpHeader.Write(udp, 40000, 5201, (ushort)udp.Length);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], UdpHeader.ComputeChecksum(srcIp, dstIp, udp));
        return frame;
    }

    private static byte[] Vxlan(Peer from, NodeOptions to, byte[] inner)
    {
        var frame = new byte[VxlanHeader.OverheadIpv4 + inner.Length];
        var span = frame.AsSpan();
        Ethernet.Write(span, to.UnderlayMac, from.UnderlayMac, Ethernet.TypeIpv4);
        Ipv4Header.Write(span[14..], (ushort)(frame.Length - 14), 0, Ipv4Header.FlagDontFragment, 64, Ipv4Header.ProtocolUdp, from.PublicIp.Value, to.PublicIp.Value);
        UdpHeader.Write(span[34..], 51000, to.VxlanPort, (ushort)(frame.Length - 34));
        VxlanHeader.Write(span[42..], to.Vni);
        inner.CopyTo(span[50..]);
        return frame;
    }

    private static byte[] ArpRequest(MacAddress mac, uint ip, uint target)
    {
        var frame = new byte[Ethernet.MinFrameLength];
        ArpPacket.WriteFrame(frame, MacAddress.Broadcast, ArpPacket.OpRequest, mac, ip, MacAddress.Zero, target);
        return frame;
    }
}
