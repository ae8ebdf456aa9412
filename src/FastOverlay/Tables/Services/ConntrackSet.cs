namespace FastOverlay.Tables.Services;

/// <summary>
/// The node's connection tracking: one <see cref="ConntrackTable"/> and one <see cref="AffinityTable"/> per worker,
/// all preallocated when the first Service appears. Each worker writes only its own table. The others' are read
/// too, because a flow's replies can reach another worker: the kernel's fanout hashes the translated packet, whose
/// addresses differ from the original's. SNAT ports are split by worker (port mod workers), so two workers never
/// hand out the same reply tuple.
/// </summary>
public sealed class ConntrackSet
{
    public ConntrackSet(int workers, int capacityPerWorker, ConntrackTimeouts timeouts, ulong? seed = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        // A random key per process: flows are attacker-chosen tuples, and a known hash would let one fill a bucket.
        var key = seed ?? (ulong)Random.Shared.NextInt64();
        Tables = new ConntrackTable[workers];
        Affinity = new AffinityTable[workers];
        for (var w = 0; w < workers; w++)
        {
            Tables[w] = new ConntrackTable(capacityPerWorker, timeouts, key + (ulong)w);
            Affinity[w] = new AffinityTable(Math.Max(1024, capacityPerWorker / 8), key ^ 0xA5A5A5A5UL ^ (ulong)w);
        }
        Timeouts = timeouts;
        CapacityPerWorker = capacityPerWorker;
    }

    public ConntrackTable[] Tables { get; }
    public AffinityTable[] Affinity { get; }
    public ConntrackTimeouts Timeouts { get; }
    public int CapacityPerWorker { get; }
    public int Workers => Tables.Length;

    /// <summary>Flows allocated over all workers (live or awaiting lazy reclaim).</summary>
    public long Count
    {
        get
        {
            long n = 0;
            foreach (var t in Tables) n += t.Count;
            return n;
        }
    }

    public long InsertFailures
    {
        get
        {
            long n = 0;
            foreach (var t in Tables) n += t.InsertFailures;
            return n;
        }
    }
}
