using System.Text;
using FastOverlay.Config;

namespace FastOverlay.Tests.Config;

/// <summary>Every rule of the configuration: each broken one gives one message that starts with the field's JSON path.</summary>
public sealed class ConfigValidationTests
{
    private const string TwoPeers = """[ { "Name": "node2", "PublicIP": "172.31.77.2", "Subnet": "10.244.2.0/24", "VtepMAC": "0a:58:0a:f4:02:00" }, { "Name": "node3", "PublicIP": "172.31.77.3", "Subnet": "10.244.3.0/24", "VtepMAC": "0a:58:0a:f4:03:00" } ]""";

    [Theory]
    // Keys and types.
    [InlineData("Node.Color", "\"red\"", "Node.Color: unknown key; known keys: Name, PublicIP")]
    [InlineData("Peers[0].Zone", "\"a\"", "Peers[0].Zone: unknown key")]
    [InlineData("Backend.vni", "1", "Backend.vni: unknown key; did you mean 'VNI'?")]
    [InlineData("SubnetLen", "\"24\"", "SubnetLen: expected an integer, got the string \"24\"")]
    [InlineData("Backend.VNI", "1.5", "Backend.VNI: expected an integer, got the number 1.5")]
    [InlineData("Node.Name", "7", "Node.Name: expected a string, got the number 7")]
    [InlineData("Node.Pods", "{}", "Node.Pods: expected an array, got an object")]
    [InlineData("Node.VtepMAC", null, "Node.VtepMAC: required")]
    [InlineData("Peers[0].PublicIP", null, "Peers[0].PublicIP: required")]
    [InlineData("Backend", null, "Backend: required")]
    [InlineData("Backend.Type", null, "Backend.Type: required (flannel would default to \"udp\")")]
    [InlineData("Backend.DirectRouting", "\"yes\"", "Backend.DirectRouting: expected true or false")]
    // Malformed values.
    [InlineData("Node.PublicIP", "\"172.31.77\"", "Node.PublicIP: '172.31.77' is not an IPv4 address")]
    [InlineData("Node.Pods[0].IP", "\"10.244.1.256\"", "Node.Pods[0].IP: '10.244.1.256' is not an IPv4 address")]
    [InlineData("Network", "\"10.244.0.1/16\"", "Network: '10.244.0.1/16' is not an IPv4 CIDR prefix")]
    [InlineData("Peers[0].Subnet", "\"10.244.2.0\"", "Peers[0].Subnet: '10.244.2.0' is not an IPv4 CIDR prefix")]
    [InlineData("Peers[0].VtepMAC", "\"0a:58:zz:f4:02:00\"", "Peers[0].VtepMAC: '0a:58:zz:f4:02:00' is not a MAC address")]
    [InlineData("Node.GatewayMAC", "\"0a:58\"", "Node.GatewayMAC: '0a:58' is not a MAC address")]
    [InlineData("Node.VtepMAC", "\"01:00:5e:00:00:01\"", "Node.VtepMAC: 01:00:5e:00:00:01 is not a unicast address")]
    // Backend.
    [InlineData("Backend.Type", "\"host-gw\"", "Backend.Type: 'host-gw' is not supported")]
    [InlineData("Backend.VNI", "16777216", "Backend.VNI: 16777216 is out of range (0..16777215")]
    [InlineData("Backend.VNI", "-1", "Backend.VNI: -1 is out of range")]
    [InlineData("Backend.Port", "65536", "Backend.Port: 65536 is out of range (1..65535")]
    [InlineData("Backend.Port", "-5", "Backend.Port: -5 is out of range")]
    [InlineData("Backend.MTU", "9000", "Backend.MTU: 9000 is out of range (526..1856")]
    [InlineData("Backend.MTU", "100", "Backend.MTU: 100 is out of range")]
    [InlineData("Backend.DirectRouting", "true", "Backend.DirectRouting: true is not supported")]
    [InlineData("Backend.GBP", "true", "Backend.GBP: true is not supported")]
    [InlineData("Backend.Learning", "true", "Backend.Learning: true is not supported")]
    [InlineData("EnableIPv6", "true", "EnableIPv6: true is not supported")]
    [InlineData("EnableIPv4", "false", "EnableIPv4: false is not supported")]
    // Subnets.
    [InlineData("SubnetLen", "16", "SubnetLen: 16 must be longer than Network's /16")]
    [InlineData("SubnetLen", "31", "SubnetLen: 31 is out of range (1..30)")]
    [InlineData("SubnetMin", "\"10.10.0.0\"", "SubnetMin: 10.10.0.0 is outside Network 10.244.0.0/16")]
    [InlineData("Node.Subnet", "\"10.245.1.0/24\"", "Node.Subnet: 10.245.1.0/24 is outside Network 10.244.0.0/16")]
    [InlineData("Node.Subnet", "\"10.244.1.0/25\"", "Node.Subnet: 10.244.1.0/25 is a /25, but SubnetLen is 24")]
    [InlineData("Peers[0].Subnet", "\"10.10.2.0/24\"", "Peers[0].Subnet: 10.10.2.0/24 is outside Network 10.244.0.0/16")]
    [InlineData("Peers[0].Subnet", "\"10.244.1.0/24\"", "Peers[0].Subnet: 10.244.1.0/24 overlaps Node.Subnet 10.244.1.0/24")]
    // Identities.
    [InlineData("Node.Name", "\"\"", "Node.Name: must not be empty")]
    [InlineData("Peers[0].Name", "\"node1\"", "Peers[0].Name: 'node1' is also Node.Name")]
    [InlineData("Peers[0].PublicIP", "\"172.31.77.1\"", "Peers[0].PublicIP: 172.31.77.1 is also Node.PublicIP")]
    [InlineData("Peers[0].VtepMAC", "\"0a:58:0a:f4:01:00\"", "Peers[0].VtepMAC: 0a:58:0a:f4:01:00 is also Node.VtepMAC")]
    [InlineData("Node.PublicIP", "\"10.244.9.1\"", "Node.PublicIP: 10.244.9.1 is inside Network 10.244.0.0/16")]
    [InlineData("Peers[0].PublicIP", "\"0.0.0.0\"", "Peers[0].PublicIP: 0.0.0.0 is not a unicast address")]
    [InlineData("Node.GatewayMAC", "\"0a:58:0a:f4:01:00\"", "Node.GatewayMAC: 0a:58:0a:f4:01:00 is also Node.VtepMAC")]
    [InlineData("Node.GatewayMAC", "\"ee:ee:00:00:00:01\"", "Node.GatewayMAC: ee:ee:00:00:00:01 is the MAC of veth-pod1")]
    // Pods and interfaces.
    [InlineData("Node.Pods[0].IP", "\"10.244.2.2\"", "Node.Pods[0].IP: 10.244.2.2 is outside Node.Subnet 10.244.1.0/24")]
    [InlineData("Node.Pods[0].IP", "\"10.244.1.1\"", "Node.Pods[0].IP: 10.244.1.1 is the gateway")]
    [InlineData("Node.Pods[0].IP", "\"10.244.1.0\"", "Node.Pods[0].IP: 10.244.1.0 is Node.Subnet's network address")]
    [InlineData("Node.Pods[0].IP", "\"10.244.1.255\"", "Node.Pods[0].IP: 10.244.1.255 is Node.Subnet's broadcast address")]
    [InlineData("Node.Pods[0].Interface", "\"veth-nope\"", "Node.Pods[0].Interface: no interface 'veth-nope' on this node (/sys/class/net/veth-nope does not exist)")]
    [InlineData("Node.Pods[0].Interface", "\"../etc\"", "Node.Pods[0].Interface: '../etc' is not a valid interface name")]
    [InlineData("Node.Pods[0].Interface", "\"eth0\"", "Node.Pods[0].Interface: 'eth0' is the underlay (Node.Underlay)")]
    [InlineData("Node.Underlay", "\"eth9\"", "Node.Underlay: no interface 'eth9' on this node")]
    [InlineData("Node.HostInterface", "\"fohost-nope\"", "Node.HostInterface: no interface 'fohost-nope' on this node")]
    [InlineData("Node.HostInterface", "\"eth0\"", "Node.HostInterface: 'eth0' is the underlay (Node.Underlay)")]
    [InlineData("Node.HostInterface", "\"veth-pod1\"", "Node.Pods[0].Interface: 'veth-pod1' is the host port (Node.HostInterface)")]
    [InlineData("Node.Pods", """[ { "Interface": "veth-pod1", "IP": "10.244.1.2" }, { "Interface": "veth-pod1", "IP": "10.244.1.3" } ]""", "Node.Pods[1].Interface: 'veth-pod1' is also Node.Pods[0].Interface")]
    [InlineData("Node.Pods", """[ { "Interface": "veth-pod1", "IP": "10.244.1.2" }, { "Interface": "veth-pod2", "IP": "10.244.1.2" } ]""", "Node.Pods[1].IP: 10.244.1.2 is also Node.Pods[0].IP")]
    public void A_broken_rule_names_its_field(string path, string? value, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigFixture.Load(ConfigFixture.With(path, value)));
        Assert.StartsWith(expected, error.Message);
    }

    [Theory]
    [InlineData("""[ { "Name": "node2", "PublicIP": "172.31.77.2", "Subnet": "10.244.2.0/24", "VtepMAC": "0a:58:0a:f4:02:00" }, { "Name": "node3", "PublicIP": "172.31.77.3", "Subnet": "10.244.2.0/24", "VtepMAC": "0a:58:0a:f4:03:00" } ]""", "Peers[1].Subnet: 10.244.2.0/24 overlaps Peers[0].Subnet 10.244.2.0/24")]
    [InlineData("""[ { "Name": "node2", "PublicIP": "172.31.77.2", "Subnet": "10.244.2.0/24", "VtepMAC": "0a:58:0a:f4:02:00" }, { "Name": "node2", "PublicIP": "172.31.77.3", "Subnet": "10.244.3.0/24", "VtepMAC": "0a:58:0a:f4:03:00" } ]""", "Peers[1].Name: 'node2' is also Peers[0].Name")]
    [InlineData("""[ { "Name": "node2", "PublicIP": "172.31.77.2", "Subnet": "10.244.2.0/24", "VtepMAC": "0a:58:0a:f4:02:00" }, { "Name": "node3", "PublicIP": "172.31.77.2", "Subnet": "10.244.3.0/24", "VtepMAC": "0a:58:0a:f4:03:00" } ]""", "Peers[1].PublicIP: 172.31.77.2 is also Peers[0].PublicIP")]
    [InlineData("""[ { "Name": "node2", "PublicIP": "172.31.77.2", "Subnet": "10.244.2.0/24", "VtepMAC": "0a:58:0a:f4:02:00" }, { "Name": "node3", "PublicIP": "172.31.77.3", "Subnet": "10.244.3.0/24", "VtepMAC": "0a:58:0a:f4:02:00" } ]""", "Peers[1].VtepMAC: 0a:58:0a:f4:02:00 is also Peers[0].VtepMAC")]
    public void Peers_may_not_clash_with_each_other(string peers, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigFixture.Load(ConfigFixture.With("Peers", peers)));
        Assert.StartsWith(expected, error.Message);
    }

    [Fact]
    public void A_host_interface_reaches_the_plan_and_is_optional()
    {
        Assert.Equal("veth-pod2", NodePlan.From(ConfigFixture.Load(ConfigFixture.With("Node.HostInterface", "\"veth-pod2\""))).HostInterface);
        Assert.Null(NodePlan.From(ConfigFixture.Load(ConfigFixture.Example)).HostInterface);
    }

    [Fact]
    public void Two_peers_that_do_not_clash_are_fine() =>
        Assert.Equal(2, ConfigFixture.Load(ConfigFixture.With("Peers", TwoPeers)).Peers.Count);

    [Fact]
    public void A_key_given_twice_is_an_error()
    {
        var json = ConfigFixture.Example.Replace("\"SubnetLen\": 24,", "\"SubnetLen\": 24, \"SubnetLen\": 25,", StringComparison.Ordinal);
        Assert.StartsWith("SubnetLen: appears twice", Assert.Throws<ConfigException>(() => ConfigFixture.Load(json)).Message);
    }

    [Fact]
    public void Text_that_is_not_JSON_says_where()
    {
        var error = Assert.Throws<ConfigException>(() => ConfigFixture.Load("{ \"Network\": "));
        Assert.StartsWith("not valid JSON:", error.Message);
        Assert.Contains("LineNumber", error.Message);
    }

    [Fact]
    public void An_unreadable_file_is_a_config_error()
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.LoadFile("/nonexistent/fastoverlay.json", ConfigFixture.Interfaces()));
        Assert.StartsWith("cannot read /nonexistent/fastoverlay.json", error.Message);
    }

    [Fact]
    public void The_interface_check_reads_sysfs_by_default()
    {
        var catalog = new SysfsInterfaceCatalog();
        Assert.True(catalog.Exists("lo"));
        Assert.Equal(65536, catalog.Mtu("lo"));
        Assert.False(catalog.Exists("fo-no-such-if"));
        _ = Encoding.UTF8;
    }
}
