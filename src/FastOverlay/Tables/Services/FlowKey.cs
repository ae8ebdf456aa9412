using System.Runtime.CompilerServices;
using FastOverlay.Wire;

namespace FastOverlay.Tables.Services;

/// <summary>
/// A connection's 5-tuple as seen in one direction, addresses host-order (see <see cref="Ipv4Address"/>).
/// For ICMP echo the identifier goes in both ports, as Cilium's CT does, so a request and its reply reverse.
/// </summary>
public readonly struct FlowKey : IEquatable<FlowKey>
{
    public FlowKey(uint source, uint destination, ushort sourcePort, ushort destinationPort, byte protocol)
    {
        Source = source;
        Destination = destination;
        SourcePort = sourcePort;
        DestinationPort = destinationPort;
        Protocol = protocol;
    }

    public uint Source { get; }
    public uint Destination { get; }
    public ushort SourcePort { get; }
    public ushort DestinationPort { get; }
    public byte Protocol { get; }

    /// <summary>The same flow seen from the other end.</summary>
    public FlowKey Reverse() => new(Destination, Source, DestinationPort, SourcePort, Protocol);

    /// <summary>Both addresses in one word, for hashing.</summary>
    internal ulong Addresses
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ((ulong)Source << 32) | Destination;
    }

    /// <summary>Ports and protocol in one word, for hashing.</summary>
    internal ulong PortsAndProtocol
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ((ulong)SourcePort << 24) | ((ulong)DestinationPort << 8) | Protocol;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Equals(FlowKey other) =>
        Addresses == other.Addresses && PortsAndProtocol == other.PortsAndProtocol;

    public override bool Equals(object? obj) => obj is FlowKey other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Addresses, PortsAndProtocol);

    public static bool operator ==(FlowKey left, FlowKey right) => left.Equals(right);

    public static bool operator !=(FlowKey left, FlowKey right) => !left.Equals(right);

    public override string ToString() =>
        $"{Ipv4Address.Format(Source)}:{SourcePort} -> {Ipv4Address.Format(Destination)}:{DestinationPort} proto {Protocol}";
}
