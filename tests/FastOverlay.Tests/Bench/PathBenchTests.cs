using FastOverlay.Bench;

namespace FastOverlay.Tests.Bench;

/// <summary>The benchmark fixture must measure what it says: every packet of every burst comes out, none dropped.</summary>
public class PathBenchTests
{
    [Theory]
    [InlineData(BenchPath.IntraNode, 256, 64, 0)]
    [InlineData(BenchPath.Encap, 1, 64, 10_000)]
    [InlineData(BenchPath.Encap, 32, 1464, 0)]
    [InlineData(BenchPath.Decap, 256, 1464, 0)]
    [InlineData(BenchPath.Arp, 8, 64, 0)]
    [InlineData(BenchPath.ServiceEstablished, 256, 64, 0)]
    [InlineData(BenchPath.ServiceBulk, 256, 64, 0)]
    [InlineData(BenchPath.ServiceFirstPacket, 256, 64, 0)]
    public void Every_packet_of_every_burst_comes_out(BenchPath path, int burst, int size, int routes)
    {
        var bench = new PathBench(path, burst, size, routes);
        Assert.True(bench.RouteCount >= routes);
        for (var i = 0; i < 5; i++) Assert.Equal(burst, bench.RunBurst());
        Assert.Equal(0, bench.Node.Counters.TotalDrops);
        Assert.Equal(0, bench.Pool.InUse);
        if (path == BenchPath.ServiceFirstPacket) Assert.Equal(5 * burst, bench.Node.Counters[FastOverlay.Pipeline.Counter.ServiceFlowsCreated]);
        if (path == BenchPath.ServiceEstablished) Assert.Equal(burst, bench.Node.Counters[FastOverlay.Pipeline.Counter.ServiceFlowsCreated]);
        if (path == BenchPath.ServiceBulk) Assert.Equal(burst / 32, bench.Node.Counters[FastOverlay.Pipeline.Counter.ServiceFlowsCreated]);
    }
}
