using System.Net;
using System.Net.Sockets;
using FastOverlay.Pipeline;
using FastOverlay.Pipeline.Stages;
using FastOverlay.Ports;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// Receive and Transmit allocate nothing in steady state: bursts through real sockets, measured with
/// GC.GetAllocatedBytesForCurrentThread on the calling thread; a control run that allocates proves the
/// measurement can fail.
/// </summary>
[Collection("netns")]
public sealed class PortAllocationTests
{
    private const int Burst = 64;

    /// <summary>Sends <paramref name="bursts"/> bursts of copies of <paramref name="frame"/> from a to b and receives them.</summary>
    private static long Pump(IPacketPort a, ISocketPort b, PacketPool pool, byte[] frame, int bursts, bool allocateOnPurpose = false)
    {
        Span<int> handles = stackalloc int[Burst];
        long received = 0;
        object? sink = null;
        for (var r = 0; r < bursts; r++)
        {
            for (var i = 0; i < Burst; i++)
            {
                var h = pool.Allocate();
                frame.CopyTo(pool.WritableFrame(h));
                pool.SetLength(h, frame.Length);
                handles[i] = h;
            }
            var sent = a.Transmit(handles);
            pool.Free(handles[sent..]);
            if (allocateOnPurpose) sink = new byte[16];
            // Collect what arrived; a few polls bound the wait without allocating.
            var got = 0;
            for (var spins = 0; got < sent && spins < 1000; spins++)
            {
                var n = b.Receive(handles);
                if (n == 0)
                {
                    PortDriver.WaitReadable(b.FileDescriptor, 1);
                    continue;
                }
                got += n;
                pool.Free(handles[..n]);
            }
            received += got;
        }
        GC.KeepAlive(sink);
        return received;
    }

    private static void AssertNoAllocation(IPacketPort a, ISocketPort b, PacketPool pool, byte[] frame)
    {
        Assert.True(Pump(a, b, pool, frame, 200) > 0); // warm-up: JIT and tiering
        Pump(a, b, pool, frame, 1000);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var received = Pump(a, b, pool, frame, 1000);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(received > 1000 * Burst / 2, $"only {received} frames arrived");
        Assert.Equal(0, allocated);

        var controlBefore = GC.GetAllocatedBytesForCurrentThread();
        Pump(a, b, pool, frame, 10, allocateOnPurpose: true);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - controlBefore >= 10 * 16, "the control run should have allocated");
        Assert.Equal(0, pool.InUse);
    }

    [Fact]
    public void The_UDP_underlay_port_allocates_nothing_per_burst()
    {
        ushort port;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = (ushort)((IPEndPoint)probe.LocalEndPoint!).Port;
        }
        var pool = new PacketPool(1024);
        var local = Ipv4Address.Parse("127.0.0.1");
        var remote = Ipv4Address.Parse("127.0.0.2");
        using var a = new UdpUnderlayPort(local, port, pool);
        using var b = new UdpUnderlayPort(remote, port, pool);
        var node = new NodeOptions
        {
            Name = "a", PublicIp = local, Subnet = Ipv4Prefix.Parse("10.244.1.0/24"), VtepMac = MacAddress.Parse("0e:fd:00:00:01:00"),
            GatewayMac = MacAddress.Parse("0a:58:0a:f4:01:01"), VxlanPort = port,
        };
        var template = new EncapTemplate(node, new Peer("b", remote, Ipv4Prefix.Parse("10.244.2.0/24"), MacAddress.Parse("0e:fd:00:00:02:00")));
        var frame = new byte[EncapTemplate.Length + 64];
        VxlanEncap.WriteOuter(frame, template, 50000);
        AssertNoAllocation(a, b, pool, frame);
    }

    [SkippableTheory]
    [InlineData(PacketRingVersion.V2)]
    [InlineData(PacketRingVersion.V3)]
    public void The_AF_PACKET_port_allocates_nothing_per_burst(PacketRingVersion ring)
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var ns = new TestNamespace("alloc");
        ns.AddVeth("node0", "pod0");
        var pool = new PacketPool(1024);
        using var port = ns.Enter(() => new AfPacketPort("node0", pool, new AfPacketOptions { Ring = ring }));
        using var far = ns.Enter(() => new AfPacketPort("pod0", pool));
        AssertNoAllocation(far, port, pool, PortDriver.Frame(1, 98));
    }

    [SkippableFact]
    public void The_external_port_allocates_nothing_per_burst()
    {
        Skip.If(ExternalLink.Unavailable() is not null, ExternalLink.Unavailable());
        using var link = new ExternalLink();
        var pool = new PacketPool(1024);
        // The node's port sends through its raw IP socket; a second external port in the client receives.
        using var node = link.Node.Enter(() => new ExternalPort(ExternalLink.NodeInterface, pool, new ExternalTraffic { NodeIp = ExternalLink.NodeIp }));
        using var client = link.Client!.Enter(() => new ExternalPort(ExternalLink.ClientInterface, pool,
            new ExternalTraffic { NodeIp = ExternalLink.ClientIp, UdpNodePorts = [5555] }));
        var frame = ExternalFrames.Build(link.ClientMac, ExternalLink.NodeIp, ExternalLink.ClientIp, Ipv4Header.ProtocolUdp, 30053, 5555, payload: 56);
        AssertNoAllocation(node, client, pool, frame);
    }
}
