using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace FastOverlay.Wire;

/// <summary>
/// One direction of a NAT session as the data path applies it: the new tuple and the checksum adjustments, computed
/// once from the old and new tuples (RFC 1624 eqn. 3 with the ~m + m' terms summed in advance, as VPP's NAT keeps
/// per session), then applied to each packet with four stores and two additions. Gives the same bytes as
/// <see cref="NatRewrite.Source"/> and <see cref="NatRewrite.Destination"/> in turn (a property holds it to them),
/// with the same rules: a CHECKSUM_PARTIAL L4 field is a pseudo-header sum, which only the addresses change; a UDP
/// checksum of 0 means none (RFC 768) and stays 0, and a computed 0 is sent as 0xFFFF.
/// </summary>
public readonly struct NatTranslation
{
    public uint Source { get; }
    public uint Destination { get; }
    public ushort SourcePort { get; }
    public ushort DestinationPort { get; }
    /// <summary>Σ(~old + new) over the address words: what the IPv4 header checksum and a partial L4 sum change by.</summary>
    private readonly uint _addressSum;
    /// <summary>The address words and both ports: what a complete L4 checksum changes by.</summary>
    private readonly uint _fullSum;

    /// <summary>From a packet's tuple (<paramref name="before"/>: addresses and ports as they arrive) to the new one.</summary>
    public NatTranslation(uint sourceBefore, uint destinationBefore, ushort sourcePortBefore, ushort destinationPortBefore,
        uint source, uint destination, ushort sourcePort, ushort destinationPort)
    {
        Source = source;
        Destination = destination;
        SourcePort = sourcePort;
        DestinationPort = destinationPort;
        _addressSum = Delta32(sourceBefore, source) + Delta32(destinationBefore, destination);
        _fullSum = _addressSum + Delta16(sourcePortBefore, sourcePort) + Delta16(destinationPortBefore, destinationPort);
    }

    /// <summary>
    /// Rewrites an IPv4 TCP or UDP packet in place. <paramref name="ip"/> starts at the IPv4 header; the caller has
    /// checked that the L4 header is there (20 bytes for TCP, 8 for UDP) at <paramref name="headerLength"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Apply(Span<byte> ip, int headerLength, bool partial)
    {
        ApplyAddresses(ip);
        var l4 = ip[headerLength..];
        BinaryPrimitives.WriteUInt16BigEndian(l4, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(l4[2..], DestinationPort);
        var udp = ip[Ipv4Header.OffsetProtocol] == Ipv4Header.ProtocolUdp;
        var field = l4[(udp ? 6 : 16)..];
        var value = BinaryPrimitives.ReadUInt16BigEndian(field);
        if (partial) BinaryPrimitives.WriteUInt16BigEndian(field, (ushort)~Adjust((ushort)~value, _addressSum));
        else if (!udp || value != 0)
        {
            value = Adjust(value, _fullSum);
            BinaryPrimitives.WriteUInt16BigEndian(field, udp && value == 0 ? (ushort)0xFFFF : value);
        }
    }

    /// <summary>
    /// Rewrites only the IPv4 addresses and the header checksum: for a fragment after the first, which carries no L4
    /// header (the first fragment's L4 checksum covers the whole datagram and took the full adjustment).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void ApplyAddresses(Span<byte> ip)
    {
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Header.OffsetSource..], Source);
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Header.OffsetDestination..], Destination);
        var checksum = ip[Ipv4Header.OffsetChecksum..];
        BinaryPrimitives.WriteUInt16BigEndian(checksum, Adjust(BinaryPrimitives.ReadUInt16BigEndian(checksum), _addressSum));
    }

    private static uint Delta32(uint before, uint after) => Delta16((ushort)(before >> 16), (ushort)(after >> 16)) + Delta16((ushort)before, (ushort)after);

    private static uint Delta16(ushort before, ushort after) => (uint)(ushort)~before + after;

    /// <summary>HC' = ~(~HC + Σ), folded twice (the sum of up to six terms fits in 19 bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ushort Adjust(ushort checksum, uint sum)
    {
        var s = (uint)(ushort)~checksum + sum;
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        return (ushort)~s;
    }
}
