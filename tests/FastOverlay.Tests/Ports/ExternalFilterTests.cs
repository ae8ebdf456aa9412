using FastOverlay.Config;
using FastOverlay.Ports;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// The external socket's BPF filter, run in <see cref="ClassicBpf"/> (the kernel's semantics) over crafted
/// frames. The namespace test (ExternalPortTests) attaches the same programs to a real socket.
/// </summary>
public sealed class ExternalFilterTests
{
    private static readonly Ipv4Address Node = Ipv4Address.Parse("10.77.0.1");
    private static readonly Ipv4Address Lb = Ipv4Address.Parse("10.77.0.100");
    private static readonly Ipv4Address Lb2 = Ipv4Address.Parse("10.77.0.101");
    private const byte Tcp = 6, Udp = 17;

    private static readonly ExternalTraffic Sample = new()
    {
        NodeIp = Node,
        TcpNodePorts = [30080, 30081, 30082, 31000],
        UdpNodePorts = [30053],
        Frontends = [new(Node, L4Protocol.Tcp, 8080), new(Lb, L4Protocol.Tcp, 80), new(Lb, L4Protocol.Tcp, 443), new(Lb2, L4Protocol.Udp, 53)],
    };

    private static bool Passes(SockFilter[] program, byte[] frame, byte packetType = 0)
    {
        var snap = ClassicBpf.Run(program, frame, packetType);
        Assert.True(snap is 0 or ExternalFilter.AcceptLength, $"snap {snap}");
        return snap != 0;
    }

    public static TheoryData<string, byte[], bool> Frames() => new()
    {
        { "TCP SYN to a NodePort", ExternalFrames.Tcp(Node, 30080), true },
        { "TCP inside a run of NodePorts", ExternalFrames.Tcp(Node, 30082), true },
        { "TCP to a lone NodePort", ExternalFrames.Tcp(Node, 31000), true },
        { "UDP NodePort", ExternalFrames.Udp(Node, 30053), true },
        { "frontend on the node's own IP", ExternalFrames.Tcp(Node, 8080), true },
        { "LoadBalancer IP, TCP 80", ExternalFrames.Tcp(Lb, 80), true },
        { "LoadBalancer IP, TCP 443", ExternalFrames.Tcp(Lb, 443), true },
        { "second LoadBalancer IP, UDP 53", ExternalFrames.Udp(Lb2, 53), true },
        { "first fragment (MF) to a NodePort", ExternalFrames.Build(MacAddress.Broadcast, Ipv4Address.Parse("198.51.100.7"), Node, Tcp, 1, 30080, flagsFragment: 0x2000), true },
        { "IPv4 options before the port", ExternalFrames.Build(MacAddress.Broadcast, Ipv4Address.Parse("198.51.100.7"), Node, Udp, 1, 30053, optionWords: 3), true },
        { "VXLAN to the node", ExternalFrames.Udp(Node, 8472, payload: 58), false },
        { "TCP to a port that is not a NodePort", ExternalFrames.Tcp(Node, 30083), false },
        { "UDP to a TCP NodePort", ExternalFrames.Udp(Node, 30080), false },
        { "TCP to a UDP NodePort", ExternalFrames.Tcp(Node, 30053), false },
        { "LoadBalancer IP, wrong port", ExternalFrames.Tcp(Lb, 53), false },
        { "LoadBalancer IP, wrong protocol", ExternalFrames.Udp(Lb, 80), false },
        { "NodePort on a LoadBalancer IP", ExternalFrames.Tcp(Lb, 30080), false },
        { "another address", ExternalFrames.Tcp(Ipv4Address.Parse("10.77.0.102"), 80), false },
        { "later fragment to a NodePort", ExternalFrames.Build(MacAddress.Broadcast, Ipv4Address.Parse("198.51.100.7"), Node, Tcp, 1, 30080, flagsFragment: 185), false },
        { "ICMP to the node", ExternalFrames.Build(MacAddress.Broadcast, Ipv4Address.Parse("198.51.100.7"), Node, 1, 30080, 30080), false },
        { "ARP", ExternalFrames.Build(MacAddress.Broadcast, Ipv4Address.Parse("198.51.100.7"), Node, Tcp, 1, 30080, etherType: Ethernet.TypeArp), false },
        { "cut short before the port", ExternalFrames.Tcp(Node, 30080)[..35], false },
    };

    [Theory]
    [MemberData(nameof(Frames))]
    public void The_filter_passes_exactly_the_NodePorts_and_frontends(string what, byte[] frame, bool expected)
    {
        var program = ExternalFilter.Compile(Sample);
        Assert.Equal(ExternalFilterPrecision.Exact, program.Precision);
        Assert.True(expected == Passes(program.Code, frame), $"{what}\n{ClassicBpf.Disassemble(program.Code)}");
        // Both orientations of the exact program give the same answer.
        Assert.Equal(expected, Passes(ExternalFilter.CompileExact(Sample, outerIsIp: true), frame));
        Assert.Equal(expected, Passes(ExternalFilter.CompileExact(Sample, outerIsIp: false), frame));
    }

