using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using FastOverlay.Pipeline;
using FastOverlay.Pipeline.Stages;
using FastOverlay.Tables;
using FastOverlay.Wire;
using PacketDotNet;

namespace FastOverlay.Benchmarks.Wire;

/// <summary>
/// VXLAN decap (outer checks, then the inner Ethernet/IPv4/UDP down to the UDP port) and encap (the 50-byte outer
/// header in front of a 64-byte inner frame), 256 per invocation, side by side with PacketDotNet 1.4.8. The encap
/// also compares the IPv4 checksum from the template's partial sum with one summed from the just-stored header.
/// </summary>
public class VxlanBenchmarks
{
    private const int Burst = 256;
    private byte[][] _vxlan = [];
    private byte[] _inner = [];
    private byte[] _buffer = [];
    private NodeOptions _node = null!;
    private EncapTemplate _template = null!;

    [GlobalSetup]
    public void Setup()
    {
        _vxlan = Enumerable.Range(0, Burst).Select(_ => Frames.Vxlan()).ToArray();
        _inner = Frames.Udp();
        _buffer = new byte[Burst * 256];
        _node = new NodeOptions
        {
            Name = "b", PublicIp = new Ipv4Address(Frames.NodeB), Subnet = Ipv4Prefix.Parse("10.244.2.0/24"),
            VtepMac = Frames.VtepB, GatewayMac = Frames.GatewayMac,
        };
        var sender = _node with { PublicIp = new Ipv4Address(Frames.NodeA), Subnet = Ipv4Prefix.Parse("10.244.1.0/24"), VtepMac = Frames.VtepA };
        _template = new EncapTemplate(sender, new Peer("b", new Ipv4Address(Frames.NodeB), _node.Subnet, Frames.VtepB));
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Burst)]
    public int PacketDotNet_DecapToInnerUdpPort()
    {
        var sum = 0;
        foreach (var frame in _vxlan)
        {
            var outer = Packet.ParsePacket(LinkLayers.Ethernet, frame).Extract<UdpPacket>();
            var inner = Packet.ParsePacket(LinkLayers.Ethernet, outer.PayloadData.AsSpan(8).ToArray());
            sum += inner.Extract<UdpPacket>().DestinationPort;
        }
        return sum;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int FastOverlay_DecapToInnerUdpPort()
    {
        var sum = 0;
        foreach (var frame in _vxlan)
        {
            ReadOnlySpan<byte> f = frame;
            if (VxlanDecap.Decapsulate(_node, f, out var outerLength, out _, out _, out _) != DropReason.None) continue;
            var inner = f[outerLength..];
            if (Ethernet.Parse(inner, out var type, out var l3) != DropReason.None || type != Ethernet.TypeIpv4) continue;
            var ip = inner[l3..];
            if (Ipv4Header.Validate(ip, out var ihl, out var total) != DropReason.None) continue;
            sum += UdpHeader.DestinationPort(ip[ihl..total]);
        }
        return sum;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int PacketDotNet_Encap()
    {
        var total = 0;
        for (var i = 0; i < Burst; i++)
        {
            var payload = new byte[8 + _inner.Length];
            payload[0] = 0x08;
            payload[6] = 1;
            _inner.CopyTo(payload, 8);
            var udp = new UdpPacket(50000, VxlanHeader.LinuxPort) { PayloadData = payload };
            var ip = new IPv4Packet(new System.Net.IPAddress(BinaryPrimitives.ReverseEndianness(Frames.NodeA)), new System.Net.IPAddress(BinaryPrimitives.ReverseEndianness(Frames.NodeB)))
            {
                TimeToLive = 64,
                PayloadPacket = udp,
            };
            var eth = new EthernetPacket(new System.Net.NetworkInformation.PhysicalAddress([0x52, 0x54, 0, 0, 0, 1]), new System.Net.NetworkInformation.PhysicalAddress([0x52, 0x54, 0, 0, 0, 2]), EthernetType.IPv4)
            {
                PayloadPacket = ip,
            };
            ip.UpdateIPChecksum();
            total += eth.Bytes.Length;
        }
        return total;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int FastOverlay_Encap()
    {
        var buffer = _buffer.AsSpan();
        var total = 0;
        for (var i = 0; i < Burst; i++)
        {
            var slot = buffer.Slice(i * 256, 50 + _inner.Length);
            _inner.CopyTo(slot[50..]);
            VxlanEncap.WriteOuter(slot, _template, (ushort)(49152 + i));
            total += slot.Length;
        }
        return total;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int FastOverlay_Encap_ChecksumReadBack()
    {
        var buffer = _buffer.AsSpan();
        var total = 0;
        for (var i = 0; i < Burst; i++)
        {
            var slot = buffer.Slice(i * 256, 50 + _inner.Length);
            _inner.CopyTo(slot[50..]);
            VxlanEncap.WriteOuter(slot, _template, (ushort)(49152 + i));
            // What the template sum avoids: summing the header just stored (store-to-load forwarding stalls).
            Ipv4Header.UpdateChecksum(slot[14..]);
            total += slot.Length;
        }
        return total;
    }
}
