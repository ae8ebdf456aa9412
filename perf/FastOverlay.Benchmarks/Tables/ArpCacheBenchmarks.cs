using BenchmarkDotNet.Attributes;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Benchmarks.Tables;

/// <summary>ARP cache lookups per address, hit and miss, as the number of entries grows (cost should stay flat).</summary>
public class ArpCacheBenchmarks
{
    private const int Burst = 256;
    private ArpCache _cache = null!;
    private uint[] _hits = [];
    private uint[] _misses = [];

    [Params(16, 1_024, 65_536)]
    public int Entries { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _cache = new ArpCache(Entries * 2, long.MaxValue / 4, long.MaxValue / 2);
        var random = new Random(3);
        var known = new uint[Entries];
        for (var i = 0; i < Entries; i++)
        {
            known[i] = 0x0A00_0000u | (uint)random.Next(1, 1 << 24);
            _cache.Learn(known[i], new MacAddress(0x0A58_0000_0000UL | known[i]), 1 + i % 8, 1);
        }
        _hits = Enumerable.Range(0, Burst).Select(_ => known[random.Next(known.Length)]).ToArray();
        _misses = Enumerable.Range(0, Burst).Select(_ => 0xC000_0000u | (uint)random.Next(1, 1 << 24)).ToArray();
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int Hit()
    {
        var n = 0;
        foreach (var a in _hits) n += _cache.Lookup(a, 2, out _, out var port) == ArpState.Reachable ? port : 0;
        return n;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public int Miss()
    {
        var n = 0;
        foreach (var a in _misses) n += _cache.Lookup(a, 2, out _, out _) == ArpState.Miss ? 1 : 0;
        return n;
    }
}