    [Fact]
    public void A_frame_for_another_host_is_dropped_even_when_it_matches()
    {
        var program = ExternalFilter.Compile(Sample).Code;
        Assert.True(Passes(program, ExternalFrames.Tcp(Node, 30080), packetType: 0));
        // PACKET_OTHERHOST (3): seen only because the interface is promiscuous.
        Assert.False(Passes(program, ExternalFrames.Tcp(Node, 30080), packetType: 3));
    }

    [Fact]
    public void Nothing_to_receive_compiles_to_a_single_drop()
    {
        var program = ExternalFilter.Compile(new ExternalTraffic { NodeIp = Node });
        Assert.Equal(1, program.Length);
        Assert.False(Passes(program.Code, ExternalFrames.Tcp(Node, 30080)));
    }

    [Fact]
    public void Random_sets_agree_with_set_membership_in_both_orientations()
    {
        var random = new Random(7);
        for (var round = 0; round < 40; round++)
        {
            var traffic = RandomTraffic(random, nodePorts: random.Next(0, 400), frontends: random.Next(0, 400), addresses: random.Next(1, 60));
            var programs = new[] { ExternalFilter.Compile(traffic).Code, ExternalFilter.CompileExact(traffic, true), ExternalFilter.CompileExact(traffic, false) };
            foreach (var (ip, protocol, port) in Probes(random, traffic, 300))
            {
                var expected = Member(traffic, ip, protocol, port);
                var frame = protocol == L4Protocol.Tcp ? ExternalFrames.Tcp(ip, port) : ExternalFrames.Udp(ip, port);
                foreach (var program in programs) Assert.True(expected == Passes(program, frame), $"round {round}: {ip} {protocol} {port} expected {expected}");
            }
        }
    }

    [Fact]
    public void Long_lists_stay_exact_through_chunks_and_trampolines()
    {
        // 600 addresses sharing 500 scattered ports: both the address list and the port list span many chunks.
        var ports = Enumerable.Range(0, 500).Select(i => (ushort)(1000 + 3 * i)).ToArray();
        var addresses = Enumerable.Range(0, 600).Select(i => new Ipv4Address(0x0A500000u + 2 * (uint)i)).ToArray();
        var traffic = new ExternalTraffic
        {
            NodeIp = Node,
            Frontends = [.. addresses.SelectMany(a => ports.Select(p => new ExternalFrontend(a, L4Protocol.Tcp, p)))],
        };
        var program = ExternalFilter.Compile(traffic);
        Assert.Equal(ExternalFilterPrecision.Exact, program.Precision);
        Assert.InRange(program.Length, 1000, 4096);
        foreach (var a in new[] { addresses[0], addresses[99], addresses[100], addresses[^1] })
        {
            foreach (var p in new[] { ports[0], ports[99], ports[100], ports[^1] }) Assert.True(Passes(program.Code, ExternalFrames.Tcp(a, p)), $"{a}:{p}");
            Assert.False(Passes(program.Code, ExternalFrames.Tcp(a, (ushort)(ports[^1] + 1))));
        }
        Assert.False(Passes(program.Code, ExternalFrames.Tcp(new Ipv4Address(addresses[^1].Value + 1), ports[0])));
    }

    [Fact]
    public void Too_many_entries_fall_back_to_port_ranges_and_address_lists_and_say_so()
    {
        // 3000 scattered NodePorts and 2000 scattered LoadBalancer IPs with a port each: the exact program is too long.
        var traffic = new ExternalTraffic
        {
            NodeIp = Node,
            TcpNodePorts = [.. Enumerable.Range(0, 3000).Select(i => (ushort)(30000 + 2 * i))],
            UdpNodePorts = [30001, 30003],
            Frontends = [.. Enumerable.Range(0, 2000).Select(i => new ExternalFrontend(new Ipv4Address(0x0A500000u + 2 * (uint)i), L4Protocol.Tcp, (ushort)(80 + i)))],
        };
        var program = ExternalFilter.Compile(traffic);
        Assert.Equal(ExternalFilterPrecision.ExternalAddresses, program.Precision);
        Assert.StartsWith("coarse: the exact filter needs ", program.Summary, StringComparison.Ordinal);
        Assert.Contains("TCP 30000-35998 and UDP 30001-30003", program.Summary, StringComparison.Ordinal);
        Assert.True(Passes(program.Code, ExternalFrames.Tcp(Node, 30002)));
        Assert.True(Passes(program.Code, ExternalFrames.Tcp(Node, 30003)), "a port inside the range passes (userspace re-checks)");
        Assert.True(Passes(program.Code, ExternalFrames.Udp(new Ipv4Address(0x0A500002), 9)), "any port of an external address passes");
        Assert.False(Passes(program.Code, ExternalFrames.Udp(Node, 8472, payload: 58)), "VXLAN never passes");
        Assert.False(Passes(program.Code, ExternalFrames.Tcp(Node, 22)));
        Assert.False(Passes(program.Code, ExternalFrames.Tcp(new Ipv4Address(0x0A500001), 80)), "an address between two external ones");
    }

