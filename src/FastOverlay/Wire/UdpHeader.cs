using System.Buffers.Binary;

namespace FastOverlay.Wire;

/*
 * UDP header (RFC 768):
 * +----------------+----------------+----------------+----------------+
 * |  source port   |  dest. port    |     length     |    checksum    |
 */
public static class UdpHeader
{
    public const int Length = 8;

    public static ushort SourcePort(ReadOnlySpan<byte> udp) => BinaryPrimitives.ReadUInt16BigEndian(udp);
    public static ushort DestinationPort(ReadOnlySpan<byte> udp) => BinaryPrimitives.ReadUInt16BigEndian(udp[2..]);
    public static ushort DatagramLength(ReadOnlySpan<byte> udp) => BinaryPrimitives.ReadUInt16BigEndian(udp[4..]);
    public static ushort Checksum(ReadOnlySpan<byte> udp) => BinaryPrimitives.ReadUInt16BigEndian(udp[6..]);

    /// <summary>The UDP length must cover the header and fit the IP payload (RFC 768; RFC 1122 s4.1.3.4).</summary>
    public static DropReason Validate(ReadOnlySpan<byte> ipPayload)
    {
        if (ipPayload.Length < Length) return DropReason.UdpMalformed;
        var length = DatagramLength(ipPayload);
        return length < Length || length > ipPayload.Length ? DropReason.UdpMalformed : DropReason.None;
    }

    public static void Write(Span<byte> udp, ushort sourcePort, ushort destinationPort, ushort length, ushort checksum = 0)
    {
        BinaryPrimitives.WriteUInt16BigEndian(udp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], length);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], checksum);
    }

    /// <summary>
    /// The checksum over the pseudo-header and the datagram. A computed 0 is sent as 0xFFFF, because 0 means
    /// "no checksum" over IPv4 (RFC 768).
    /// </summary>
    public static ushort ComputeChecksum(uint source, uint destination, ReadOnlySpan<byte> datagram)
    {
        var sum = InternetChecksum.PseudoHeader(source, destination, Ipv4Header.ProtocolUdp, (ushort)datagram.Length);
        var checksum = InternetChecksum.Finish(InternetChecksum.Add(datagram, sum));
        return checksum == 0 ? (ushort)0xFFFF : checksum;
    }

    /// <summary>True when the checksum is absent (0, allowed over IPv4) or correct.</summary>
    public static bool ChecksumAcceptable(uint source, uint destination, ReadOnlySpan<byte> datagram)
    {
        if (Checksum(datagram) == 0) return true;
        var sum = InternetChecksum.PseudoHeader(source, destination, Ipv4Header.ProtocolUdp, (ushort)datagram.Length);
        return InternetChecksum.FoldToNetworkOrder(InternetChecksum.Add(datagram, sum)) == 0xFFFF;
    }
}
