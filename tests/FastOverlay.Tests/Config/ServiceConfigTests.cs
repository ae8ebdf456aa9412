using System.Text;
using FastOverlay.Config;
using FastOverlay.Control.Subnets;
using FastOverlay.Tests.Control;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Config;

/// <summary>The file's "Services" and "ServiceOptions": the records they become, their defaults, and every rule naming its field.</summary>
public sealed class ServiceConfigTests
{
    // Network 10.244.0.0/16, node PublicIP 172.31.77.1, VXLAN port 8472 (ConfigFixture.Example).
    private const string Services = """
        [
          { "Name": "web", "Namespace": "shop", "ClusterIP": "10.96.0.10", "Type": "LoadBalancer",
            "Ports": [ { "Name": "http", "Protocol": "TCP", "Port": 80, "TargetPort": 8080, "NodePort": 30080 },
                       { "Name": "dns", "Protocol": "UDP", "Port": 53, "NodePort": 30053 } ],
            "ExternalTrafficPolicy": "Local", "InternalTrafficPolicy": "Local",
            "SessionAffinity": "ClientIP", "SessionAffinityTimeoutSeconds": 600,
            "LoadBalancerIPs": [ "192.0.2.10" ], "ExternalIPs": [ "198.51.100.7" ], "HealthCheckNodePort": 32000,
            "LoadBalancerSourceRanges": [ "203.0.113.0/24", "198.51.100.77/16" ],
            "Endpoints": [ { "IP": "10.244.1.2", "Node": "node1" },
                           { "IP": "10.244.2.5", "Node": "node2", "Ready": false, "Serving": true, "Terminating": true } ] },
          { "Name": "api", "ClusterIP": "10.96.0.11", "Ports": [ { "Port": 80 } ], "Endpoints": [ { "IP": "10.244.2.9", "Ready": false } ] },
          { "Name": "db", "ClusterIP": "None", "Ports": [ { "Port": 5432 } ] },
          { "Name": "ext", "Type": "ExternalName", "ExternalName": "db.example.com." },
          { "Name": "metrics", "ClusterIP": "10.96.0.12", "Type": "NodePort", "Ports": [ { "Port": 9100, "NodePort": 30100 } ] }
        ]
        """;

    private const string Options = """
        { "NodePortRange": "30000-32767", "MaglevTableSize": 65537, "ConntrackCapacity": 262144, "TcpSynTimeoutSeconds": 20,
          "TcpEstablishedTimeoutSeconds": 86400, "TcpClosingTimeoutSeconds": 5, "UdpTimeoutSeconds": 25, "UdpStreamTimeoutSeconds": 180,
          "IcmpTimeoutSeconds": 15, "HairpinAddress": "169.254.42.1" }
        """;

    private static readonly string Example = ConfigFixture.With("ServiceOptions", Options, ConfigFixture.With("Services", Services));

    private static Ipv4Address Ip(string text) => Ipv4Address.Parse(text);

