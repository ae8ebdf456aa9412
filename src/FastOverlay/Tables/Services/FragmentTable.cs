using System.Numerics;
using System.Runtime.CompilerServices;

namespace FastOverlay.Tables.Services;

/// <summary>
/// The L4 ports of IPv4 datagrams that arrived in fragments, from their first fragment, so that the later ones
/// (which carry no L4 header, RFC 791) can be matched to the same Service flow and translated without
/// reassembly. This is Cilium's approach (its IPv4 fragments map) rather than netfilter's, which reassembles
/// before NAT and fragments again. A later fragment whose first one was not seen is dropped and counted, as
/// Cilium does.
///
/// One table per forwarding worker, read and written only by it: the kernel hashes every fragment of a datagram
/// to one socket (its flow dissector leaves the ports out of any fragment's hash), so all of them reach one
/// worker, on pod ports (PACKET_FANOUT_HASH) and on the underlay (the sender's outer source port comes from the
/// same hash; <see cref="Pipeline.Stages.VxlanEncap.FlowHash"/> follows it). Direct-mapped and bounded: a new
/// datagram takes its slot from whatever was there, so the table never fills and never allocates.
/// </summary>
public sealed class FragmentTable
{
    private struct Entry
    {
        public uint Source, Destination;
        public ushort Id;
        public byte Protocol;
        public ushort SourcePort, DestinationPort;
        /// <summary>Node-clock ticks after which the entry no longer matches; 0: empty.</summary>
        public long Expires;
    }

    private readonly Entry[] _entries;
    private readonly int _mask;
    private readonly long _lifetimeTicks;

    /// <param name="capacity">Slots, rounded up to a power of two.</param>
    /// <param name="lifetimeTicks">How long after its first fragment a datagram's later fragments are matched.</param>
    public FragmentTable(int capacity, long lifetimeTicks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(lifetimeTicks, 1);
        var size = (int)BitOperations.RoundUpToPowerOf2((uint)capacity);
        _entries = new Entry[size];
        _mask = size - 1;
        _lifetimeTicks = lifetimeTicks;
    }

    public int Capacity => _entries.Length;

    /// <summary>Records the ports of a datagram from its first fragment (a newer datagram on the same slot replaces it).</summary>
    public void Record(uint source, uint destination, ushort id, byte protocol, ushort sourcePort, ushort destinationPort, long now)
    {
        ref var e = ref _entries[Slot(source, destination, id, protocol)];
        e.Source = source;
        e.Destination = destination;
        e.Id = id;
        e.Protocol = protocol;
        e.SourcePort = sourcePort;
        e.DestinationPort = destinationPort;
        e.Expires = now + _lifetimeTicks;
    }

    /// <summary>The ports of the datagram a later fragment belongs to, if its first fragment was recorded and has not expired.</summary>
    public bool TryFind(uint source, uint destination, ushort id, byte protocol, long now, out ushort sourcePort, out ushort destinationPort)
    {
        ref readonly var e = ref _entries[Slot(source, destination, id, protocol)];
        if (e.Expires != 0 && now < e.Expires && e.Source == source && e.Destination == destination && e.Id == id && e.Protocol == protocol)
        {
            sourcePort = e.SourcePort;
            destinationPort = e.DestinationPort;
            return true;
        }
        sourcePort = destinationPort = 0;
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Slot(uint source, uint destination, ushort id, byte protocol)
    {
        var h = BitOperations.Crc32C(0x2545F491u, ((ulong)source << 32) | destination);
        h = BitOperations.Crc32C(h, id | (uint)protocol << 16);
        return (int)h & _mask;
    }
}
