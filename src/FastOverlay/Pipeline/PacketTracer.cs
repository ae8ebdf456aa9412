namespace FastOverlay.Pipeline;

public enum TraceEvent : byte
{
    Receive,
    Transmit,
    Drop,
    ArpLearned,
    ArpAnswered,
    ArpRequestSent,
    ArpParked,
    ArpReleased,
    RouteLookup,
    NeighborResolved,
    TtlDecremented,
    Encapsulated,
    Decapsulated,
    IcmpEchoReply,
    IcmpError,
    EndpointSent,
    EndpointReceived,
}

/// <summary>
/// One step a traced packet took. The meaning of A, B, C and Mac depends on the event (addresses, route value,
/// ports, VNI); they are raw numbers so recording costs no allocation and no formatting.
/// </summary>
public readonly record struct TraceRecord(long Sequence, string Node, TraceEvent Event, int Packet, int Port, uint A, uint B, uint C, ulong Mac, DropReason Reason);

/// <summary>
/// VPP's packet trace: when a forwarder has a tracer, every stage records what it did to each packet into a
/// preallocated array. Off by default; the check is one null test per stage per burst.
/// Not thread-safe: give each thread its own tracer, or share one only among forwarders polled by one thread.
/// </summary>
public sealed class PacketTracer(int capacity = 4096)
{
    private readonly TraceRecord[] _records = new TraceRecord[capacity];
    private int _count;
    private long _sequence;

    public ReadOnlySpan<TraceRecord> Records => _records.AsSpan(0, _count);
    public bool Overflowed { get; private set; }

    public void Record(string node, TraceEvent evt, int packet, int port = -1, uint a = 0, uint b = 0, uint c = 0, ulong mac = 0, DropReason reason = DropReason.None)
    {
        if (_count == _records.Length)
        {
            Overflowed = true;
            return;
        }
        _records[_count++] = new TraceRecord(++_sequence, node, evt, packet, port, a, b, c, mac, reason);
    }

    public void Clear()
    {
        _count = 0;
        Overflowed = false;
    }
}
