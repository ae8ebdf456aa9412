using System.Buffers.Binary;
using System.Diagnostics;
using FastOverlay.Config;
using FastOverlay.Pipeline;
using FastOverlay.Tables.Services;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Pipeline.Stages;

/// <summary>A <see cref="NodeHarness"/> with Services: pods 1 and 2 are the usual endpoints, pod 0 the client.</summary>
internal sealed class ServiceHarness
{
    public static readonly Ipv4Address Vip = Ipv4Address.Parse("10.96.0.10");
    public static readonly Ipv4Address Remote = Ipv4Address.Parse("10.244.2.5");

    public ServiceHarness(int pods = 3, int capacity = 4096)
    {
        H = new NodeHarness(pods);
        H.LearnPods();
        Conntrack = new ConntrackSet(1, capacity, ConntrackTimeouts.Default, seed: 42);
    }

    public NodeHarness H { get; }
    public ConntrackSet Conntrack { get; }
    public ServiceTable Table => H.Node.State.Services;

    public static ServiceConfig Web(params EndpointConfig[] endpoints) => new()
    {
        Name = "web",
        ClusterIp = Vip,
        Ports = [new ServicePortConfig("dns", L4Protocol.Udp, 53, 5353, null), new ServicePortConfig("http", L4Protocol.Tcp, 80, 8080, null)],
        Endpoints = endpoints,
    };

    public static EndpointConfig Pod(int i, bool ready = true, bool terminating = false) => new(NodeHarness.PodIp(i), null, ready, ready || terminating, terminating);

    public void Publish(params ServiceConfig[] services)
    {
        var settings = new ServiceTableSettings("node1", NodeHarness.Subnet, NodeHarness.PublicIp.Value, H.Options.GatewayIp, 251, 1, Stopwatch.Frequency);
        var table = ServiceTableBuilder.Build(services, settings, H.Node.State.Services);
        H.Node.Publish(ForwardingState.Build(H.Options, H.UnderlayNodeEnd, H.Attachments, H.Peers, previous: H.Node.State, services: table, conntrack: Conntrack));
    }

    public byte[] Udp(int pod, uint dst, ushort sport, ushort dport, int payload = 32) =>
        NodeHarness.UdpFrame(NodeHarness.PodMac(pod), NodeHarness.GatewayMac, NodeHarness.PodIp(pod).Value, dst, payload, sport: sport, dport: dport);

    /// <summary>Sends one frame from a pod, polls, and returns what each pod port received.</summary>
    public List<byte[]>[] Send(int pod, byte[] frame) => SendAll(pod, [frame]);

    /// <summary>Sends frames from a pod in one burst, polls once, and returns what each pod port received.</summary>
    public List<byte[]>[] SendAll(int pod, IEnumerable<byte[]> frames)
    {
        foreach (var f in frames) H.Inject(pod, f);
        H.Node.Poll();
        var result = new List<byte[]>[H.PodPorts.Length];
        for (var p = 0; p < result.Length; p++) result[p] = H.Drain(p);
        return result;
    }

    public static (uint Src, uint Dst, ushort Sport, ushort Dport) Tuple(byte[] frame)
    {
        var ip = frame.AsSpan(14);
        var l4 = ip[Ipv4Header.HeaderLength(ip)..];
        return (Ipv4Header.Source(ip), Ipv4Header.Destination(ip), BinaryPrimitives.ReadUInt16BigEndian(l4), BinaryPrimitives.ReadUInt16BigEndian(l4[2..]));
    }

    public static bool ChecksumsValid(byte[] frame)
    {
        var ip = frame.AsSpan(14, Ipv4Header.TotalLength(frame.AsSpan(14)));
        var ihl = Ipv4Header.HeaderLength(ip);
        if (!Ipv4Header.HeaderChecksumValid(ip, ihl)) return false;
        return ip[9] != Ipv4Header.ProtocolUdp || UdpHeader.ChecksumAcceptable(Ipv4Header.Source(ip), Ipv4Header.Destination(ip), ip[ihl..]);
    }
}
