namespace FastOverlay.Tables.Services;

public enum ServiceCounter
{
    /// <summary>Packets translated toward the service (client to backend), and their IPv4 bytes.</summary>
    Packets,
    Bytes,
    /// <summary>Replies translated back (backend to client), and their IPv4 bytes.</summary>
    ReplyPackets,
    ReplyBytes,
    /// <summary>Flows created (a backend chosen).</summary>
    Flows,
    /// <summary>New flows refused for want of a usable endpoint (rejected or dropped by policy).</summary>
    NoEndpoint,
}

/// <summary>
/// Counters of one service port or one backend, one row per worker (a cache line each, so workers never share
/// one): the worker's forwarder is the only writer of its row, plain volatile writes; readers sum the rows. The
/// object outlives table rebuilds: a service port or backend that stays keeps its counters.
/// </summary>
public sealed class ServiceCounters
{
    private const int Stride = 8;
    private readonly long[] _rows;

    public ServiceCounters(int workers) => _rows = new long[Math.Max(1, workers) * Stride];

    public int Workers => _rows.Length / Stride;

    public long this[ServiceCounter counter]
    {
        get
        {
            long sum = 0;
            for (var w = 0; w < _rows.Length; w += Stride) sum += Volatile.Read(ref _rows[w + (int)counter]);
            return sum;
        }
    }

    internal void Add(int worker, ServiceCounter counter, long value = 1)
    {
        ref var slot = ref _rows[worker * Stride + (int)counter];
        Volatile.Write(ref slot, slot + value);
    }
}
