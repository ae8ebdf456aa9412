using BenchmarkDotNet.Attributes;
using FastOverlay.Wire;
using PacketDotNet;

namespace FastOverlay.Benchmarks.Wire;

/// <summary>
/// Parse a 64-byte Ethernet/IPv4/UDP frame and classify it (EtherType, IPv4 validation with the header checksum,
/// UDP length, destination port), 256 frames per invocation, side by side with PacketDotNet 1.4.8.
/// </summary>
public class ParseBenchmarks
{
    private const int Burst = 256;
    private byte[][] _frames = [];

    [GlobalSetup]
    public void Setup() => _frames = Enumerable.Range(0, Burst).Select(i => Frames.Udp(64, dst: Frames.PodB + (uint)i)).ToArray();

    [Benchmark(Baseline = true, OperationsPerInvoke = Burst)]
    public int PacketDotNet_ParseUdpPort()
    {
        var sum = 0;
        foreach (var frame in _frames)
            sum += Packet.ParsePacket(LinkLayers.Ethernet, frame).Extract<UdpPacket>().DestinationPort;
        return sum;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int FastOverlay_ParseAndClassify()
    {
        var sum = 0;
        foreach (var frame in _frames)
        {
            ReadOnlySpan<byte> f = frame;
            if (Ethernet.Parse(f, out var type, out var l3) != DropReason.None || type != Ethernet.TypeIpv4) continue;
            var ip = f[l3..];
            if (Ipv4Header.Validate(ip, out var ihl, out var total) != DropReason.None) continue;
            var udp = ip[ihl..total];
            if (Ipv4Header.Protocol(ip) != Ipv4Header.ProtocolUdp || UdpHeader.Validate(udp) != DropReason.None) continue;
            sum += UdpHeader.DestinationPort(udp);
        }
        return sum;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int FastOverlay_ParseWithoutChecksum()
    {
        var sum = 0;
        foreach (var frame in _frames)
        {
            ReadOnlySpan<byte> f = frame;
            if (Ethernet.Parse(f, out var type, out var l3) != DropReason.None || type != Ethernet.TypeIpv4) continue;
            var ip = f[l3..];
            var ihl = Ipv4Header.HeaderLength(ip);
            if (Ipv4Header.Protocol(ip) != Ipv4Header.ProtocolUdp) continue;
            sum += UdpHeader.DestinationPort(ip[ihl..]);
        }
        return sum;
    }
}
