using FastOverlay.Control;
using FastOverlay.Tests.Config;

namespace FastOverlay.Tests.Control;

/// <summary>A node with several workers: each has its own pool and sockets; configuration changes reach all of them.</summary>
public sealed class NodeWorkerTests
{
    private const string TwoPods = """[ { "Interface": "veth-pod1", "IP": "10.244.1.2" }, { "Interface": "veth-pod2", "IP": "10.244.1.3" } ]""";

    [Fact]
    public void Each_worker_gets_its_own_pool_forwarder_and_ports()
    {
        var ports = new RingPortFactory();
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), ports, poolBuffers: 64, workers: 3);
        Assert.Equal(3, controller.Workers.Count);
        Assert.Equal(3, controller.Workers.Select(w => w.Pool).Distinct().Count());
        Assert.Equal(3, controller.Workers.Select(w => w.Forwarder.State.Ports[1]).Distinct().Count());
        Assert.Equal([0, 1, 2], controller.Workers.Select(w => w.Forwarder.Worker));
        Assert.Equal(3, ports.OpenCount("veth-pod1"));
        Assert.Same(controller.Workers[0].Forwarder, controller.Forwarder);
    }

    [Fact]
    public void A_config_change_reaches_every_worker_with_the_same_port_ids()
    {
        var ports = new RingPortFactory();
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), ports, poolBuffers: 64, workers: 2);
        controller.Apply(ConfigFixture.Load(ConfigFixture.With("Node.Pods", TwoPods)));
        foreach (var worker in controller.Workers)
        {
            var state = worker.Forwarder.State;
            Assert.Equal(3, state.Ports.Length);
            Assert.Equal("veth-pod1", state.Ports[1]!.Name);
            Assert.Equal("veth-pod2", state.Ports[2]!.Name);
        }
        Assert.Equal(2, ports.OpenCount("veth-pod2"));
    }

    [Fact]
    public void One_worker_is_the_default()
    {
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), new RingPortFactory(), poolBuffers: 64);
        Assert.Single(controller.Workers);
    }
}
