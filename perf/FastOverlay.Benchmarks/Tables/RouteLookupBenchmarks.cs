using BenchmarkDotNet.Attributes;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Benchmarks.Tables;

/// <summary>
/// Route lookups per address: the DIR-24-8 table (batch with AVX2 gathers, its scalar twin, one at a time) against
/// a per-prefix-length Dictionary, at 10, 10k and 1M routes, for addresses spread over the table (cache misses
/// at 1M) and clustered in the pod network. Flat from 10 to 1M is the point.
/// </summary>
public class RouteLookupBenchmarks
{
    private const int Burst = 256;
    private RouteTable _table = null!;
    private PerLengthDictionaryRoutes _dictionary = null!;
    private uint[][] _addresses = [];
    private readonly uint[] _values = new uint[Burst];
    private int _next;

    [Params(10, 10_000, 1_000_000)]
    public int Routes { get; set; }

    [Params(false, true)]
    public bool Clustered { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var routes = RouteSets.Make(Routes);
        var builder = new RouteTableBuilder(RouteTable.Empty);
        foreach (var (prefix, value) in routes) builder.Add(prefix, value);
        _table = builder.Build();
        _dictionary = new PerLengthDictionaryRoutes(routes);
        // Many different bursts so the 1M case really walks the table instead of a cached 256.
        var all = RouteSets.Addresses(routes, Clustered, Burst * 4096);
        _addresses = Enumerable.Range(0, 4096).Select(i => all.AsSpan(i * Burst, Burst).ToArray()).ToArray();
    }

    private uint[] NextBurst() => _addresses[_next++ & 4095];

    [Benchmark(Baseline = true, OperationsPerInvoke = Burst)]
    public uint PerLengthDictionary()
    {
        var a = NextBurst();
        uint x = 0;
        for (var i = 0; i < a.Length; i++) x ^= _dictionary.Lookup(a[i]);
        return x;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public uint Dir24_8_Single()
    {
        var a = NextBurst();
        uint x = 0;
        for (var i = 0; i < a.Length; i++) x ^= _table.Lookup(a[i]);
        return x;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public uint Dir24_8_BatchScalar()
    {
        _table.LookupScalar(NextBurst(), _values);
        return _values[0];
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public uint Dir24_8_BatchAvx2()
    {
        _table.Lookup(NextBurst(), _values);
        return _values[0];
    }
}

/// <summary>The linear scan most hand-written C# route tables start as; only up to 10k routes (it is O(n)).</summary>
public class LinearScanRouteBenchmarks
{
    private const int Burst = 256;
    private LinearScanRoutes _scan = null!;
    private RouteTable _table = null!;
    private uint[] _addresses = [];

    [Params(10, 1_000, 10_000)]
    public int Routes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var routes = RouteSets.Make(Routes);
        _scan = new LinearScanRoutes(routes);
        var builder = new RouteTableBuilder(RouteTable.Empty);
        foreach (var (prefix, value) in routes) builder.Add(prefix, value);
        _table = builder.Build();
        _addresses = RouteSets.Addresses(routes, false, Burst);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Burst)]
    public uint LinearScan()
    {
        uint x = 0;
        foreach (var a in _addresses) x ^= _scan.Lookup(a);
        return x;
    }

    [Benchmark(OperationsPerInvoke = Burst)]
    public uint Dir24_8_Single()
    {
        uint x = 0;
        foreach (var a in _addresses) x ^= _table.Lookup(a);
        return x;
    }
}
