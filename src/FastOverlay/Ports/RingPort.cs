namespace FastOverlay.Ports;

/// <summary>
/// One end of an in-memory link: what it transmits the other end receives. Frames stay in their buffers and only
/// handles move, so both ends must use the same <see cref="FastOverlay.Pipeline.PacketPool"/> (the in-memory
/// cluster, tests, benchmarks and fuzz targets all do). Each direction is an <see cref="SpscRing{T}"/>, so the two
/// ends may run on different threads.
/// </summary>
public sealed class RingPort : IPacketPort
{
    private readonly SpscRing<int> _rx;
    private readonly SpscRing<int> _tx;

    private RingPort(string name, SpscRing<int> rx, SpscRing<int> tx)
    {
        Name = name;
        _rx = rx;
        _tx = tx;
    }

    public string Name { get; }

    /// <summary>Frames waiting to be received at this end.</summary>
    public int Pending => _rx.Count;

    public static (RingPort A, RingPort B) CreatePair(string nameA, string nameB, int capacity = 1024)
    {
        var aToB = new SpscRing<int>(capacity);
        var bToA = new SpscRing<int>(capacity);
        return (new RingPort(nameA, bToA, aToB), new RingPort(nameB, aToB, bToA));
    }

    public int Receive(Span<int> handles) => _rx.Dequeue(handles);

    public int Transmit(ReadOnlySpan<int> handles) => _tx.Enqueue(handles);
}
