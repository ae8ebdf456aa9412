using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using FastOverlay.Config;
using FastOverlay.Control;
using FastOverlay.Offload;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;
using static FastOverlay.Tests.Ports.ExternalLink;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// ExternalPort between a node and a client namespace (<see cref="ExternalLink"/>): what its BPF filter lets
/// through from the wire, and what its raw IP socket sends. ExternalGuardTests adds the netfilter side.
/// </summary>
[Collection("netns")]
public sealed class ExternalPortTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);
    private const byte Tcp = 6, Udp = 17;

    private static readonly ExternalTraffic Traffic = new()
    {
        NodeIp = NodeIp,
        TcpNodePorts = [30080],
        UdpNodePorts = [30053],
        Frontends = [new(LbIp, L4Protocol.Tcp, 80)],
    };

    private static void Require() => Skip.If(ExternalLink.Unavailable() is not null, ExternalLink.Unavailable());

    [SkippableFact]
    public void Only_NodePort_and_frontend_frames_reach_the_port_whole_and_VXLAN_never_does()
    {
        Require();
        using var link = new ExternalLink();
        var pool = new PacketPool(256);
        using var port = link.Node.Enter(() => new ExternalPort(NodeInterface, pool, Traffic));
        using var client = link.Client!.Enter(() => FrameInjector.Open(ClientInterface));
        using var nodeSide = link.Node.Enter(() => FrameInjector.Open(NodeInterface));
        byte[] Frame(Ipv4Address to, byte protocol, ushort dport, ushort fragment = 0, int payload = 8) =>
            ExternalFrames.Build(link.NodeMac, ClientIp, to, protocol, 40001, dport, payload, fragment);

        var wanted = new[] { Frame(NodeIp, Tcp, 30080), Frame(NodeIp, Udp, 30053), Frame(LbIp, Tcp, 80), Frame(NodeIp, Udp, 30053, fragment: 0x2000) };
        var unwanted = new[]
        {
            Frame(NodeIp, Udp, 8472, payload: 58), Frame(NodeIp, Tcp, 30081), Frame(NodeIp, Udp, 30080), Frame(LbIp, Tcp, 81),
            Frame(NodeIp, Udp, 30053, fragment: 185), Frame(NodeIp, 1, 30080),
        };
        for (var i = 0; i < unwanted.Length; i++)
        {
            client.Send(unwanted[i]);
            if (i < wanted.Length) client.Send(wanted[i]);
        }
        // A matching frame the node sends out itself: the port never sees outgoing frames.
        nodeSide.Send(Frame(NodeIp, Tcp, 30080));
        var received = PortDriver.Receive(port, pool, wanted.Length + 1, TimeSpan.FromMilliseconds(800));

        Assert.Equal(wanted.Length, received.Count);
        for (var i = 0; i < wanted.Length; i++) Assert.Equal(wanted[i], received[i]);
        Assert.Equal(wanted.Length, port.Counters.RxFrames);
        Assert.True(port.VnetHeader);
        Assert.Equal(0, pool.InUse);
    }

    [SkippableFact]
    public void A_kernel_SYN_to_a_NodePort_arrives_as_one_frame()
    {
        Require();
        using var link = new ExternalLink();
        var pool = new PacketPool(256);
        using var port = link.Node.Enter(() => new ExternalPort(NodeInterface, pool, Traffic));

        // No guard here: the node's kernel refuses at once, so exactly one SYN goes out.
        var connect = link.Python("connect", NodeIp.ToString(), "30080", "1", ClientInterface);
        Assert.True(connect.Ok, connect.ToString());
        Assert.Contains("refused", connect.Stdout, StringComparison.Ordinal);
        var received = PortDriver.Receive(port, pool, 2, TimeSpan.FromMilliseconds(500));

        var syn = Assert.Single(received);
        Assert.Equal(link.NodeMac, Ethernet.Destination(syn));
        Assert.Equal(link.ClientMac, Ethernet.Source(syn));
        var ip = syn.AsSpan(Ethernet.HeaderLength);
        Assert.Equal(ClientIp.Value, Ipv4Header.Source(ip));
        Assert.Equal(NodeIp.Value, Ipv4Header.Destination(ip));
        var tcp = ip[Ipv4Header.HeaderLength(ip)..];
        Assert.Equal(30080, BinaryPrimitives.ReadUInt16BigEndian(tcp[2..]));
        Assert.Equal(0x02, tcp[13]);
    }

    [SkippableFact]
    public void UpdateFilter_switches_ports_and_the_kernel_takes_long_and_coarse_programs()
    {
        Require();
        using var link = new ExternalLink();
        var pool = new PacketPool(256);
        using var port = link.Node.Enter(() => new ExternalPort(NodeInterface, pool, Traffic));
        using var client = link.Client!.Enter(() => FrameInjector.Open(ClientInterface));
        var to30053 = ExternalFrames.Build(link.NodeMac, ClientIp, NodeIp, Udp, 40001, 30053);
        var to30054 = ExternalFrames.Build(link.NodeMac, ClientIp, NodeIp, Udp, 40001, 30054);

        client.Send(to30054);
        client.Send(to30053);
        Assert.Equal([to30053], PortDriver.Receive(port, pool, 2, TimeSpan.FromMilliseconds(300)));

        var program = port.UpdateFilter(Traffic with { UdpNodePorts = [30054] });
        Assert.Same(program, port.Filter);
        client.Send(to30053);
        client.Send(to30054);
        Assert.Equal([to30054], PortDriver.Receive(port, pool, 2, TimeSpan.FromMilliseconds(300)));

        // Programs near the kernel's 4096-instruction limit, exact and coarse, attach and work.
        var big = ExternalFilterTests.RandomTraffic(new Random(3), 1500, 1500, 300) with { NodeIp = NodeIp, UdpNodePorts = [30053] };
        var exact = ExternalFilter.Compile(big);
        port.UpdateFilter(exact);
        var coarse = ExternalFilter.Compile(big, maxInstructions: exact.Length - 1);
        Assert.NotEqual(ExternalFilterPrecision.Exact, coarse.Precision);
        port.UpdateFilter(coarse);
        client.Send(to30053);
        Assert.Equal([to30053], PortDriver.Receive(port, pool, 1, Timeout));
        Assert.Equal(0, pool.InUse);
    }

    /// <summary>
    /// A node without NodePorts or external addresses must not pay a system call per poll for its external port:
    /// under a filter that passes nothing the port reads what the old filter let in, then goes quiet, and the next
    /// filter that passes something wakes it.
    /// </summary>
    [SkippableFact]
    public void A_closed_filter_delivers_what_was_queued_then_goes_quiet_until_a_filter_opens()
    {
        Require();
        using var link = new ExternalLink();
        var pool = new PacketPool(256);
        using var port = link.Node.Enter(() => new ExternalPort(NodeInterface, pool, Traffic));
        using var client = link.Client!.Enter(() => FrameInjector.Open(ClientInterface));
        var to30053 = ExternalFrames.Build(link.NodeMac, ClientIp, NodeIp, Udp, 40001, 30053);
        var handles = new int[8];

        client.Send(to30053);
        Thread.Sleep(200);
        port.UpdateFilter(Traffic with { TcpNodePorts = [], UdpNodePorts = [], Frontends = [] });
        Assert.True(port.Filter.PassesNothing);
        Assert.False(port.IsQuiet);
        Assert.Equal([to30053], PortDriver.Receive(port, pool, 1, Timeout));
        Assert.Equal(0, port.Receive(handles));
        Assert.True(port.IsQuiet);

        port.UpdateFilter(Traffic);
        Assert.False(port.IsQuiet);
        client.Send(to30053);
        Assert.Equal([to30053], PortDriver.Receive(port, pool, 1, Timeout));
        Assert.False(port.IsQuiet);
        Assert.Equal(0, pool.InUse);
    }

    [SkippableFact]
    public void Transmit_sends_each_IPv4_packet_to_its_destination_even_from_an_address_the_node_does_not_hold()
    {
        Require();
        using var link = new ExternalLink();
        var pool = new PacketPool(64);
        using var port = link.Node.Enter(() => new ExternalPort(NodeInterface, pool, Traffic));
        using var from30053 = link.Client!.Enter(() => Listen(5555));
        using var fromLb = link.Client!.Enter(() => Listen(5556));

        var reply = ExternalFrames.Build(link.ClientMac, NodeIp, ClientIp, Udp, 30053, 5555, payload: 20);
        // Ethernet padding behind a short packet must not become payload.
        var padded = ExternalFrames.Build(link.ClientMac, NodeIp, ClientIp, Udp, 30053, 5555, payload: 4).Concat(new byte[12]).ToArray();
        var fromLbFrame = ExternalFrames.Build(link.ClientMac, LbIp, ClientIp, Udp, 80, 5556, payload: 30);
        var partial = ExternalFrames.Build(link.ClientMac, LbIp, ClientIp, Udp, 80, 5556, payload: 40);
        L4Checksum.WritePartial(partial.AsSpan(34), Udp, L4Checksum.PseudoHeader(LbIp.Value, ClientIp.Value, Udp, 48));
        var unroutable = ExternalFrames.Build(link.ClientMac, NodeIp, Ipv4Address.Parse("203.0.113.9"), Udp, 30053, 5555);
        var notIp = PortDriver.Frame(1);
        var handles = PortDriver.Load(pool, [reply, padded, fromLbFrame, partial, unroutable, notIp]);
        pool.Meta(handles[3]).Flags = PacketFlags.ChecksumPartial;

        Assert.Equal(handles.Length, port.Transmit(handles));
        Assert.Equal(0, pool.InUse);
        Assert.Equal(4, port.Counters.TxFrames);
        Assert.Equal(2, port.Counters.TxErrors);
        Assert.Equal(1, port.Counters.Errors(Errno.ENetUnreach));
        Assert.Equal(1, port.Counters.Errors(Errno.EInval));

        var first = Read(from30053);
        Assert.Equal(new IPEndPoint(IPAddress.Parse(NodeIp.ToString()), 30053), first.From);
        Assert.Equal(reply.AsSpan(42).ToArray(), first.Payload);
        Assert.Equal(padded.AsSpan(42, 4).ToArray(), Read(from30053).Payload);
        var lb = Read(fromLb);
        Assert.Equal(new IPEndPoint(IPAddress.Parse(LbIp.ToString()), 80), lb.From);
        Assert.Equal(fromLbFrame.AsSpan(42).ToArray(), lb.Payload);
        // Delivered at all means the checksum was finished: the client's kernel drops a bad one.
        Assert.Equal(partial.AsSpan(42).ToArray(), Read(fromLb).Payload);
    }

    [SkippableFact]
    public void Worker_ports_from_the_factory_share_one_fanout_group_and_split_the_flows()
    {
        Require();
        using var link = new ExternalLink();
        var factory = new SocketPortFactory(workers: 2);
        var node = UnderlayLink.Node(NodeIp);
        var pools = new[] { new PacketPool(256), new PacketPool(256) };
        // No interface named: the factory finds the one that holds the node's IP.
        using var a = (ExternalPort)link.Node.Enter(() => factory.OpenExternal(node, null, pools[0]))!;
        using var b = (ExternalPort)link.Node.Enter(() => factory.OpenExternal(node, null, pools[1]))!;
        Assert.Equal(NodeInterface, a.Name);
        Assert.NotNull(a.FanoutGroupId);
        Assert.Equal(a.FanoutGroupId, b.FanoutGroupId);
        // Both start closed; every worker's port gets the same program.
        foreach (var port in new[] { a, b }) port.UpdateFilter(Traffic);

        link.Client!.Enter(() =>
        {
            for (var i = 0; i < 64; i++)
            {
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                s.SendTo(new byte[16], new IPEndPoint(IPAddress.Parse(NodeIp.ToString()), 30053));
            }
            return 0;
        });
        var counts = new int[2];
        var deadline = DateTime.UtcNow + Timeout;
        while (counts.Sum() < 64 && DateTime.UtcNow < deadline)
        {
            counts[0] += PortDriver.Receive(a, pools[0], 64, TimeSpan.FromMilliseconds(20)).Count;
            counts[1] += PortDriver.Receive(b, pools[1], 64, TimeSpan.FromMilliseconds(20)).Count;
        }
        Assert.Equal(64, counts.Sum());
        Assert.All(counts, c => Assert.True(c > 0, $"one port got all the flows: {counts[0]} and {counts[1]}"));
    }

    [SkippableFact]
    public void Super_frames_from_GSO_and_TSO_senders_are_cut_into_segments()
    {
        Require();
        using var link = new ExternalLink();
        var pool = new PacketPool(4096);
        using var port = link.Node.Enter(() => new ExternalPort(NodeInterface, pool, Traffic));

        // UDP GSO: one 8000-byte send in 1000-byte datagrams crosses the veth as one GSO frame.
        var gso = link.Python("udpgso", NodeIp.ToString(), "30053", "1000", "8000");
        Assert.True(gso.Ok, gso.ToString());
        var flags = new List<PacketFlags>();
        var datagrams = PortDriver.Receive(port, pool, 8, Timeout, flags: flags);
        Assert.Equal(8, datagrams.Count);
        for (var i = 0; i < datagrams.Count; i++)
        {
            Assert.Equal(42 + 1000, datagrams[i].Length);
            Assert.Equal(PacketFlags.ChecksumPartial, flags[i]);
            L4Checksum.Complete(datagrams[i]);
            Assert.True(UdpHeader.ChecksumAcceptable(ClientIp.Value, NodeIp.Value, datagrams[i].AsSpan(34)));
            Assert.Equal((byte)(i * 1000 % 251), datagrams[i][42]);
        }
        Assert.True(port.Counters.RxSuperFrames >= 1, port.Counters.ToString());

        // TCP: a listener in the node takes a 200 kB stream the client's TSO sends as super-frames.
        using var listener = link.Node.Enter(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Parse(NodeIp.ToString()), 30080));
            s.Listen();
            return s;
        });
        var drain = Task.Run(() =>
        {
            using var c = listener.Accept();
            var buffer = new byte[65536];
            while (c.Receive(buffer) > 0)
            {
            }
        });
        var send = link.Python("tcpsend", NodeIp.ToString(), "30080", "200000");
        Assert.True(send.Ok, send.ToString());
        var payload = 0L;
        var superFrames = port.Counters.RxSuperFrames;
        foreach (var frame in PortDriver.Receive(port, pool, 1000, TimeSpan.FromSeconds(1)))
        {
            Assert.True(frame.Length <= PacketPool.MaxFrameLength);
            var ip = frame.AsSpan(Ethernet.HeaderLength);
            if (Ipv4Header.Source(ip) != ClientIp.Value) continue;
            var tcp = ip[Ipv4Header.HeaderLength(ip)..Ipv4Header.TotalLength(ip)];
            payload += tcp.Length - (tcp[12] >> 4) * 4;
        }
        drain.Wait(Timeout);
        Assert.True(payload >= 200000, $"{payload} bytes of TCP payload");
        Assert.True(port.Counters.RxSuperFrames > superFrames, port.Counters.ToString());
        Assert.Equal(0, pool.InUse);
    }

    private static Socket Listen(int port)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Parse(ClientIp.ToString()), port));
        s.ReceiveTimeout = (int)Timeout.TotalMilliseconds;
        return s;
    }

    private static (IPEndPoint From, byte[] Payload) Read(Socket socket)
    {
        var buffer = new byte[2048];
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        var n = socket.ReceiveFrom(buffer, ref from);
        return ((IPEndPoint)from, buffer[..n]);
    }
}
