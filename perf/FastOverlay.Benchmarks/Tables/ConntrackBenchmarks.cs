using BenchmarkDotNet.Attributes;
using FastOverlay.Tables.Services;

namespace FastOverlay.Benchmarks.Tables;

/// <summary>
/// Conntrack per packet: a hit (either direction) with 1k, 100k and 1M live flows in a table of twice that
/// capacity, one at a time, with the burst's buckets prefetched first, and through the staged burst lookup; a miss
/// (a new flow's first lookup); and
/// Insert + Remove of a new flow. Bursts of 256 are drawn from 4096 different ones, so the 1M case walks the table
/// (192 MB) instead of a cached 256 keys; the lookup should stay about flat until the table leaves the caches.
/// </summary>
public class ConntrackBenchmarks
{
    private const int Burst = 256;
    private const int Bursts = 4096;
    private ConntrackTable _table = null!;
    private FlowKey[][] _hits = [];
    private FlowKey[][] _misses = [];
    private FlowKey[] _newOriginals = [];
    private FlowKey[] _newReplies = [];
    private readonly int[] _indices = new int[Burst];
    private readonly bool[] _replies = new bool[Burst];
    private readonly ConntrackFlow[] _flows = new ConntrackFlow[Burst];
    private int _next;

    [Params(1_000, 100_000, 1_000_000)]
    public int Flows { get; set; }

    private static (FlowKey Original, FlowKey Reply) RandomFlow(Random random)
    {
        // A client anywhere in 10/8 to one of 64 service addresses, DNATed to one of 4096 backends.
        var original = new FlowKey(0x0A00_0000u | (uint)random.Next(1 << 24), 0x0A60_0000u | (uint)random.Next(64),
            (ushort)random.Next(1024, 65536), 443, 6);
        var reply = new FlowKey(0x0AF4_0000u | (uint)random.Next(4096), original.Source, 8443, original.SourcePort, 6);
        return (original, reply);
    }

    [GlobalSetup]
    public void Setup()
    {
        _table = new ConntrackTable(Flows * 2, ConntrackTimeouts.Default, 0x5EED);
        var random = new Random(7);
        var originals = new FlowKey[Flows];
        var replies = new FlowKey[Flows];
        for (var i = 0; i < Flows; i++)
        {
            (originals[i], replies[i]) = RandomFlow(random);
            if (_table.Insert(originals[i], replies[i], (uint)i, 1, ConntrackFlags.None, 1) < 0)
                throw new InvalidOperationException($"setup: insert {i} failed");
        }
        _hits = new FlowKey[Bursts][];
        _misses = new FlowKey[Bursts][];
        for (var b = 0; b < Bursts; b++)
        {
            _hits[b] = new FlowKey[Burst];
            _misses[b] = new FlowKey[Burst];
            for (var i = 0; i < Burst; i++)
            {
                var f = random.Next(Flows);
                _hits[b][i] = random.Next(2) == 0 ? originals[f] : replies[f];
                _misses[b][i] = new FlowKey(0xC0A8_0000u | (uint)random.Next(1 << 16), 0x0A60_0001, (ushort)random.Next(1024, 65536), 80, 17);
            }
        }
        _newOriginals = new FlowKey[Burst];
        _newReplies = new FlowKey[Burst];
        for (var i = 0; i < Burst; i++)
        {
            var (o, r) = RandomFlow(random);
            _newOriginals[i] = new FlowKey(o.Source, 0x0A61_0000, o.SourcePort, 80, 17); // a service no setup flow uses
            _newReplies[i] = new FlowKey(r.Source, o.Source, 8080, o.SourcePort, 17);
        }
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int TryFindHit()
    {
        var keys = _hits[_next++ & (Bursts - 1)];
        var n = 0;
        foreach (ref readonly var key in keys.AsSpan())
            n += _table.TryFind(key, 2, out var index, out _, out _) ? index : -1_000_000;
        return n;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int TryFindHitPrefetched()
    {
        var keys = _hits[_next++ & (Bursts - 1)];
        foreach (ref readonly var key in keys.AsSpan()) _table.Prefetch(key);
        var n = 0;
        foreach (ref readonly var key in keys.AsSpan())
            n += _table.TryFind(key, 2, out var index, out _, out _) ? index : -1_000_000;
        return n;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int TryFindHitBurst() => _table.TryFind(_hits[_next++ & (Bursts - 1)], 2, _indices, _replies, _flows);

    [Benchmark(OperationsPerInvoke = Burst)]
    public int TryFindMiss()
    {
        var keys = _misses[_next++ & (Bursts - 1)];
        var n = 0;
        foreach (ref readonly var key in keys.AsSpan())
            n += _table.TryFind(key, 2, out _, out _, out _) ? 1 : 0;
        return n;
    }

    /// <summary>A burst of new flows inserted, then removed: per flow, one Insert and one Remove.</summary>
    [Benchmark(OperationsPerInvoke = Burst)]
    public int InsertRemove()
    {
        var n = 0;
        for (var i = 0; i < Burst; i++)
        {
            _indices[i] = _table.Insert(_newOriginals[i], _newReplies[i], 1, 1, ConntrackFlags.None, 2);
            n += _indices[i];
        }
        for (var i = 0; i < Burst; i++) _table.Remove(_indices[i]);
        return n;
    }
}
