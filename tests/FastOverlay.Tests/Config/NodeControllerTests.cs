using FastOverlay.Config;
using FastOverlay.Control;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Config;

/// <summary>Configuration changes become forwarding states: peers and routes follow, kept pods keep their port.</summary>
public sealed class NodeControllerTests
{
    private const string ThreePeers = """[ { "Name": "node2", "PublicIP": "172.31.77.2", "Subnet": "10.244.2.0/24", "VtepMAC": "0a:58:0a:f4:02:00" }, { "Name": "node3", "PublicIP": "172.31.77.3", "Subnet": "10.244.3.0/24", "VtepMAC": "0a:58:0a:f4:03:00" }, { "Name": "node4", "PublicIP": "172.31.77.4", "Subnet": "10.244.4.0/24", "VtepMAC": "0a:58:0a:f4:04:00" } ]""";
    private const string TwoPods = """[ { "Interface": "veth-pod1", "IP": "10.244.1.2" }, { "Interface": "veth-pod2", "IP": "10.244.1.3" } ]""";

    private static uint Ip(string text) => Ipv4Address.Parse(text).Value;

    private static (RouteKind Kind, int Index) Route(ForwardingState state, string address)
    {
        var value = state.Routes.Lookup(Ip(address));
        if (value == FastOverlay.Tables.RouteTable.NoRoute) return (RouteKind.None, -1);
        return (RouteTarget.Kind(value), RouteTarget.Index(value));
    }

    [Fact]
    public void The_first_state_has_the_configured_peers_pods_and_routes()
    {
        var ports = new RingPortFactory();
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), ports, poolBuffers: 256);
        var state = controller.Forwarder.State;

        Assert.Equal("node2", Assert.Single(state.Peers.All.ToArray()).Name);
        Assert.Equal((RouteKind.Peer, 0), Route(state, "10.244.2.9"));
        Assert.Equal((RouteKind.LocalPod, 1), Route(state, "10.244.1.2"));
        Assert.Equal(RouteKind.Local, Route(state, "10.244.1.1").Kind);
        Assert.Equal(RouteKind.None, Route(state, "10.244.3.9").Kind);
        Assert.Same(ports.Opened["veth-pod1"], state.Ports[1]);
        Assert.Same(ports.Underlay, state.Ports[0]);
    }

    [Fact]
    public void Adding_peers_and_a_pod_adds_routes_and_keeps_the_existing_pod_port()
    {
        var ports = new RingPortFactory();
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), ports, poolBuffers: 256);
        var before = controller.Forwarder.State;

        controller.Apply(ConfigFixture.Load(ConfigFixture.With("Node.Pods", TwoPods, ConfigFixture.With("Peers", ThreePeers))));
        var after = controller.Forwarder.State;

        Assert.Equal(before.Version + 1, after.Version);
        Assert.Equal(["node2", "node3", "node4"], after.Peers.All.ToArray().Select(p => p.Name));
        Assert.Equal((RouteKind.Peer, 1), Route(after, "10.244.3.1"));
        Assert.Equal((RouteKind.Peer, 2), Route(after, "10.244.4.200"));
        Assert.Same(before.Ports[1], after.Ports[1]);
        Assert.Same(ports.Opened["veth-pod2"], after.Ports[2]);
        Assert.Equal((RouteKind.LocalPod, 2), Route(after, "10.244.1.3"));
        Assert.Equal(1, ports.OpenCount("veth-pod1"));
    }

    [Fact]
    public void A_changed_peer_replaces_its_template_and_a_removed_peer_loses_its_route()
    {
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.With("Peers", ThreePeers)), new RingPortFactory(), poolBuffers: 256);

        // node3 moves to a new public IP and VTEP MAC (a re-registered node, flannel #1788); node2 is gone.
        const string peers = """[ { "Name": "node3", "PublicIP": "172.31.77.33", "Subnet": "10.244.3.0/24", "VtepMAC": "0a:58:0a:f4:03:33" }, { "Name": "node4", "PublicIP": "172.31.77.4", "Subnet": "10.244.4.0/24", "VtepMAC": "0a:58:0a:f4:04:00" } ]""";
        controller.Apply(ConfigFixture.Load(ConfigFixture.With("Peers", peers)));
        var state = controller.Forwarder.State;

        Assert.Equal(RouteKind.None, Route(state, "10.244.2.5").Kind);
        var (kind, index) = Route(state, "10.244.3.5");
        Assert.Equal(RouteKind.Peer, kind);
        Assert.Equal(Ipv4Address.Parse("172.31.77.33"), state.Peers[index].PublicIp);
        Assert.Equal(MacAddress.Parse("0a:58:0a:f4:03:33"), state.Templates[index].Peer.VtepMac);
        Assert.Equal(-1, state.Peers.FindByPublicIp(Ip("172.31.77.3")));
    }

    [Fact]
    public void A_removed_pod_port_is_closed_only_after_the_forwarder_polled_without_it()
    {
        var ports = new RingPortFactory();
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.With("Node.Pods", TwoPods)), ports, poolBuffers: 256);
        var forwarder = controller.Forwarder;
        var old = forwarder.State;
        forwarder.Poll();

        controller.Apply(ConfigFixture.Load(ConfigFixture.Example));
        var removed = ports.Opened["veth-pod2"];
        // A poll that began with the old state may still be using the port.
        controller.AfterPoll(old);
        Assert.False(removed.Disposed);
        Assert.Contains(removed, controller.Ports);

        var current = forwarder.State;
        forwarder.Poll();
        controller.AfterPoll(current);
        Assert.True(removed.Disposed);
        Assert.DoesNotContain(removed, controller.Ports);
        Assert.False(ports.Opened["veth-pod1"].Disposed);
        Assert.Null(current.Ports.ElementAtOrDefault(2));
    }

    [Fact]
    public void A_pod_whose_address_changes_keeps_its_port_and_its_route_moves()
    {
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), new RingPortFactory(), poolBuffers: 256);
        var before = controller.Forwarder.State;
        controller.Apply(ConfigFixture.Load(ConfigFixture.With("Node.Pods[0].IP", "\"10.244.1.77\"")));
        var after = controller.Forwarder.State;
        Assert.Same(before.Ports[1], after.Ports[1]);
        Assert.Equal((RouteKind.LocalPod, 1), Route(after, "10.244.1.77"));
        Assert.Equal(RouteKind.LocalSubnet, Route(after, "10.244.1.2").Kind);
    }

    [Theory]
    [InlineData("Node.PublicIP", "\"172.31.77.9\"", "Node.PublicIP: changed from 172.31.77.1 to 172.31.77.9")]
    [InlineData("Node.VtepMAC", "\"0a:58:0a:f4:01:09\"", "Node.VtepMAC: changed")]
    [InlineData("Backend.VNI", "2", "Backend: changed")]
    [InlineData("Node.GatewayMAC", "\"0a:58:0a:f4:01:99\"", "Node.GatewayMAC: changed")]
    public void A_change_to_the_node_itself_is_refused_and_nothing_changes(string path, string value, string expected)
    {
        var ports = new RingPortFactory();
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), ports, poolBuffers: 256);
        var before = controller.Forwarder.State;
        var config = controller.Config;

        var next = ConfigFixture.Load(ConfigFixture.With("Node.Pods", TwoPods, ConfigFixture.With(path, value)));
        var error = Assert.Throws<ConfigException>(() => controller.Apply(next));

        Assert.StartsWith(expected, error.Message);
        Assert.Contains("restart fastoverlay", error.Message);
        Assert.Same(before, controller.Forwarder.State);
        Assert.Same(config, controller.Config);
        Assert.False(ports.Opened.ContainsKey("veth-pod2"));
    }

    [Fact]
    public void A_pod_port_that_fails_to_open_leaves_everything_as_it_was()
    {
        var ports = new RingPortFactory { Failing = "veth-pod2" };
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), ports, poolBuffers: 256);
        var before = controller.Forwarder.State;

        Assert.Throws<IOException>(() => controller.Apply(ConfigFixture.Load(ConfigFixture.With("Node.Pods", TwoPods))));
        Assert.Same(before, controller.Forwarder.State);
        Assert.Single(controller.Config.Node.Pods);
    }

    [Fact]
    public void Dispose_closes_every_port()
    {
        var ports = new RingPortFactory();
        var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.With("Node.Pods", TwoPods)), ports, poolBuffers: 256);
        controller.Dispose();
        Assert.All(ports.Opened.Values, p => Assert.True(p.Disposed));
        Assert.True(ports.Underlay!.Disposed);
    }
}

