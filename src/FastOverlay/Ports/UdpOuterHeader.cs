using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using FastOverlay.Wire;

namespace FastOverlay.Ports;

/// <summary>
/// The outer Ethernet/IPv4/UDP header a raw socket would have shown, rebuilt from what recvmmsg reports, so
/// VxlanDecap checks a datagram from the UDP socket as it checks a raw frame: source address and port from the
/// sockaddr, destination our bound address and port, DF set, a valid IPv4 checksum, UDP checksum 0 (the kernel
/// already verified the real one). Shared by the plain and the UDP GRO receive paths of <see cref="UdpUnderlayPort"/>.
/// </summary>
internal sealed class UdpOuterHeader
{
    private const int OuterTtl = 64;

    private readonly uint _localIp;
    private readonly ushort _localPort;
    private readonly MacAddress _localMac;
    private readonly ulong _ipSumConstant;

    public UdpOuterHeader(uint localIp, ushort localPort, MacAddress localMac)
    {
        _localIp = localIp;
        _localPort = localPort;
        _localMac = localMac;
        // The IPv4 header's words that never change, summed once (version/IHL/TOS, flags/DF, TTL/protocol,
        // destination): per packet only the length and the source are added.
        Span<byte> ip = stackalloc byte[Ipv4Header.MinLength];
        Ipv4Header.Write(ip, 0, 0, Ipv4Header.FlagDontFragment, OuterTtl, Ipv4Header.ProtocolUdp, 0, _localIp);
        ip[Ipv4Header.OffsetChecksum] = 0;
        ip[Ipv4Header.OffsetChecksum + 1] = 0;
        _ipSumConstant = InternetChecksum.Add(ip);
    }

    /// <summary>Writes the header in front of a datagram already at <see cref="UdpUnderlayPort.PayloadOffset"/>; <paramref name="length"/> is the whole frame's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write(Span<byte> frame, uint source, ushort sourcePort, int length)
    {
        Ethernet.Write(frame, _localMac, MacAddress.Zero, Ethernet.TypeIpv4);
        var ip = frame[Ethernet.HeaderLength..];
        var totalLength = (ushort)(length - Ethernet.HeaderLength);
        Ipv4Header.Write(ip, totalLength, 0, Ipv4Header.FlagDontFragment, OuterTtl, Ipv4Header.ProtocolUdp, source, _localIp);
        // Checksum from the constant part's sum plus the two fields that vary (RFC 1071 sums commute).
        var sum = _ipSumConstant + Swap(totalLength) + Swap((ushort)(source >> 16)) + Swap((ushort)source);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Header.OffsetChecksum..], InternetChecksum.Finish(sum));
        UdpHeader.Write(ip[Ipv4Header.MinLength..], sourcePort, _localPort, (ushort)(totalLength - Ipv4Header.MinLength));
    }

    /// <summary>A big-endian field as the native-order checksum accumulator sees it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Swap(ushort value) => BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(value) : value;
}
