using BenchmarkDotNet.Attributes;
using FastOverlay.Tables.Services;

namespace FastOverlay.Benchmarks.Tables;

/// <summary>
/// Maglev: building a table (control plane, on every endpoint change) at Cilium's default size for 100 backends
/// and Katran's for 1000; and a new flow's backend choice, FlowHash then Lookup, per packet.
/// </summary>
public class MaglevBenchmarks
{
    private const int Burst = 256;
    private List<string> _names100 = [];
    private List<string> _names1000 = [];
    private MaglevTable _default = null!;
    private MaglevTable _large = null!;
    private readonly uint[] _clients = new uint[Burst];
    private readonly ushort[] _ports = new ushort[Burst];

    private static List<string> PodNames(int n) =>
        Enumerable.Range(0, n).Select(i => $"10.244.{i / 250}.{i % 250 + 1}:8080").ToList();

    [GlobalSetup]
    public void Setup()
    {
        _names100 = PodNames(100);
        _names1000 = PodNames(1000);
        _default = MaglevTable.Build(_names100, MaglevTable.DefaultSize);
        _large = MaglevTable.Build(_names1000, MaglevTable.LargeSize);
        var random = new Random(3);
        for (var i = 0; i < Burst; i++)
        {
            _clients[i] = 0x0A00_0000u | (uint)random.Next(1 << 24);
            _ports[i] = (ushort)random.Next(1024, 65536);
        }
    }

    [Benchmark]
    [Arguments(16381, 100)]
    [Arguments(65537, 1000)]
    public MaglevTable Build(int size, int backends) => MaglevTable.Build(backends == 100 ? _names100 : _names1000, size);

    [Benchmark(OperationsPerInvoke = Burst)]
    [Arguments(16381)]
    [Arguments(65537)]
    public int FlowHashLookup(int size)
    {
        var table = size == MaglevTable.DefaultSize ? _default : _large;
        var n = 0;
        for (var i = 0; i < Burst; i++) n += table.Lookup(MaglevTable.FlowHash(_clients[i], _ports[i], 6));
        return n;
    }
}
