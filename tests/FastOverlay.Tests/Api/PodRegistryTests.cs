using FastOverlay.Cli.Api;
using FastOverlay.Control;
using FastOverlay.Pipeline;
using FastOverlay.Tests.Config;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Api;

/// <summary>API pods: idempotent add and remove through the controller's rebuild-and-swap, conflicts refused, the state file kept.</summary>
public sealed class PodRegistryTests : IDisposable
{
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"fo-pods-test-{Guid.NewGuid():N}.json");

    [Fact]
    public void Adding_twice_is_one_pod_routed_like_a_file_pod_and_removing_twice_is_fine()
    {
        var ports = new RingPortFactory();
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), ports, poolBuffers: 256);
        var registry = new PodRegistry(_file);
        var version = controller.Forwarder.State.Version;

        Assert.True(registry.Add(new ApiPod("veth-cni1", "10.244.1.7", "0a:58:0a:f4:01:07", "c1"), controller));
        Assert.False(registry.Add(new ApiPod("veth-cni1", "10.244.1.7"), controller));
        var state = controller.Forwarder.State;
        Assert.Equal(version + 1, state.Version);
        Assert.Same(ports.Opened["veth-cni1"], state.Ports[RouteTarget.Index(state.Routes.Lookup(Ipv4Address.Parse("10.244.1.7").Value))]);
        Assert.Equal("veth-cni1", Assert.Single(controller.ApiPods).Interface);

        // The file survives: a new registry (a restarted daemon) reads the same pod.
        var reloaded = new PodRegistry(_file);
        reloaded.Load(TextWriter.Null);
        Assert.Equal(new ApiPod("veth-cni1", "10.244.1.7", "0a:58:0a:f4:01:07", "c1"), Assert.Single(reloaded.Pods));

        Assert.True(registry.Remove("veth-cni1", controller));
        Assert.False(registry.Remove("veth-cni1", controller));
        Assert.Empty(controller.ApiPods);
        Assert.Equal(1, ports.OpenCount("veth-cni1"));
    }

    [Theory]
    [InlineData("veth-pod1", "10.244.1.9", 409)]   // the file's pod
    [InlineData("veth-x", "10.244.1.2", 409)]      // the file pod's address
    [InlineData("veth-x", "10.244.2.9", 400)]      // another node's subnet
    [InlineData("veth-x", "10.244.1.1", 400)]      // the gateway
    [InlineData("veth-x", "not-an-ip", 400)]
    [InlineData("a-name-longer-than-15", "10.244.1.9", 400)]
    public void Conflicts_and_bad_pods_are_refused_and_change_nothing(string name, string ip, int status)
    {
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), new RingPortFactory(), poolBuffers: 256);
        var registry = new PodRegistry(_file);
        var version = controller.Forwarder.State.Version;
        var e = Assert.Throws<PodChangeException>(() => registry.Add(new ApiPod(name, ip), controller));
        Assert.Equal(status, e.Status);
        Assert.Equal(version, controller.Forwarder.State.Version);
        Assert.False(File.Exists(_file));
    }

    [Fact]
    public void A_veth_that_cannot_be_opened_is_refused_and_neither_the_state_nor_the_file_changes()
    {
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), new RingPortFactory { Failing = "veth-gone" }, poolBuffers: 256);
        var registry = new PodRegistry(_file);
        var version = controller.Forwarder.State.Version;
        Assert.Equal(400, Assert.Throws<PodChangeException>(() => registry.Add(new ApiPod("veth-gone", "10.244.1.9"), controller)).Status);
        Assert.Equal(version, controller.Forwarder.State.Version);
        Assert.Empty(registry.Pods);
        Assert.False(File.Exists(_file));
    }

    [Fact]
    public void A_node_without_a_lease_answers_try_again()
    {
        var e = Assert.Throws<PodChangeException>(() => new PodRegistry(_file).Add(new ApiPod("veth-x", "10.244.1.9"), controller: null));
        Assert.Equal(503, e.Status);
    }

    public void Dispose() => File.Delete(_file);
}
