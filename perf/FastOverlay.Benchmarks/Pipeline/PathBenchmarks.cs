using BenchmarkDotNet.Attributes;
using FastOverlay.Bench;

namespace FastOverlay.Benchmarks.Pipeline;

/// <summary>
/// Each full path through a real NodeForwarder: ring in → parse → route → ARP or encap/decap → ring out, 256
/// packets per invocation (the frames are copied into pool buffers first, as a NIC would write them).
/// </summary>
public class PathBenchmarks
{
    private PathBench _bench = null!;

    [Params(BenchPath.IntraNode, BenchPath.Encap, BenchPath.Decap, BenchPath.Arp, BenchPath.ServiceEstablished, BenchPath.ServiceBulk, BenchPath.ServiceFirstPacket)]
    public BenchPath Path { get; set; }

    [GlobalSetup]
    public void Setup() => _bench = new PathBench(Path);

    [Benchmark(OperationsPerInvoke = 256)]
    public int Burst256() => _bench.RunBurst();
}

/// <summary>Cost per packet against burst size: 256 packets per invocation, in bursts of 1 to 256.</summary>
public class BurstScalingBenchmarks
{
    private PathBench _bench = null!;

    [Params(BenchPath.IntraNode, BenchPath.Encap)]
    public BenchPath Path { get; set; }

    [Params(1, 8, 32, 64, 256)]
    public int Burst { get; set; }

    [GlobalSetup]
    public void Setup() => _bench = new PathBench(Path, Burst);

    [Benchmark(OperationsPerInvoke = 256)]
    public int Packets256()
    {
        var n = 0;
        for (var i = 0; i < 256 / Burst; i++) n += _bench.RunBurst();
        return n;
    }
}

/// <summary>Cost per packet against inner frame size (64 to 1450 bytes of inner IPv4 + Ethernet).</summary>
public class FrameSizeScalingBenchmarks
{
    private PathBench _bench = null!;

    [Params(BenchPath.Encap, BenchPath.Decap)]
    public BenchPath Path { get; set; }

    [Params(64, 128, 512, 1024, 1464)]
    public int FrameSize { get; set; }

    [GlobalSetup]
    public void Setup() => _bench = new PathBench(Path, 256, FrameSize);

    [Benchmark(OperationsPerInvoke = 256)]
    public int Burst256() => _bench.RunBurst();
}

/// <summary>The encap path with 10 to 1M routes in the table: the lookup must not grow with it.</summary>
public class RouteScalingBenchmarks
{
    private PathBench _bench = null!;

    [Params(10, 10_000, 1_000_000)]
    public int Routes { get; set; }

    [GlobalSetup]
    public void Setup() => _bench = new PathBench(BenchPath.Encap, 256, 64, Routes);

    [Benchmark(OperationsPerInvoke = 256)]
    public int Burst256() => _bench.RunBurst();
}
