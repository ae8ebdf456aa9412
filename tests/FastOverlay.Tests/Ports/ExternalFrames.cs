using System.Buffers.Binary;
using FastOverlay.Offload;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Ports;

/// <summary>Ethernet + IPv4 + TCP/UDP frames from outside the cluster, with valid checksums, for the external port's tests.</summary>
internal static class ExternalFrames
{
    public static readonly MacAddress ClientMac = MacAddress.Parse("02:00:00:00:0c:01");

    /// <param name="flagsFragment">The IPv4 flags and fragment offset field (0x2000 = MF, low 13 bits = offset in 8-byte units).</param>
    /// <param name="optionWords">32-bit words of IPv4 options (NOPs), so the L4 header moves.</param>
    public static byte[] Build(MacAddress to, Ipv4Address source, Ipv4Address destination, byte protocol, ushort sourcePort, ushort destinationPort,
        int payload = 8, ushort flagsFragment = 0, int optionWords = 0, ushort etherType = Ethernet.TypeIpv4, byte tcpFlags = 0x02)
    {
        var ihl = Ipv4Header.MinLength + optionWords * 4;
        var l4Length = (protocol == Ipv4Header.ProtocolTcp ? 20 : 8) + payload;
        var frame = new byte[Ethernet.HeaderLength + ihl + l4Length];
        Ethernet.Write(frame, to, ClientMac, etherType);
        var ip = frame.AsSpan(Ethernet.HeaderLength);
        Ipv4Header.Write(ip, (ushort)(ihl + l4Length), 0x1234, flagsFragment, 64, protocol, source.Value, destination.Value);
        if (optionWords > 0)
        {
            ip[0] = (byte)(0x40 | ihl / 4);
            ip.Slice(Ipv4Header.MinLength, optionWords * 4).Fill(1);
            Ipv4Header.UpdateChecksum(ip);
        }
        var l4 = ip[ihl..];
        BinaryPrimitives.WriteUInt16BigEndian(l4, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(l4[2..], destinationPort);
        for (var i = l4Length - payload; i < l4Length; i++) l4[i] = (byte)i;
        if (protocol == Ipv4Header.ProtocolTcp)
        {
            BinaryPrimitives.WriteUInt32BigEndian(l4[4..], 1000);
            l4[12] = 5 << 4;
            l4[13] = tcpFlags;
            BinaryPrimitives.WriteUInt16BigEndian(l4[14..], 64240);
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(l4[4..], (ushort)l4Length);
        }
        if ((flagsFragment & (Ipv4Header.FragmentOffsetMask | Ipv4Header.FlagMoreFragments)) == 0 && protocol is Ipv4Header.ProtocolTcp or Ipv4Header.ProtocolUdp)
        {
            // Complete finishes a partial checksum: the field must hold the pseudo-header sum first.
            L4Checksum.WritePartial(l4, protocol, L4Checksum.PseudoHeader(source.Value, destination.Value, protocol, l4Length));
            L4Checksum.Complete(frame);
        }
        return frame;
    }

    public static byte[] Tcp(Ipv4Address destination, ushort port, Ipv4Address? source = null, MacAddress? to = null) =>
        Build(to ?? MacAddress.Broadcast, source ?? Ipv4Address.Parse("198.51.100.7"), destination, Ipv4Header.ProtocolTcp, 40000, port);

    public static byte[] Udp(Ipv4Address destination, ushort port, Ipv4Address? source = null, MacAddress? to = null, int payload = 8) =>
        Build(to ?? MacAddress.Broadcast, source ?? Ipv4Address.Parse("198.51.100.7"), destination, Ipv4Header.ProtocolUdp, 40000, port, payload);
}