    [Fact]
    public void The_full_example_becomes_the_expected_records()
    {
        var config = ConfigFixture.Load(Example);

        Assert.Equal(5, config.Services.Count);
        AssertService(new ServiceConfig
        {
            Name = "web", Namespace = "shop", ClusterIp = Ip("10.96.0.10"), Type = ServiceType.LoadBalancer,
            Ports = [new("http", L4Protocol.Tcp, 80, 8080, 30080), new("dns", L4Protocol.Udp, 53, 53, 30053)],
            ExternalTrafficPolicy = TrafficPolicy.Local, InternalTrafficPolicy = TrafficPolicy.Local,
            SessionAffinity = SessionAffinity.ClientIP, SessionAffinityTimeoutSeconds = 600,
            LoadBalancerIps = [Ip("192.0.2.10")], ExternalIps = [Ip("198.51.100.7")], HealthCheckNodePort = 32000,
            // Host bits are dropped, as the API server's ParseCIDR does.
            LoadBalancerSourceRanges = [Ipv4Prefix.Parse("203.0.113.0/24"), Ipv4Prefix.Parse("198.51.0.0/16")],
            Endpoints = [new(Ip("10.244.1.2"), "node1"), new(Ip("10.244.2.5"), "node2", Ready: false, Serving: true, Terminating: true)],
        }, config.Services[0]);
        AssertService(new ServiceConfig
        {
            Name = "api", ClusterIp = Ip("10.96.0.11"), Ports = [new(null, L4Protocol.Tcp, 80, 80, null)],
            Endpoints = [new(Ip("10.244.2.9"), null, Ready: false, Serving: false)],
        }, config.Services[1]);
        AssertService(new ServiceConfig { Name = "db", ClusterIp = null, Ports = [new(null, L4Protocol.Tcp, 5432, 5432, null)] }, config.Services[2]);
        AssertService(new ServiceConfig { Name = "ext", Type = ServiceType.ExternalName, ExternalName = "db.example.com." }, config.Services[3]);
        Assert.Equal("default/metrics", config.Services[4].Key);

        Assert.Equal(new ServiceOptionsConfig
        {
            NodePortMin = 30000, NodePortMax = 32767, MaglevTableSize = 65537, ConntrackCapacity = 262144, TcpSynTimeoutSeconds = 20,
            TcpEstablishedTimeoutSeconds = 86400, TcpClosingTimeoutSeconds = 5, UdpTimeoutSeconds = 25, UdpStreamTimeoutSeconds = 180,
            IcmpTimeoutSeconds = 15, HairpinAddress = Ip("169.254.42.1"),
        }, config.ServiceOptions);
    }

    [Fact]
    public void Omitted_fields_take_kubernetes_defaults()
    {
        var config = ConfigFixture.Load(ConfigFixture.With("Services", """
            [ { "Name": "a", "ClusterIP": "10.96.0.1", "Ports": [ { "Port": 80 } ],
                "Endpoints": [ { "IP": "10.244.1.5" }, { "IP": "10.244.1.6", "Ready": false } ] } ]
            """));
        var s = Assert.Single(config.Services);
        Assert.Equal(("default", ServiceType.ClusterIP, TrafficPolicy.Cluster, TrafficPolicy.Cluster, SessionAffinity.None, 10800),
            (s.Namespace, s.Type, s.ExternalTrafficPolicy, s.InternalTrafficPolicy, s.SessionAffinity, s.SessionAffinityTimeoutSeconds));
        Assert.Equal(new ServicePortConfig(null, L4Protocol.Tcp, 80, 80, null), Assert.Single(s.Ports));
        Assert.Empty(s.LoadBalancerIps);
        Assert.Empty(s.ExternalIps);
        Assert.Null(s.HealthCheckNodePort);
        Assert.Null(s.ExternalName);
        // Serving defaults to Ready; Terminating to false.
        Assert.Equal([new EndpointConfig(Ip("10.244.1.5"), null, true, true, false), new EndpointConfig(Ip("10.244.1.6"), null, false, false, false)], s.Endpoints);
        Assert.Equal(new ServiceOptionsConfig(), config.ServiceOptions);
        Assert.Equal((30000, 32767, 16381, 131072), (config.ServiceOptions.NodePortMin, config.ServiceOptions.NodePortMax, config.ServiceOptions.MaglevTableSize, config.ServiceOptions.ConntrackCapacity));

        var none = ConfigFixture.Load(ConfigFixture.Example);
        Assert.Empty(none.Services);
        Assert.Equal(new ServiceOptionsConfig(), none.ServiceOptions);
    }

