using FastOverlay.Wire;

namespace FastOverlay.Offload;

/// <summary>
/// A kernel VXLAN peer hands its pods' TSO frames to the underlay as one UDP-tunnel GSO skb (SKB_GSO_UDP_TUNNEL),
/// for the NIC to cut (tx-udp_tnl-segmentation). Over a veth underlay (kind, k3d, containerlab, nested VMs) no NIC
/// ever does, and udp_unexpected_gso() lets such an skb reach a UDP socket whole: one "datagram" of up to 64 KiB,
/// a VXLAN header and one inner super-frame whose TCP checksum is partial. The kernel's own vxlan_rcv takes it as
/// it is; here it is cut into inner segments no bigger than the inner MTU, each behind a copy of the VXLAN header,
/// so decap sees ordinary datagrams (and completes the partial checksums it finds).
/// </summary>
public static class VxlanSuperDatagram
{
    private const int InnerL3 = VxlanHeader.Length + Ethernet.HeaderLength;

    /// <summary>
    /// True when <paramref name="payload"/> (a UDP payload: VXLAN header first) is one VXLAN frame whose inner
    /// frame is longer than a datagram of <paramref name="datagramSize"/> can be: its inner IPv4 total length spans
    /// the whole payload. A UDP GRO batch of ordinary datagrams never looks like this: its first inner frame ends at
    /// the first segment.
    /// </summary>
    public static bool IsSuperFrame(ReadOnlySpan<byte> payload, int datagramSize)
    {
        if (payload.Length <= datagramSize || payload.Length < InnerL3 + Ipv4Header.MinLength) return false;
        if (payload[InnerL3 - 2] != 0x08 || payload[InnerL3 - 1] != 0x00 || payload[InnerL3] >> 4 != 4) return false;
        return InnerL3 + Ipv4Header.TotalLength(payload[InnerL3..]) == payload.Length;
    }

    /// <summary>
    /// Lays out the inner super-frame's segments: TCP cut at the largest MSS that keeps each inner packet within
    /// <paramref name="innerMtu"/> (any MSS the receiver accepts is valid TCP; the peer's own gso_size is not
    /// always known), UDP (USO) likewise. Refuses what it cannot cut with a reason.
    /// </summary>
    public static DropReason Plan(ReadOnlySpan<byte> inner, int innerMtu, int maxSegmentLength, out GsoLayout layout)
    {
        layout = default;
        if (inner.Length < Ethernet.HeaderLength + Ipv4Header.MinLength) return DropReason.GsoMalformed;
        var ip = inner[Ethernet.HeaderLength..];
        var ihl = Ipv4Header.HeaderLength(ip);
        if (ihl < Ipv4Header.MinLength || ip.Length < ihl + 8) return DropReason.GsoMalformed;
        var protocol = Ipv4Header.Protocol(ip);
        byte kind;
        int l4Header;
        if (protocol == Ipv4Header.ProtocolTcp)
        {
            if (ip.Length < ihl + 20) return DropReason.GsoMalformed;
            kind = VirtioNetHeader.GsoTcpV4;
            l4Header = (ip[ihl + 12] >> 4) * 4;
        }
        else if (protocol == Ipv4Header.ProtocolUdp)
        {
            kind = VirtioNetHeader.GsoUdpL4;
            l4Header = UdpHeader.Length;
        }
        else
        {
            return DropReason.GsoUnsupported;
        }
        var segment = innerMtu - ihl - l4Header;
        if (segment <= 0) return DropReason.GsoMalformed;
        var header = new VirtioNetHeader { GsoType = kind, GsoSize = (ushort)Math.Min(segment, ushort.MaxValue) };
        return GsoSegmenter.Plan(inner, header, maxSegmentLength, out layout);
    }
}
