using System.Buffers.Binary;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline;

/// <summary>
/// The 50-byte outer header for one peer, written once when the peer is configured: Ethernet, IPv4 (DF, TTL,
/// UDP, local → peer public IP), UDP (destination port), VXLAN (I flag, VNI); followed by the 14-byte inner
/// Ethernet header flannel's kernel path writes (local VTEP MAC → peer VTEP MAC, IPv4). 64 bytes in all, so a
/// packet's whole L2/L3/L4 prefix is two 32-byte vector stores. Per packet only the IPv4 total length and
/// checksum and the UDP source port and length change, VPP's rewrite-string approach.
/// The IPv4 checksum comes from <see cref="IpSumWithoutLength"/>, the template's partial sum, plus the length:
/// re-reading the just-stored header to sum it costs ~8 ns per packet on our build machine because the
/// loads miss store-to-load forwarding (see REFERENCE.md).
/// </summary>
public sealed class EncapTemplate
{
    /// <summary>The outer headers stepped into the headroom.</summary>
    public const int Length = VxlanHeader.OverheadIpv4;
    /// <summary>Outer headers plus the inner Ethernet header.</summary>
    public const int LengthWithInnerEthernet = Length + Ethernet.HeaderLength;
    public const int OffsetIp = Ethernet.HeaderLength;
    public const int OffsetUdp = OffsetIp + Ipv4Header.MinLength;
    public const int OffsetVxlan = OffsetUdp + UdpHeader.Length;

    /// <summary>The 50 outer header bytes and the 14-byte inner Ethernet header.</summary>
    public readonly byte[] Bytes = new byte[LengthWithInnerEthernet];
    public readonly ulong IpSumWithoutLength;
    public readonly Peer Peer;
    /// <summary>Traffic to and from this peer (carried over from the previous state's template for the same subnet).</summary>
    public readonly PeerCounters Counters;

    public EncapTemplate(NodeOptions node, Peer peer, PeerCounters? counters = null)
    {
        Peer = peer;
        Counters = counters ?? new PeerCounters();
        var h = Bytes.AsSpan();
        Ethernet.Write(h, peer.UnderlayMac, node.UnderlayMac, Ethernet.TypeIpv4);
        // Total length and checksum are zero here and filled per packet. The ID is 0: with DF set the datagram
        // can never be reassembled, so RFC 6864 s4.1 lets a source leave it unset.
        Ipv4Header.Write(h[OffsetIp..], 0, 0, Ipv4Header.FlagDontFragment, node.OuterTtl, Ipv4Header.ProtocolUdp, node.PublicIp.Value, peer.PublicIp.Value);
        h[OffsetIp + Ipv4Header.OffsetChecksum] = 0;
        h[OffsetIp + Ipv4Header.OffsetChecksum + 1] = 0;
        IpSumWithoutLength = InternetChecksum.Add(h.Slice(OffsetIp, Ipv4Header.MinLength));
        UdpHeader.Write(h[OffsetUdp..], 0, node.VxlanPort, 0);
        VxlanHeader.Write(h[OffsetVxlan..], node.Vni);
        Ethernet.Write(h[Length..], peer.VtepMac, node.VtepMac, Ethernet.TypeIpv4);
    }

    /// <summary>The outer IPv4 checksum for a given total length, from the template sum.</summary>
    public ushort IpChecksum(ushort totalLength) =>
        InternetChecksum.Finish(IpSumWithoutLength + (BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(totalLength) : totalLength));
}