/// <summary>Ring ports instead of sockets, remembering what was opened and whether it was closed.</summary>
internal sealed class RingPortFactory : IPortFactory
{
    private readonly Dictionary<string, int> _opens = [];

    public Dictionary<string, TrackedPort> Opened { get; } = [];
    public TrackedPort? Underlay { get; private set; }
    public string? Failing { get; init; }

    public int OpenCount(string name) => _opens.GetValueOrDefault(name);

    public IPacketPort OpenUnderlay(NodeOptions node, string? underlayInterface, PacketPool pool) => Underlay = new TrackedPort("underlay");

    public IPacketPort OpenPod(string interfaceName, PacketPool pool)
    {
        if (interfaceName == Failing) throw new IOException($"cannot open {interfaceName}");
        _opens[interfaceName] = OpenCount(interfaceName) + 1;
        return Opened[interfaceName] = new TrackedPort(interfaceName);
    }

    public IPacketPort? OpenExternal(NodeOptions node, string? underlayInterface, PacketPool pool) => null;
}

internal sealed class TrackedPort(string name) : IPacketPort, IDisposable
{
    private readonly RingPort _ring = RingPort.CreatePair(name, name + "-far").A;

    public string Name => name;
    public bool Disposed { get; private set; }
    public int Receive(Span<int> handles) => _ring.Receive(handles);
    public int Transmit(ReadOnlySpan<int> handles) => _ring.Transmit(handles);
    public void Dispose() => Disposed = true;
}
