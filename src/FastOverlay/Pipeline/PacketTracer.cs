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
    /// <summary>A service flow was created: A = backend IP, B = service address, C = backend port.</summary>
    ServiceFlowCreated,
    /// <summary>Translated toward a backend: A = service address, B = backend, C = service port &lt;&lt; 16 | backend port.</summary>
    ServiceDnat,
    /// <summary>A reply translated back: A = backend, B = service address, C = backend port &lt;&lt; 16 | service port.</summary>
    ServiceReverseNat,
}

/// <summary>
/// One step a traced packet took. The meaning of A, B, C and Mac depends on the event (addresses, route value,
/// ports, VNI); they are raw numbers so recording costs no formatting. Receive, transmit and endpoint events also
/// keep a copy of the frame (FrameOffset/FrameLength into <see cref="PacketTracer.FrameBytes"/>), from which the
/// demo prints protocol summaries and writes its capture file.
/// </summary>
public readonly record struct TraceRecord(long Sequence, long Timestamp, string Node, TraceEvent Event, int Packet, int Port, uint A, uint B, uint C, ulong Mac, DropReason Reason, int FrameOffset, int FrameLength);

/// <summary>
/// VPP's packet trace: when a forwarder has a tracer, every stage records what it did to each packet into a
/// preallocated array. Off by default; the check is one null test per stage per burst.
/// Not thread-safe: give each thread its own tracer, or share one only among forwarders polled by one thread.
/// </summary>
public sealed class PacketTracer(int capacity = 4096, int frameBytes = 4 << 20)
{
    private readonly TraceRecord[] _records = new TraceRecord[capacity];
    private readonly byte[] _frames = new byte[frameBytes];
    private int _count;
    private int _frameUsed;
    private long _sequence;

    public ReadOnlySpan<TraceRecord> Records => _records.AsSpan(0, _count);
    public bool Overflowed { get; private set; }

    public ReadOnlySpan<byte> Frame(in TraceRecord record) => _frames.AsSpan(record.FrameOffset, record.FrameLength);

    public void Record(string node, TraceEvent evt, int packet, int port = -1, uint a = 0, uint b = 0, uint c = 0, ulong mac = 0, DropReason reason = DropReason.None) =>
        Add(node, evt, packet, port, a, b, c, mac, reason, 0, 0);

    /// <summary>Records an event together with a copy of the frame as it is at this point.</summary>
    public void RecordFrame(string node, TraceEvent evt, int packet, int port, ReadOnlySpan<byte> frame)
    {
        var offset = _frameUsed;
        var length = Math.Min(frame.Length, _frames.Length - offset);
        frame[..length].CopyTo(_frames.AsSpan(offset));
        _frameUsed += length;
        Add(node, evt, packet, port, (uint)frame.Length, 0, 0, 0, DropReason.None, offset, length);
    }

    private void Add(string node, TraceEvent evt, int packet, int port, uint a, uint b, uint c, ulong mac, DropReason reason, int frameOffset, int frameLength)
    {
        if (_count == _records.Length)
        {
            Overflowed = true;
            return;
        }
        _records[_count++] = new TraceRecord(++_sequence, System.Diagnostics.Stopwatch.GetTimestamp(), node, evt, packet, port, a, b, c, mac, reason, frameOffset, frameLength);
    }

    public void Clear()
    {
        _count = 0;
        _frameUsed = 0;
        Overflowed = false;
    }
}
