using System.Runtime.CompilerServices;
using FastOverlay.Wire;

namespace FastOverlay.Tables.Services;

/// <summary>
/// A connection's 5-tuple as seen in one direction, addresses host-order (see <see cref="Ipv4Address"/>).
/// For ICMP echo the identifier goes in both ports, as Cilium's CT does, so a request and its reply reverse.
/// Stored as two words (addresses; ports and protocol) with no padding, so equality is two compares and a key
/// can be compared where it lies in the conntrack table.
/// </summary>
public readonly struct FlowKey : IEquatable<FlowKey>
{
    private readonly ulong _addresses;         // source << 32 | destination
    private readonly ulong _portsAndProtocol;  // sourcePort << 24 | destinationPort << 8 | protocol

    public FlowKey(uint source, uint destination, ushort sourcePort, ushort destinationPort, byte protocol)
    {
        _addresses = ((ulong)source << 32) | destination;
        _portsAndProtocol = ((ulong)sourcePort << 24) | ((ulong)destinationPort << 8) | protocol;
    }

    public uint Source => (uint)(_addresses >> 32);
    public uint Destination => (uint)_addresses;
    public ushort SourcePort => (ushort)(_portsAndProtocol >> 24);
    public ushort DestinationPort => (ushort)(_portsAndProtocol >> 8);
    public byte Protocol => (byte)_portsAndProtocol;

    /// <summary>The same flow seen from the other end.</summary>
    public FlowKey Reverse() => new(Destination, Source, DestinationPort, SourcePort, Protocol);

    /// <summary>Both addresses in one word, for hashing.</summary>
    internal ulong Addresses
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _addresses;
    }

    /// <summary>Ports and protocol in one word, for hashing.</summary>
    internal ulong PortsAndProtocol
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _portsAndProtocol;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Equals(FlowKey other) => _addresses == other._addresses && _portsAndProtocol == other._portsAndProtocol;

    public override bool Equals(object? obj) => obj is FlowKey other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(_addresses, _portsAndProtocol);

    public static bool operator ==(FlowKey left, FlowKey right) => left.Equals(right);

    public static bool operator !=(FlowKey left, FlowKey right) => !left.Equals(right);

    public override string ToString() =>
        $"{Ipv4Address.Format(Source)}:{SourcePort} -> {Ipv4Address.Format(Destination)}:{DestinationPort} proto {Protocol}";
}