    [Theory]
    // Keys, names and enumerations.
    [InlineData("Services[0].Selector", "{}", "Services[0].Selector: unknown key; known keys: Name, Namespace")]
    [InlineData("Services[0].clusterIP", "\"10.96.0.99\"", "Services[0].clusterIP: unknown key; did you mean 'ClusterIP'?")]
    [InlineData("Services[0].Ports[0].AppProtocol", "\"http\"", "Services[0].Ports[0].AppProtocol: unknown key")]
    [InlineData("Services[0].Endpoints[0].Zone", "\"a\"", "Services[0].Endpoints[0].Zone: unknown key")]
    [InlineData("ServiceOptions.Mode", "\"ipvs\"", "ServiceOptions.Mode: unknown key")]
    [InlineData("Services[1].Name", null, "Services[1].Name: required")]
    [InlineData("Services[1].Name", "\"Api\"", "Services[1].Name: 'Api' is not a Service name")]
    [InlineData("Services[1].Name", "\"1api\"", "Services[1].Name: '1api' is not a Service name: lower-case letters, digits and '-', starting with a letter")]
    [InlineData("Services[1].Namespace", "\"kube_system\"", "Services[1].Namespace: 'kube_system' is not a namespace")]
    [InlineData("Services[2].Name", "\"api\"", "Services[2].Name: 'default/api' is also Services[1].Name")]
    [InlineData("Services[1].Type", "\"clusterip\"", "Services[1].Type: 'clusterip' is not one of ClusterIP, NodePort, LoadBalancer, ExternalName; Kubernetes spells it 'ClusterIP'")]
    // ClusterIP.
    [InlineData("Services[1].ClusterIP", null, "Services[1].ClusterIP: required")]
    [InlineData("Services[1].ClusterIP", "\"10.96.0\"", "Services[1].ClusterIP: '10.96.0' is not an IPv4 address or \"None\"")]
    [InlineData("Services[1].ClusterIP", "\"10.244.3.3\"", "Services[1].ClusterIP: 10.244.3.3 is inside Network 10.244.0.0/16")]
    [InlineData("Services[1].ClusterIP", "\"172.31.77.1\"", "Services[1].ClusterIP: 172.31.77.1 is this node's PublicIP")]
    [InlineData("Services[1].ClusterIP", "\"127.0.0.1\"", "Services[1].ClusterIP: 127.0.0.1 is a loopback address")]
    [InlineData("Services[1].ClusterIP", "\"0.0.0.0\"", "Services[1].ClusterIP: 0.0.0.0 is in 0.0.0.0/8")]
    [InlineData("Services[0].ClusterIP", "\"None\"", "Services[0].ClusterIP: may not be \"None\" for LoadBalancer Services")]
    [InlineData("Services[1].ClusterIP", "\"10.96.0.10\"", "Services[1].ClusterIP: 10.96.0.10 is also Services[0].ClusterIP")]
    [InlineData("Services[1].ClusterIP", "\"198.51.100.7\"", "Services[1].ClusterIP: 198.51.100.7:80/TCP is also served by Services[0].ExternalIPs[0]")]
    // Ports.
    [InlineData("Services[1].Ports", "[]", "Services[1].Ports: required: at least one port")]
    [InlineData("Services[1].Ports[0].Protocol", "\"SCTP\"", "Services[1].Ports[0].Protocol: SCTP is not supported")]
    [InlineData("Services[1].Ports[0].Protocol", "\"tcp\"", "Services[1].Ports[0].Protocol: 'tcp' is not one of TCP, UDP; Kubernetes spells it 'TCP'")]
    [InlineData("Services[1].Ports[0].Port", null, "Services[1].Ports[0].Port: required")]
    [InlineData("Services[1].Ports[0].Port", "0", "Services[1].Ports[0].Port: 0 is out of range (1..65535)")]
    [InlineData("Services[1].Ports[0].Port", "65536", "Services[1].Ports[0].Port: 65536 is out of range (1..65535)")]
    [InlineData("Services[1].Ports[0].TargetPort", "\"https\"", "Services[1].Ports[0].TargetPort: the string \"https\" is a named port, which is not supported: an EndpointSlice carries")]
    [InlineData("Services[1].Ports[0].TargetPort", "0", "Services[1].Ports[0].TargetPort: 0 is out of range (1..65535)")]
    [InlineData("Services[0].Ports[1].Name", null, "Services[0].Ports[1].Name: required when a Service has more than one port")]
    [InlineData("Services[0].Ports[1].Name", "\"http\"", "Services[0].Ports[1].Name: 'http' is also Services[0].Ports[0].Name")]
    [InlineData("Services[0].Ports[1].Name", "\"DNS\"", "Services[0].Ports[1].Name: 'DNS' is not a port name")]
    [InlineData("Services[0].Ports", """[ { "Name": "http", "Port": 80, "NodePort": 30080 }, { "Name": "alt", "Port": 80, "NodePort": 30081 } ]""", "Services[0].Ports[1].Port: 80/TCP is also Services[0].Ports[0].Port")]
    [InlineData("Services[0].Ports", """[ { "Name": "http", "Port": 80, "NodePort": 30080 }, { "Name": "alt", "Port": 81, "NodePort": 30080 } ]""", "Services[0].Ports[1].NodePort: 30080/TCP is also Services[0].Ports[0].NodePort")]
    // NodePorts.
    [InlineData("Services[1].Ports[0].NodePort", "30099", "Services[1].Ports[0].NodePort: only for Type NodePort or LoadBalancer (this Service is ClusterIP)")]
    [InlineData("Services[4].Ports[0].NodePort", null, "Services[4].Ports[0].NodePort: required for a NodePort Service")]
    [InlineData("Services[0].Ports[0].NodePort", "29999", "Services[0].Ports[0].NodePort: 29999 is outside ServiceOptions.NodePortRange 30000-32767")]
    [InlineData("Services[0].Ports[0].NodePort", "70000", "Services[0].Ports[0].NodePort: 70000 is out of range (1..65535)")]
    [InlineData("Services[0].Ports[1].NodePort", "30080", null)] // 30080/UDP next to 30080/TCP: Kubernetes allows it too
    [InlineData("Services[4].Ports[0].NodePort", "30080", "Services[4].Ports[0].NodePort: 30080/TCP is also Services[0].Ports[0].NodePort")]
    [InlineData("Services[4].Ports[0].NodePort", "30053", null)] // 30053/TCP here, 30053/UDP in web
    [InlineData("Services[4].Ports[0].NodePort", "32000", "Services[4].Ports[0].NodePort: 32000/TCP is also Services[0].HealthCheckNodePort")]
    // Traffic policies and the health check.
    [InlineData("Services[1].ExternalTrafficPolicy", "\"Local\"", "Services[1].ExternalTrafficPolicy: Local applies to external traffic only")]
    [InlineData("Services[1].ExternalTrafficPolicy", "\"Global\"", "Services[1].ExternalTrafficPolicy: 'Global' is not one of Cluster, Local")]
    [InlineData("Services[1].InternalTrafficPolicy", "\"local\"", "Services[1].InternalTrafficPolicy: 'local' is not one of Cluster, Local; Kubernetes spells it 'Local'")]
    [InlineData("Services[0].ExternalTrafficPolicy", "\"Cluster\"", "Services[0].HealthCheckNodePort: may only be set when Type is LoadBalancer and ExternalTrafficPolicy is Local")]
    [InlineData("Services[4].HealthCheckNodePort", "32001", "Services[4].HealthCheckNodePort: may only be set when Type is LoadBalancer")]
    [InlineData("Services[0].HealthCheckNodePort", "40000", "Services[0].HealthCheckNodePort: 40000 is outside ServiceOptions.NodePortRange 30000-32767")]
    [InlineData("Services[0].HealthCheckNodePort", "30080", "Services[0].HealthCheckNodePort: 30080/TCP is also Services[0].Ports[0].NodePort")]
    [InlineData("Services[0].HealthCheckNodePort", "30053", null)] // the health check is TCP, 30053 is a UDP NodePort
    // Session affinity.
    [InlineData("Services[0].SessionAffinity", "\"Sticky\"", "Services[0].SessionAffinity: 'Sticky' is not one of None, ClientIP")]
    [InlineData("Services[0].SessionAffinityTimeoutSeconds", "0", "Services[0].SessionAffinityTimeoutSeconds: 0 is out of range (1..86400")]
    [InlineData("Services[0].SessionAffinityTimeoutSeconds", "86401", "Services[0].SessionAffinityTimeoutSeconds: 86401 is out of range (1..86400")]
    [InlineData("Services[1].SessionAffinityTimeoutSeconds", "60", "Services[1].SessionAffinityTimeoutSeconds: must not be set when SessionAffinity is None")]
    // External and load-balancer addresses.
    [InlineData("Services[1].LoadBalancerIPs", """[ "192.0.2.20" ]""", "Services[1].LoadBalancerIPs: only for Type LoadBalancer (this Service is ClusterIP)")]
    [InlineData("Services[0].LoadBalancerIPs", """[ "10.244.7.7" ]""", "Services[0].LoadBalancerIPs[0]: 10.244.7.7 is inside Network 10.244.0.0/16")]
    [InlineData("Services[0].LoadBalancerIPs", """[ "172.31.77.1" ]""", "Services[0].LoadBalancerIPs[0]: 172.31.77.1 is this node's PublicIP")]
    [InlineData("Services[0].LoadBalancerIPs", """[ "192.0.2.10", "192.0.2.10" ]""", "Services[0].LoadBalancerIPs[1]: 192.0.2.10 is also Services[0].LoadBalancerIPs[0]")]
    [InlineData("Services[0].LoadBalancerIPs", """[ "192.0.2" ]""", "Services[0].LoadBalancerIPs[0]: '192.0.2' is not an IPv4 address")]
    [InlineData("Services[4].LoadBalancerSourceRanges", """[ "10.0.0.0/8" ]""", "Services[4].LoadBalancerSourceRanges: only for Type LoadBalancer (this Service is NodePort)")]
    [InlineData("Services[0].LoadBalancerSourceRanges", """[ "10.0.0.0" ]""", "Services[0].LoadBalancerSourceRanges[0]: '10.0.0.0' is not an IPv4 CIDR")]
    [InlineData("Services[0].LoadBalancerSourceRanges", """[ "10.0.0.0/33" ]""", "Services[0].LoadBalancerSourceRanges[0]: '10.0.0.0/33' is not an IPv4 CIDR")]
    [InlineData("Services[0].LoadBalancerSourceRanges", """[ 8 ]""", "Services[0].LoadBalancerSourceRanges[0]: expected a string")]
    [InlineData("Services[1].ExternalIPs", """[ "224.0.0.1" ]""", "Services[1].ExternalIPs[0]: 224.0.0.1 is a multicast, reserved or broadcast address")]
    [InlineData("Services[1].ExternalIPs", """[ "169.254.1.1" ]""", "Services[1].ExternalIPs[0]: 169.254.1.1 is a link-local address")]
    [InlineData("Services[1].ExternalIPs", """[ "198.51.100.7" ]""", "Services[1].ExternalIPs[0]: 198.51.100.7:80/TCP is also served by Services[0].ExternalIPs[0]")]
    [InlineData("Services[1].ExternalIPs", """[ "192.0.2.10" ]""", "Services[1].ExternalIPs[0]: 192.0.2.10:80/TCP is also served by Services[0].LoadBalancerIPs[0]")]
    [InlineData("Services[0].ExternalIPs", """[ "10.96.0.10" ]""", "Services[0].ExternalIPs[0]: 10.96.0.10:80/TCP is also served by Services[0].ClusterIP")]
    // Endpoints.
    [InlineData("Services[1].Endpoints[0].IP", null, "Services[1].Endpoints[0].IP: required")]
    [InlineData("Services[1].Endpoints[0].IP", "\"127.0.0.1\"", "Services[1].Endpoints[0].IP: 127.0.0.1 is a loopback address")]
    [InlineData("Services[0].Endpoints[1].IP", "\"10.244.1.2\"", "Services[0].Endpoints[1].IP: 10.244.1.2 is also Services[0].Endpoints[0].IP")]
    [InlineData("Services[0].Endpoints[1].Ready", "true", "Services[0].Endpoints[1].Terminating: true with Ready true: a terminating endpoint is never ready")]
    [InlineData("Services[0].Endpoints[0].Serving", "false", "Services[0].Endpoints[0].Serving: false with Ready true")]
    [InlineData("Services[0].Endpoints[0].Ready", "\"yes\"", "Services[0].Endpoints[0].Ready: expected true or false")]
    [InlineData("Services[0].Endpoints[0].Node", "\"Node_1\"", "Services[0].Endpoints[0].Node: 'Node_1' is not a node name")]
    // ExternalName.
    [InlineData("Services[3].ExternalName", null, "Services[3].ExternalName: required for Type ExternalName")]
    [InlineData("Services[3].ExternalName", "\"db_example\"", "Services[3].ExternalName: 'db_example' is not a DNS name")]
    [InlineData("Services[3].ClusterIP", "\"10.96.0.40\"", "Services[3].ClusterIP: 10.96.0.40: may not be set for ExternalName Services")]
    [InlineData("Services[3].ExternalIPs", """[ "192.0.2.30" ]""", "Services[3].ExternalIPs: not served for ExternalName Services")]
    [InlineData("Services[1].ExternalName", "\"x.example.com\"", "Services[1].ExternalName: only for Type ExternalName")]
    [InlineData("Services[3].Ports", """[ { "Port": 80, "NodePort": 30080 } ]""", null)] // ignored: DNS's job, never served
    // ServiceOptions.
    [InlineData("ServiceOptions.NodePortRange", "\"30000\"", "ServiceOptions.NodePortRange: '30000' is not a port range (expected lo-hi, e.g. 30000-32767)")]
    [InlineData("ServiceOptions.NodePortRange", "\"32767-30000\"", "ServiceOptions.NodePortRange: '32767-30000' is not a port range within 1..65535 with lo <= hi")]
    [InlineData("ServiceOptions.NodePortRange", "\"0-100\"", "ServiceOptions.NodePortRange: '0-100' is not a port range within 1..65535")]
    [InlineData("ServiceOptions.NodePortRange", "\"30000-30100\"", "Services[0].HealthCheckNodePort: 32000 is outside ServiceOptions.NodePortRange 30000-30100")]
    [InlineData("ServiceOptions.MaglevTableSize", "16384", "ServiceOptions.MaglevTableSize: 16384 is not a prime in 7..131071")]
    [InlineData("ServiceOptions.MaglevTableSize", "5", "ServiceOptions.MaglevTableSize: 5 is out of range (7..131071, a prime)")]
    [InlineData("ServiceOptions.MaglevTableSize", "16381", null)]
    [InlineData("ServiceOptions.ConntrackCapacity", "1023", "ServiceOptions.ConntrackCapacity: 1023 is out of range (1024..16777216")]
    [InlineData("ServiceOptions.ConntrackCapacity", "16777217", "ServiceOptions.ConntrackCapacity: 16777217 is out of range")]
    [InlineData("ServiceOptions.TcpSynTimeoutSeconds", "0", "ServiceOptions.TcpSynTimeoutSeconds: 0 is out of range (at least 1 second)")]
    [InlineData("ServiceOptions.TcpEstablishedTimeoutSeconds", "-1", "ServiceOptions.TcpEstablishedTimeoutSeconds: -1 is out of range")]
    [InlineData("ServiceOptions.TcpClosingTimeoutSeconds", "0", "ServiceOptions.TcpClosingTimeoutSeconds: 0 is out of range")]
    [InlineData("ServiceOptions.UdpTimeoutSeconds", "0", "ServiceOptions.UdpTimeoutSeconds: 0 is out of range")]
    [InlineData("ServiceOptions.UdpStreamTimeoutSeconds", "0", "ServiceOptions.UdpStreamTimeoutSeconds: 0 is out of range")]
    [InlineData("ServiceOptions.IcmpTimeoutSeconds", "1.5", "ServiceOptions.IcmpTimeoutSeconds: expected an integer")]
    [InlineData("ServiceOptions.HairpinAddress", "\"10.244.0.9\"", "ServiceOptions.HairpinAddress: 10.244.0.9 is inside Network 10.244.0.0/16")]
    [InlineData("ServiceOptions.HairpinAddress", "\"10.244\"", "ServiceOptions.HairpinAddress: '10.244' is not an IPv4 address")]
    [InlineData("ServiceOptions.HairpinAddress", "\"255.255.255.255\"", "ServiceOptions.HairpinAddress: 255.255.255.255 is not a unicast address")]
    public void A_broken_rule_names_its_field(string path, string? value, string? expected)
    {
        var json = ConfigFixture.With(path, value, Example);
        if (expected is null)
        {
            ConfigFixture.Load(json);
            return;
        }
        var error = Assert.Throws<ConfigException>(() => ConfigFixture.Load(json));
        Assert.StartsWith(expected, error.Message);
    }

