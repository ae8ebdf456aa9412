namespace FastOverlay.Pipeline;

public enum Counter
{
    RxPackets,
    TxPackets,
    Encapsulated,
    Decapsulated,
    DeliveredToPods,
    ArpRequestsAnswered,
    ArpRequestsSent,
    ArpLearned,
    ArpParked,
    ArpReleased,
    /// <summary>
    /// ARP replies and announcements the node took in (learned from, or ignored as about no neighbour of ours):
    /// neither sent on nor dropped, so without this counter received = sent + dropped could not be checked.
    /// </summary>
    ArpConsumed,
    IcmpEchoReplies,
    IcmpErrorsSent,
    IcmpErrorsSuppressed,
    /// <summary>Partial TCP/UDP checksums from pods finished in software before encapsulation.</summary>
    ChecksumsCompleted,
    /// <summary>Decapsulated frames whose inner checksum arrived partial (kernel peer on a veth underlay) and was finished.</summary>
    InnerChecksumsCompleted,
    /// <summary>Packets translated toward a Service's backend (DNAT, and SNAT where the flow has it).</summary>
    ServiceTranslated,
    /// <summary>Replies translated back to the service address.</summary>
    ServiceReplies,
    /// <summary>Service flows created (a backend chosen, a connection-tracking entry made).</summary>
    ServiceFlowsCreated,
    /// <summary>ICMP errors about service flows translated, quoted header included.</summary>
    ServiceIcmpTranslated,
    /// <summary>IPv4 fragments after the first of a Service flow's datagram, translated by the ports their first fragment carried.</summary>
    ServiceFragmentsTranslated,
    Polls,
}

/// <summary>
/// Published counters of one forwarder. The forwarder tallies into <see cref="CounterTally"/> during a burst and
/// adds the tally here once per poll: the only writer, so plain volatile writes suffice and readers on any
/// thread see whole 64-bit values without locks.
/// </summary>
public sealed class NodeCounters
{
    public const int CounterCount = (int)Counter.Polls + 1;

    private readonly long[] _counters = new long[CounterCount];
    private readonly long[] _drops = new long[DropReasons.Count];

    public long this[Counter counter] => Volatile.Read(ref _counters[(int)counter]);

    public long Drops(DropReason reason) => Volatile.Read(ref _drops[(int)reason]);

    public long TotalDrops
    {
        get
        {
            long total = 0;
            for (var i = 1; i < _drops.Length; i++) total += Volatile.Read(ref _drops[i]);
            return total;
        }
    }

    /// <summary>Non-zero drop counters, for display.</summary>
    public IEnumerable<(DropReason Reason, long Count)> NonZeroDrops()
    {
        for (var i = 1; i < _drops.Length; i++)
        {
            var n = Volatile.Read(ref _drops[i]);
            if (n != 0) yield return ((DropReason)i, n);
        }
    }

    /// <summary>The sum of several workers' counters, read on the caller's thread (each worker still writes only its own).</summary>
    public static NodeCounters Sum(IEnumerable<NodeCounters> workers)
    {
        var total = new NodeCounters();
        foreach (var w in workers)
        {
            for (var i = 0; i < total._counters.Length; i++) total._counters[i] += Volatile.Read(ref w._counters[i]);
            for (var i = 0; i < total._drops.Length; i++) total._drops[i] += Volatile.Read(ref w._drops[i]);
        }
        return total;
    }

    internal void Flush(CounterTally tally)
    {
        for (var i = 0; i < _counters.Length; i++)
        {
            var n = tally.Counters[i];
            if (n == 0) continue;
            Volatile.Write(ref _counters[i], _counters[i] + n);
            tally.Counters[i] = 0;
        }
        if (!tally.AnyDrop) return;
        for (var i = 0; i < _drops.Length; i++)
        {
            var n = tally.Drops[i];
            if (n == 0) continue;
            Volatile.Write(ref _drops[i], _drops[i] + n);
            tally.Drops[i] = 0;
        }
        tally.AnyDrop = false;
    }
}

/// <summary>The forwarder's private per-poll tally (VPP keeps these in node-local variables).</summary>
public sealed class CounterTally
{
    public readonly long[] Counters = new long[NodeCounters.CounterCount];
    public readonly long[] Drops = new long[DropReasons.Count];
    public bool AnyDrop;

    public void Add(Counter counter, long n = 1) => Counters[(int)counter] += n;

    public void Drop(DropReason reason)
    {
        Drops[(int)reason]++;
        AnyDrop = true;
    }
}
