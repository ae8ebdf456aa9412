using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Pipeline;

/// <summary>
/// Steady-state forwarding allocates nothing: a million packets through each path, measured with
/// GC.GetAllocatedBytesForCurrentThread around the forwarder's own thread (this one). A control run that does
/// allocate proves the measurement can fail.
/// </summary>
public class ZeroAllocationTests
{
    // At least a million, in whole bursts.
    private const int Packets = (1_000_000 + 255) / 256 * 256;
    private const int Burst = 256;

    private static long Forward(NodeHarness h, RingPort input, RingPort output, byte[] frame, int packets, bool allocateOnPurpose = false)
    {
        Span<int> handles = stackalloc int[Burst];
        long delivered = 0;
        object? sink = null;
        for (var sent = 0; sent < packets; sent += Burst)
        {
            for (var i = 0; i < Burst; i++)
            {
                var b = h.Pool.Allocate();
                frame.CopyTo(h.Pool.WritableFrame(b));
                h.Pool.SetLength(b, frame.Length);
                handles[i] = b;
            }
            if (input.Transmit(handles) != Burst) throw new InvalidOperationException("input ring full");
            if (allocateOnPurpose) sink = new byte[16];
            h.Node.Poll();
            int n;
            while ((n = output.Receive(handles)) > 0)
            {
                delivered += n;
                h.Pool.Free(handles[..n]);
            }
        }
        GC.KeepAlive(sink);
        return delivered;
    }

    private static void AssertNoAllocation(NodeHarness h, RingPort input, RingPort output, byte[] frame)
    {
        Assert.Equal(10 * Burst, Forward(h, input, output, frame, 10 * Burst)); // warm-up: JIT, tiering, first ARP
        // Tier-1 code arrives asynchronously; run long enough that the measured run uses it.
        Forward(h, input, output, frame, 200_000);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var delivered = Forward(h, input, output, frame, Packets);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(Packets, delivered);
        Assert.Equal(0, allocated);
        Assert.Equal(0, h.Node.Counters.TotalDrops);
        Assert.Equal(0, h.Pool.InUse);
    }

    /// <summary>The service paths (conntrack hit + DNAT + encap; and a new flow per packet with lazy reclaim) allocate nothing either.</summary>
    [Theory]
    [InlineData(FastOverlay.Bench.BenchPath.ServiceEstablished)]
    [InlineData(FastOverlay.Bench.BenchPath.ServiceBulk)]
    [InlineData(FastOverlay.Bench.BenchPath.ServiceFirstPacket)]
    public void Service_paths_allocate_nothing(FastOverlay.Bench.BenchPath path)
    {
        var bench = new FastOverlay.Bench.PathBench(path);
        Assert.Equal(200_192, bench.Run(200_000));
        var before = GC.GetAllocatedBytesForCurrentThread();
        var delivered = bench.Run(Packets);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(Packets, delivered);
        Assert.Equal(0, allocated);
        Assert.Equal(0, bench.Node.Counters.TotalDrops);
    }

    [Fact]
    public void Intra_node_path_allocates_nothing()
    {
        var h = new NodeHarness();
        h.LearnPods();
        var frame = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, NodeHarness.PodIp(1).Value);
        AssertNoAllocation(h, h.PodPorts[0], h.PodPorts[1], frame);
    }

    [Fact]
    public void Encap_path_allocates_nothing()
    {
        var h = new NodeHarness();
        h.LearnPods();
        var frame = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, NodeHarness.PeerB.Subnet.Address + 9);
        AssertNoAllocation(h, h.PodPorts[0], h.Underlay, frame);
    }

    [Fact]
    public void Decap_path_allocates_nothing()
    {
        var h = new NodeHarness();
        h.LearnPods();
        var inner = NodeHarness.UdpFrame(NodeHarness.PeerB.VtepMac, NodeHarness.VtepMac, NodeHarness.PeerB.Subnet.Address + 5, NodeHarness.PodIp(1).Value);
        var frame = NodeHarness.VxlanFrame(NodeHarness.PeerB.PublicIp.Value, NodeHarness.PublicIp.Value, 1, inner);
        AssertNoAllocation(h, h.Underlay, h.PodPorts[1], frame);
    }

    [Fact]
    public void Arp_path_allocates_nothing()
    {
        var h = new NodeHarness();
        var frame = NodeHarness.ArpFrame(ArpPacket.OpRequest, NodeHarness.PodMac(0), NodeHarness.PodIp(0).Value, h.Options.GatewayIp, MacAddress.Broadcast);
        AssertNoAllocation(h, h.PodPorts[0], h.PodPorts[0], frame);
        Assert.Equal(Packets + 10 * Burst + (200_000 + 255) / 256 * 256, h.Node.Counters[Counter.ArpRequestsAnswered]);
    }

    /// <summary>Checksums a megabyte per round: whole, in 1500-byte packets through Add, and through every kernel.</summary>
    private static int ChecksumRounds(byte[] data, int rounds, bool allocateOnPurpose = false)
    {
        var checksums = 0;
        object? sink = null;
        for (var r = 0; r < rounds; r++)
        {
            checksums += InternetChecksum.Compute(data);
            for (var at = 0; at + 1500 <= data.Length; at += 1500)
                checksums += InternetChecksum.Compute(data.AsSpan(at, 1500));
            checksums += InternetChecksum.FoldToNetworkOrder(InternetChecksum.AddVector128(data, 0));
            checksums += InternetChecksum.FoldToNetworkOrder(InternetChecksum.AddVector256(data, 0));
            checksums += InternetChecksum.FoldToNetworkOrder(InternetChecksum.AddVector512(data, 0));
            checksums += InternetChecksum.FoldToNetworkOrder(InternetChecksum.AddScalar(data, 0));
            if (allocateOnPurpose) sink = new byte[16];
        }
        GC.KeepAlive(sink);
        return checksums;
    }

    [Fact]
    public void Checksum_of_a_megabyte_allocates_nothing()
    {
        var data = new byte[1 << 20];
        new Random(7).NextBytes(data);
        ChecksumRounds(data, 50); // warm-up: JIT, on-stack replacement and tier-1 of the loops
        var before = GC.GetAllocatedBytesForCurrentThread();
        var checksums = ChecksumRounds(data, 20);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.NotEqual(0, checksums);

        // Control: the same loop with one 16-byte array per round is seen.
        before = GC.GetAllocatedBytesForCurrentThread();
        ChecksumRounds(data, 20, allocateOnPurpose: true);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before >= 20 * 16);
    }

    [Fact]
    public void Control_run_that_allocates_is_seen()
    {
        var h = new NodeHarness();
        h.LearnPods();
        var frame = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, NodeHarness.PodIp(1).Value);
        Forward(h, h.PodPorts[0], h.PodPorts[1], frame, 10 * Burst);
        var before = GC.GetAllocatedBytesForCurrentThread();
        Forward(h, h.PodPorts[0], h.PodPorts[1], frame, 100 * Burst, allocateOnPurpose: true);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before >= 100 * 16);
    }
}