    [Fact]
    public void Services_may_share_an_external_address_on_different_ports()
    {
        var json = ConfigFixture.With("Services[1].ExternalIPs", """[ "198.51.100.7", "192.0.2.10" ]""", ConfigFixture.With("Services[1].Ports[0].Port", "443", Example));
        Assert.Equal([Ip("198.51.100.7"), Ip("192.0.2.10")], ConfigFixture.Load(json).Services[1].ExternalIps);
    }

    [Fact]
    public void A_udp_node_port_on_the_vxlan_port_is_refused()
    {
        var json = ConfigFixture.With("ServiceOptions.NodePortRange", "\"1-65535\"", ConfigFixture.With("Services[0].Ports[1].NodePort", "8472", Example));
        Assert.StartsWith("Services[0].Ports[1].NodePort: 8472/UDP is Backend.Port", Assert.Throws<ConfigException>(() => ConfigFixture.Load(json)).Message);
        // TCP 8472 is another port.
        ConfigFixture.Load(ConfigFixture.With("ServiceOptions.NodePortRange", "\"1-65535\"", ConfigFixture.With("Services[0].Ports[0].NodePort", "8472", Example)));
    }

    [Fact]
    public void One_service_parses_from_an_etcd_value_with_paths_from_its_root()
    {
        var value = Encoding.UTF8.GetBytes("""{ "Name": "api", "Namespace": "prod", "ClusterIP": "10.96.5.5", "Ports": [ { "Port": 443, "TargetPort": 8443 } ] }""");
        var service = ServiceConfigParser.ParseOne(value);
        Assert.Equal(("prod/api", Ip("10.96.5.5"), (ushort)8443), (service.Key, service.ClusterIp!.Value, service.Ports[0].TargetPort));

        Assert.Equal("Ports[0].Port: 0 is out of range (1..65535)",
            Assert.Throws<ConfigException>(() => ServiceConfigParser.ParseOne(Encoding.UTF8.GetBytes("""{ "Name": "a", "ClusterIP": "10.96.0.1", "Ports": [ { "Port": 0 } ] }"""))).Message);
        Assert.StartsWith("not valid JSON", Assert.Throws<ConfigException>(() => ServiceConfigParser.ParseOne(Encoding.UTF8.GetBytes("{"))).Message);
        Assert.StartsWith("expected an object, got an array", Assert.Throws<ConfigException>(() => ServiceConfigParser.ParseOne(Encoding.UTF8.GetBytes("[]"))).Message);
        Assert.StartsWith("x.Name: required", Assert.Throws<ConfigException>(() => ServiceConfigParser.ParseOne(Encoding.UTF8.GetBytes("{}"), "x")).Message);
    }

