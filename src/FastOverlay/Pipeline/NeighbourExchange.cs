using FastOverlay.Ports;

namespace FastOverlay.Pipeline;

/// <summary>A neighbour one worker learned from ARP: what the others need to forward to it.</summary>
public readonly record struct NeighbourUpdate(uint Address, ulong Mac, int Port);

/// <summary>
/// Hands neighbours learned by one forwarding worker to the others. Each worker owns its ARP cache (one writer,
/// no locks); but PACKET_FANOUT_HASH gives a pod's ARP replies to one worker only, while any worker may have
/// asked. So a worker that learns a binding posts it to every other worker through a single-producer
/// single-consumer ring (one per ordered pair, VPP's per-thread frame queues), and each worker applies what it
/// received at the start of its next poll, releasing packets it had parked for that address. A full ring loses
/// the update, never blocks: that worker's own ARP retry resolves it.
/// </summary>
public sealed class NeighbourExchange
{
    private readonly SpscRing<NeighbourUpdate>[][] _rings;

    public NeighbourExchange(int workers, int capacity = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        Workers = workers;
        _rings = new SpscRing<NeighbourUpdate>[workers][];
        for (var from = 0; from < workers; from++)
        {
            _rings[from] = new SpscRing<NeighbourUpdate>[workers];
            for (var to = 0; to < workers; to++)
            {
                if (to != from) _rings[from][to] = new SpscRing<NeighbourUpdate>(capacity);
            }
        }
    }

    public int Workers { get; }

    /// <summary>On worker <paramref name="from"/>'s thread.</summary>
    public void Publish(int from, in NeighbourUpdate update)
    {
        var rings = _rings[from];
        for (var to = 0; to < rings.Length; to++)
        {
            if (to != from) rings[to].TryEnqueue(update);
        }
    }

    /// <summary>On worker <paramref name="to"/>'s thread: what the others learned since its last call.</summary>
    public int Drain(int to, Span<NeighbourUpdate> into)
    {
        var n = 0;
        for (var from = 0; from < _rings.Length && n < into.Length; from++)
        {
            if (from != to) n += _rings[from][to].Dequeue(into[n..]);
        }
        return n;
    }
}
