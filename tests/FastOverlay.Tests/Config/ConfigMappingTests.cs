using FastOverlay.Config;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Config;

/// <summary>A valid file maps to the NodeOptions, peers and pods the data plane runs with, with flannel's defaults.</summary>
public sealed class ConfigMappingTests
{
    [Fact]
    public void The_example_maps_to_node_options_peers_and_pods()
    {
        var plan = NodePlan.From(ConfigFixture.Load(ConfigFixture.Example));
        var o = plan.Options;
        Assert.Equal("node1", o.Name);
        Assert.Equal(Ipv4Address.Parse("172.31.77.1"), o.PublicIp);
        Assert.Equal(Ipv4Prefix.Parse("10.244.1.0/24"), o.Subnet);
        Assert.Equal(MacAddress.Parse("0a:58:0a:f4:01:00"), o.VtepMac);
        Assert.Equal(1u, o.Vni);
        Assert.Equal(8472, o.VxlanPort);
        Assert.Equal(1500, o.UnderlayMtu);
        Assert.Equal(1450, o.InnerMtu);
        Assert.Equal(Ipv4Address.Parse("10.244.1.1").Value, o.GatewayIp);
        // Default gateway MAC: 0a:58 and the gateway address, not any interface's MAC.
        Assert.Equal(MacAddress.Parse("0a:58:0a:f4:01:01"), o.GatewayMac);
        var peer = Assert.Single(plan.Peers);
        Assert.Equal(("node2", Ipv4Address.Parse("172.31.77.2"), Ipv4Prefix.Parse("10.244.2.0/24"), MacAddress.Parse("0a:58:0a:f4:02:00")), (peer.Name, peer.PublicIp, peer.Subnet, peer.VtepMac));
        Assert.Equal(new PodConfig("veth-pod1", Ipv4Address.Parse("10.244.1.2")), Assert.Single(plan.Pods));
        Assert.Equal("eth0", plan.UnderlayInterface);
    }

    [Fact]
    public void A_plain_flannel_net_conf_with_a_node_section_loads_with_flannel_defaults()
    {
        const string json = """
            {
              "Network": "10.244.0.0/16",
              "EnableNFTables": false,
              "SubnetMin": "10.244.1.0",
              "SubnetMax": "10.244.200.0",
              "Backend": { "Type": "VXLAN", "Port": 0, "DirectRouting": false, "GBP": false, "Learning": false },
              "Node": { "Name": "n", "PublicIP": "192.168.1.10", "Subnet": "10.244.7.0/24", "VtepMAC": "0e:2a:00:00:00:07", "GatewayMAC": "0e:2a:00:00:01:07" }
            }
            """;
        var config = ConfigFixture.Load(json);
        Assert.Equal(24, config.SubnetLen);
        Assert.Equal(1u, config.Backend.Vni);
        Assert.Equal(8472, config.Backend.Port);
        Assert.Equal(1450, config.Backend.Mtu);
        Assert.Empty(config.Peers);
        Assert.Empty(config.Node.Pods);
        Assert.Equal(MacAddress.Parse("0e:2a:00:00:01:07"), NodePlan.From(config).Options.GatewayMac);
    }

    [Theory]
    [InlineData(9000, 1856)]
    [InlineData(1500, 1450)]
    [InlineData(1400, 1350)]
    public void Without_an_MTU_the_underlay_interface_decides(int underlayMtu, int expected)
    {
        var interfaces = ConfigFixture.Interfaces();
        interfaces["eth0"] = (underlayMtu, null);
        var config = ConfigFixture.Load(ConfigFixture.With("Backend.MTU", null), interfaces);
        Assert.Equal(expected, config.Backend.Mtu);
    }

    [Fact]
    public void A_small_network_gets_flannels_default_subnet_length()
    {
        var json = ConfigFixture.With("SubnetLen", null, ConfigFixture.With("Network", "\"10.244.0.0/23\""));
        var error = Assert.Throws<ConfigException>(() => ConfigFixture.Load(json));
        // /23 is smaller than /22: leases are /25, so the /24 node subnet is rejected by length.
        Assert.StartsWith("Node.Subnet: 10.244.1.0/24 is a /24, but SubnetLen is 25", error.Message);
    }
}
