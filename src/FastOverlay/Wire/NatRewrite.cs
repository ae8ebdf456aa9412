using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace FastOverlay.Wire;

/// <summary>
/// Address and port translation of an IPv4 TCP/UDP packet in place, with every checksum patched incrementally
/// (RFC 1624 eqn. 3) rather than recomputed: the IPv4 header checksum for the address, the TCP/UDP checksum for the
/// address (pseudo-header, RFC 793 s3.1 / RFC 768) and the port.
///
/// A CHECKSUM_PARTIAL packet (a pod's offloaded send) carries in its L4 field only the pseudo-header sum, not
/// inverted, and the stack or NIC sums the L4 bytes later: the address change applies to that sum as a sum, and
/// the port change not at all (the new port is summed when the checksum is finished), as the kernel's
/// inet_proto_csum_replace4/2 do for CHECKSUM_PARTIAL skbs. A UDP checksum of 0 means "none" (RFC 768) and stays 0.
/// </summary>
public static class NatRewrite
{
    public const int TcpFlagsOffset = 13;
    public const byte TcpFin = 0x01;
    public const byte TcpSyn = 0x02;
    public const byte TcpRst = 0x04;
    public const byte TcpAck = 0x10;

    /// <summary>Rewrites the source address and port. <paramref name="ip"/> starts at the IPv4 header.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Source(Span<byte> ip, uint address, ushort port, bool partial) =>
        Rewrite(ip, Ipv4Header.OffsetSource, 0, address, port, partial);

    /// <summary>Rewrites the destination address and port. <paramref name="ip"/> starts at the IPv4 header.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Destination(Span<byte> ip, uint address, ushort port, bool partial) =>
        Rewrite(ip, Ipv4Header.OffsetDestination, 2, address, port, partial);

    private static void Rewrite(Span<byte> ip, int addressOffset, int portOffset, uint address, ushort port, bool partial)
    {
        var oldAddress = BinaryPrimitives.ReadUInt32BigEndian(ip[addressOffset..]);
        var headerLength = Ipv4Header.HeaderLength(ip);
        var protocol = ip[Ipv4Header.OffsetProtocol];
        if (Ipv4Header.HasL4Header(ip) && protocol is Ipv4Header.ProtocolTcp or Ipv4Header.ProtocolUdp)
        {
            var l4 = ip[headerLength..];
            var fieldOffset = protocol == Ipv4Header.ProtocolTcp ? 16 : 6;
            var oldPort = BinaryPrimitives.ReadUInt16BigEndian(l4[portOffset..]);
            var checksum = BinaryPrimitives.ReadUInt16BigEndian(l4[fieldOffset..]);
            if (protocol == Ipv4Header.ProtocolUdp && checksum == 0 && !partial)
            {
                // No checksum to keep (RFC 768).
            }
            else if (partial)
            {
                // The field is a sum S; Update works on ~S, so invert in and out.
                checksum = (ushort)~InternetChecksum.Update((ushort)~checksum, oldAddress, address);
                BinaryPrimitives.WriteUInt16BigEndian(l4[fieldOffset..], checksum);
            }
            else
            {
                checksum = InternetChecksum.Update(checksum, oldAddress, address);
                checksum = InternetChecksum.Update(checksum, oldPort, port);
                // A UDP checksum that comes out 0 is sent as 0xFFFF (RFC 768); Update's eqn. 3 never yields 0 from
                // a nonzero sum, but keep the rule explicit.
                if (protocol == Ipv4Header.ProtocolUdp && checksum == 0) checksum = 0xFFFF;
                BinaryPrimitives.WriteUInt16BigEndian(l4[fieldOffset..], checksum);
            }
            BinaryPrimitives.WriteUInt16BigEndian(l4[portOffset..], port);
        }
        BinaryPrimitives.WriteUInt32BigEndian(ip[addressOffset..], address);
        var ipChecksum = BinaryPrimitives.ReadUInt16BigEndian(ip[Ipv4Header.OffsetChecksum..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Header.OffsetChecksum..], InternetChecksum.Update(ipChecksum, oldAddress, address));
    }

    /// <summary>
    /// Rewrites one address of an IPv4 header that is quoted inside an ICMP error (RFC 792): only its header
    /// checksum is patched; the caller recomputes the ICMP checksum over the whole message afterwards.
    /// </summary>
    public static void QuotedAddress(Span<byte> ip, int addressOffset, uint address)
    {
        var old = BinaryPrimitives.ReadUInt32BigEndian(ip[addressOffset..]);
        BinaryPrimitives.WriteUInt32BigEndian(ip[addressOffset..], address);
        var checksum = BinaryPrimitives.ReadUInt16BigEndian(ip[Ipv4Header.OffsetChecksum..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Header.OffsetChecksum..], InternetChecksum.Update(checksum, old, address));
    }
}
