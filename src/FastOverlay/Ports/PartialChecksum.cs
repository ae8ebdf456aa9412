using System.Buffers.Binary;
using FastOverlay.Wire;

namespace FastOverlay.Ports;

/// <summary>
/// Finishes a TCP or UDP checksum the sender left to "hardware". A veth with tx checksumming on (the default)
/// passes CHECKSUM_PARTIAL skbs to its peer unchanged; a packet socket sees them flagged TP_STATUS_CSUMNOTREADY,
/// with the checksum field holding only the pseudo-header sum (the kernel stores ~csum_tcpudp_magic(..., 0)).
/// A frame we send on through a packet socket leaves as CHECKSUM_NONE, so the receiving pod would verify that
/// half-done checksum and drop the segment. Completing it is what the NIC would have done: the one's complement
/// of the sum from the L4 header to the end, field included (csum_start/csum_offset semantics, skbuff.h).
/// </summary>
internal static class PartialChecksum
{
    private const int TcpChecksumOffset = 16;
    private const int UdpChecksumOffset = 6;

    public static void Complete(Span<byte> frame)
    {
        if (Ethernet.Parse(frame, out var etherType, out var l3) != DropReason.None || etherType != Ethernet.TypeIpv4) return;
        var ip = frame[l3..];
        if (ip.Length < Ipv4Header.MinLength || ip[0] >> 4 != 4) return;
        var ihl = Ipv4Header.HeaderLength(ip);
        var total = Math.Min(Ipv4Header.TotalLength(ip), ip.Length);
        if (ihl < Ipv4Header.MinLength || total < ihl || Ipv4Header.IsFragment(ip)) return;
        var protocol = Ipv4Header.Protocol(ip);
        var offset = protocol == Ipv4Header.ProtocolTcp ? TcpChecksumOffset : protocol == Ipv4Header.ProtocolUdp ? UdpChecksumOffset : -1;
        var l4 = ip[ihl..total];
        if (offset < 0 || l4.Length < offset + 2) return;
        var checksum = InternetChecksum.Compute(l4);
        // Over IPv4 a UDP checksum of 0 means "none"; a computed 0 is sent as 0xFFFF (RFC 768).
        if (protocol == Ipv4Header.ProtocolUdp && checksum == 0) checksum = 0xFFFF;
        BinaryPrimitives.WriteUInt16BigEndian(l4[offset..], checksum);
    }
}