    [Fact]
    public void The_validator_checks_one_service_with_paths_from_its_root()
    {
        var validator = new ServiceConfigValidator(new ServiceOptionsConfig(), Ipv4Prefix.Parse("10.244.0.0/16"), Ip("172.31.77.1"));
        var service = ServiceConfigParser.ParseOne(Encoding.UTF8.GetBytes("""{ "Name": "a", "ClusterIP": "10.244.0.1", "Ports": [ { "Port": 80 } ] }"""));
        Assert.Equal("ClusterIP: 10.244.0.1 is inside Network 10.244.0.0/16: it would shadow a pod's address",
            Assert.Throws<ConfigException>(() => validator.CheckService(service, "")).Message);
    }

    [Theory]
    [InlineData(7, true)]
    [InlineData(16381, true)]
    [InlineData(65537, true)]
    [InlineData(131071, true)]
    [InlineData(9, false)]
    [InlineData(65535, false)]
    [InlineData(16383, false)] // 3 x 43 x 127
    public void IsPrime_knows_the_usual_maglev_sizes(int n, bool prime) => Assert.Equal(prime, ServiceConfigValidator.IsPrime(n));

    [Fact]
    public void Services_and_options_survive_the_etcd_mode_node_file()
    {
        var file = EtcdNodeFile.Parse(Encoding.UTF8.GetBytes(ConfigFixture.With("ServiceOptions", Options, ConfigFixture.With("Services", Services,
            """{ "Etcd": { "Endpoints": [ "http://127.0.0.1:2379" ] }, "Node": { "Underlay": "eth0" } }"""))));
        Assert.Equal(5, file.Services.Count);

        var network = FlannelNetwork.Parse(Encoding.UTF8.GetBytes(FlannelJson.Config));
        var lease = new AcquiredLease(Ipv4Prefix.Parse("10.244.1.0/24"), LeaseAttrs.Vxlan(Ip("172.31.77.1"), 1, MacAddress.Parse("0a:58:0a:f4:01:00")), [], 1, DateTimeOffset.MaxValue);
        var config = ConfigLoader.Complete(file.ToConfig(network, lease, Ip("172.31.77.1"), null, "node1"), ConfigFixture.Interfaces());
        Assert.Equal(["shop/web", "default/api", "default/db", "default/ext", "default/metrics"], config.Services.Select(s => s.Key));
        Assert.Equal(65537, config.ServiceOptions.MaglevTableSize);

        // Validated as in a static file, against etcd's Network.
        var bad = EtcdNodeFile.Parse(Encoding.UTF8.GetBytes(ConfigFixture.With("Services", """[ { "Name": "a", "ClusterIP": "10.244.9.9", "Ports": [ { "Port": 80 } ] } ]""", """{ "Node": {} }""")));
        Assert.StartsWith("Services[0].ClusterIP: 10.244.9.9 is inside Network 10.244.0.0/16",
            Assert.Throws<ConfigException>(() => ConfigLoader.Complete(bad.ToConfig(network, lease, Ip("172.31.77.1"), null, "node1"), ConfigFixture.Interfaces())).Message);
    }