    [Fact]
    public void Even_more_addresses_fall_back_to_one_address_range_that_never_includes_the_node()
    {
        // The node's IP sits inside the range of 5000 scattered external addresses.
        var node = new Ipv4Address(0x0A500005);
        var traffic = new ExternalTraffic
        {
            NodeIp = node,
            TcpNodePorts = [30080],
            Frontends = [.. Enumerable.Range(0, 5000).Select(i => new ExternalFrontend(new Ipv4Address(0x0A500000u + 2 * (uint)i), L4Protocol.Udp, 53))],
        };
        var program = ExternalFilter.Compile(traffic);
        Assert.Equal(ExternalFilterPrecision.ExternalAddressRange, program.Precision);
        Assert.Contains("10.80.0.0-10.80.39.14", program.Summary, StringComparison.Ordinal);
        Assert.True(Passes(program.Code, ExternalFrames.Tcp(node, 30080)));
        Assert.True(Passes(program.Code, ExternalFrames.Tcp(new Ipv4Address(0x0A500001), 1)));
        Assert.False(Passes(program.Code, ExternalFrames.Udp(node, 8472, payload: 58)));
        Assert.False(Passes(program.Code, ExternalFrames.Udp(node, 53)));
        Assert.False(Passes(program.Code, ExternalFrames.Udp(new Ipv4Address(0x0A600000), 53)));
    }

    [Fact]
    public void The_sample_program_reads_like_tcpdump_would_write_it()
    {
        // The prelude: pkt_type, EtherType, fragment offset, protocol, then the key protocol<<16|port in M[0].
        var code = ExternalFilter.Compile(Sample).Code;
        var expected = new (ushort Code, uint K)[]
        {
            (0x30, 0xFFFFF004), (0x15, 0), (0x28, 12), (0x15, 0x800), (0x28, 20), (0x45, 0x1FFF), (0x30, 23), (0x15, 6), (0x15, 17), (0x06, 0),
            (0x64, 16), (0x02, 0), (0xb1, 14), (0x48, 16), (0x07, 0), (0x60, 0), (0x4c, 0), (0x02, 0),
        };
        for (var i = 0; i < expected.Length; i++) Assert.Equal(expected[i], (code[i].Code, code[i].K));
    }

    internal static ExternalTraffic RandomTraffic(Random random, int nodePorts, int frontends, int addresses)
    {
        var ips = Enumerable.Range(0, addresses).Select(_ => new Ipv4Address(0x0A4D0000u + (uint)random.Next(0, 200))).ToArray();
        ushort Port() => (ushort)(random.Next(2) == 0 ? random.Next(30000, 30100) : random.Next(1, 65536));
        L4Protocol Protocol() => random.Next(3) == 0 ? L4Protocol.Udp : L4Protocol.Tcp;
        var node = new Ipv4Address(0x0A4D0001);
        var tcp = new SortedSet<ushort>();
        var udp = new SortedSet<ushort>();
        for (var i = 0; i < nodePorts; i++) (Protocol() == L4Protocol.Tcp ? tcp : udp).Add(Port());
        var list = new SortedSet<ExternalFrontend>(Comparer<ExternalFrontend>.Create(ExternalTraffic.Compare));
        for (var i = 0; i < frontends; i++) list.Add(new ExternalFrontend(random.Next(10) == 0 ? node : ips[random.Next(ips.Length)], Protocol(), Port()));
        return new ExternalTraffic { NodeIp = node, TcpNodePorts = [.. tcp], UdpNodePorts = [.. udp], Frontends = [.. list] };
    }

    private static IEnumerable<(Ipv4Address, L4Protocol, ushort)> Probes(Random random, ExternalTraffic traffic, int count)
    {
        foreach (var f in traffic.Frontends.Take(count / 3)) yield return (f.Ip, f.Protocol, f.Port);
        foreach (var p in traffic.TcpNodePorts.Take(count / 6)) yield return (traffic.NodeIp, L4Protocol.Tcp, p);
        foreach (var p in traffic.UdpNodePorts.Take(count / 6)) yield return (traffic.NodeIp, L4Protocol.Udp, p);
        for (var i = 0; i < count; i++)
        {
            var ip = random.Next(3) == 0 ? traffic.NodeIp : new Ipv4Address(0x0A4D0000u + (uint)random.Next(0, 256));
            yield return (ip, random.Next(2) == 0 ? L4Protocol.Tcp : L4Protocol.Udp, (ushort)random.Next(29990, 30110));
        }
    }

    private static bool Member(ExternalTraffic t, Ipv4Address ip, L4Protocol protocol, ushort port) =>
        (ip == t.NodeIp && t.NodePorts(protocol).Contains(port)) || t.Frontends.Contains(new ExternalFrontend(ip, protocol, port));
}
