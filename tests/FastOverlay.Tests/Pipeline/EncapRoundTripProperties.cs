using FastOverlay.Pipeline;
using FastOverlay.Tables;
using FastOverlay.Wire;
using FsCheck;
using FsCheck.Xunit;

namespace FastOverlay.Tests.Pipeline;

/// <summary>
/// decap(encap(frame)) is the frame: a packet sent by a pod on node A to a pod on node B arrives with every byte
/// of its IPv4 packet intact except the TTL (two routers: A and B) and the header checksum, for arbitrary
/// payloads, ports, TTLs, VNIs, VXLAN ports, public IPs, subnets and VTEP MACs.
/// </summary>
public class EncapRoundTripProperties
{
    [Property(MaxTest = 300)]
    public bool Decap_of_encap_returns_the_frame_and_its_metadata(uint vniSeed, ushort portSeed, byte subnetA, byte subnetB, uint ipA, uint ipB, ulong macSeed, byte ttlSeed, byte[]? payload, ushort sport, ushort dport)
    {
        payload ??= [];
        if (payload.Length > 1400) payload = payload[..1400];
        var vni = vniSeed % VxlanHeader.MaxVni + 1;
        var vxlanPort = (ushort)(portSeed | 1024);
        if (subnetA == subnetB) subnetB ^= 1;
        var publicA = new Ipv4Address(0x0A00_0000 | (ipA & 0x00FF_FFFE) | 2);
        var publicB = new Ipv4Address(0xAC10_0000 | (ipB & 0x000F_FFFE) | 2);
        var vtepA = new MacAddress((macSeed & 0xFEFF_FFFF_FFFFUL) | 0x0200_0000_0000UL);
        var vtepB = new MacAddress(((macSeed >> 8) & 0xFEFF_FFFF_FFFFUL) | 0x0200_0000_0001UL);
        if (vtepA == vtepB) vtepB = new MacAddress(vtepB.Value ^ 0x10);
        var ttl = (byte)Math.Max(3, (int)ttlSeed);

        NodeOptions Options(string name, Ipv4Address ip, byte octet, MacAddress vtep) => new()
        {
            Name = name, PublicIp = ip, Subnet = new Ipv4Prefix(0x0AF4_0000u | ((uint)octet << 8), 24), VtepMac = vtep,
            GatewayMac = new MacAddress(0x0A58_0000_0001UL | ((ulong)octet << 8)), UnderlayMac = new MacAddress(0x5254_0000_0000UL | octet),
            Vni = vni, VxlanPort = vxlanPort,
        };
        var optionsA = Options("a", publicA, subnetA, vtepA);
        var optionsB = Options("b", publicB, subnetB, vtepB);
        var leaseA = new Peer("a", publicA, optionsA.Subnet, vtepA) { UnderlayMac = optionsA.UnderlayMac };
        var leaseB = new Peer("b", publicB, optionsB.Subnet, vtepB) { UnderlayMac = optionsB.UnderlayMac };
        var a = new NodeHarness(peers: [leaseB], options: optionsA);
        var b = new NodeHarness(peers: [leaseA], options: optionsB);
        b.LearnPods();

        var src = optionsA.Subnet.Address + 2;
        var dst = optionsB.Subnet.Address + 3; // pod 1 on B
        var frame = NodeHarness.UdpFrame(new MacAddress(0x0A58_0000_0000UL | src), optionsA.GatewayMac, src, dst, payload.Length, ttl, sport, dport);
        payload.CopyTo(frame.AsSpan(42));
        var udp = frame.AsSpan(34, 8 + payload.Length);
        udp[6] = 0;
        udp[7] = 0;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(udp[6..], UdpHeader.ComputeChecksum(src, dst, udp));

        a.Inject(0, frame);
        a.Node.Poll();
        var outer = a.Drain(a.Underlay);
        if (outer.Count != 1) return false;
        var wire = outer[0];
        var outerIp = wire.AsSpan(14);
        if (Ipv4Header.Source(outerIp) != publicA.Value || Ipv4Header.Destination(outerIp) != publicB.Value) return false;
        if (UdpHeader.DestinationPort(outerIp[20..]) != vxlanPort || VxlanHeader.Vni(outerIp[28..]) != vni) return false;

        b.InjectUnderlay(wire);
        b.Node.Poll();
        var delivered = b.Drain(1);
        if (delivered.Count != 1 || b.Node.Counters[Counter.Decapsulated] != 1) return false;
        var got = delivered[0].AsSpan(14);
        var sent = frame.AsSpan(14, 20 + 8 + payload.Length);
        return got.Length >= sent.Length
            && Ipv4Header.Ttl(got) == ttl - 2
            && Ipv4Header.HeaderChecksumValid(got, 20)
            && got[..8].SequenceEqual(sent[..8])
            && got[9] == sent[9]
            && got[12..sent.Length].SequenceEqual(sent[12..])
            && Ethernet.Destination(delivered[0]) == b.PodMacAddress(1)
            && a.Pool.InUse == 0 && b.Pool.InUse == 0;
    }
}