    [Fact]
    public void A_live_reload_that_changes_only_services_is_not_refused_as_a_node_change()
    {
        using var controller = FastOverlay.Control.NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), new RingPortFactory(), poolBuffers: 256);
        controller.Apply(ConfigFixture.Load(Example));
        Assert.Equal(5, controller.Config.Services.Count);
        controller.Apply(ConfigFixture.Load(ConfigFixture.With("Services[1].Endpoints", "[]", Example)));
        Assert.Empty(controller.Config.Services[1].Endpoints);
    }

    private static void AssertService(ServiceConfig expected, ServiceConfig actual)
    {
        Assert.Equal(expected.Ports, actual.Ports);
        Assert.Equal(expected.LoadBalancerIps, actual.LoadBalancerIps);
        Assert.Equal(expected.ExternalIps, actual.ExternalIps);
        Assert.Equal(expected.LoadBalancerSourceRanges, actual.LoadBalancerSourceRanges);
        Assert.Equal(expected.Endpoints, actual.Endpoints);
        // The lists compared, the rest of the record compares by value.
        static ServiceConfig Scalars(ServiceConfig s) =>
            s with { Ports = Array.Empty<ServicePortConfig>(), LoadBalancerIps = Array.Empty<Ipv4Address>(), ExternalIps = Array.Empty<Ipv4Address>(),
                LoadBalancerSourceRanges = Array.Empty<Ipv4Prefix>(), Endpoints = Array.Empty<EndpointConfig>() };
        Assert.Equal(Scalars(expected), Scalars(actual));
    }
}
