using System.Buffers.Binary;
using FastOverlay.Wire;

namespace FastOverlay.Benchmarks;

/// <summary>The frames every benchmark uses, built with the wire writers (and checked against scapy in the tests).</summary>
internal static class Frames
{
    public static readonly MacAddress PodMac = MacAddress.Parse("0a:58:0a:f4:01:02");
    public static readonly MacAddress GatewayMac = MacAddress.Parse("0a:58:0a:f4:01:01");
    public static readonly MacAddress VtepA = MacAddress.Parse("0e:fd:00:00:01:00");
    public static readonly MacAddress VtepB = MacAddress.Parse("0e:fd:00:00:02:00");
    public static readonly uint PodA = Ipv4Address.Parse("10.244.1.2").Value;
    public static readonly uint PodB = Ipv4Address.Parse("10.244.2.3").Value;
    public static readonly uint NodeA = Ipv4Address.Parse("172.31.77.1").Value;
    public static readonly uint NodeB = Ipv4Address.Parse("172.31.77.2").Value;

    /// <summary>A 64-byte Ethernet/IPv4/UDP frame (22 bytes of payload).</summary>
    public static byte[] Udp(int size = 64, uint src = 0, uint dst = 0)
    {
        src = src == 0 ? PodA : src;
        dst = dst == 0 ? PodB : dst;
        var frame = new byte[size];
        Ethernet.Write(frame, GatewayMac, PodMac, Ethernet.TypeIpv4);
        Ipv4Header.Write(frame.AsSpan(14), (ushort)(size - 14), 1, Ipv4Header.FlagDontFragment, 64, Ipv4Header.ProtocolUdp, src, dst);
        var udp = frame.AsSpan(34);
        udp[8..].Fill(0x78);
        UdpHeader.Write(udp, 40000, 5201, (ushort)udp.Length);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], UdpHeader.ComputeChecksum(src, dst, udp));
        return frame;
    }

    /// <summary>A 114-byte VXLAN frame: 50 bytes of outer headers around the 64-byte inner frame.</summary>
    public static byte[] Vxlan(int innerSize = 64)
    {
        var inner = Udp(innerSize);
        MacAddress.Parse("0e:fd:00:00:02:00").Write(inner);
        MacAddress.Parse("0e:fd:00:00:01:00").Write(inner.AsSpan(6));
        var frame = new byte[50 + inner.Length];
        var span = frame.AsSpan();
        Ethernet.Write(span, MacAddress.Parse("52:54:00:00:00:02"), MacAddress.Parse("52:54:00:00:00:01"), Ethernet.TypeIpv4);
        Ipv4Header.Write(span[14..], (ushort)(frame.Length - 14), 0, Ipv4Header.FlagDontFragment, 64, Ipv4Header.ProtocolUdp, NodeA, NodeB);
        UdpHeader.Write(span[34..], 51000, VxlanHeader.LinuxPort, (ushort)(frame.Length - 34));
        VxlanHeader.Write(span[42..], 1);
        inner.CopyTo(span[50..]);
        return frame;
    }
}
