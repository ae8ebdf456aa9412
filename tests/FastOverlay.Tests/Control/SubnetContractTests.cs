using System.Text;
using FastOverlay.Config;
using FastOverlay.Control.Subnets;
using FastOverlay.Tests.Config;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Control;

/// <summary>The pure parts of flannel's contract: config defaults, key and value formats, subnet.env.</summary>
public sealed class SubnetContractTests
{
    private static FlannelNetwork Parse(string json) => FlannelNetwork.Parse(Encoding.UTF8.GetBytes(json));

    [Theory]
    // CheckNetworkConfig: /24 leases up to a /22 network, else length + 2; Min skips the first subnet, Max is the last.
    [InlineData("10.244.0.0/16", 24, "10.244.1.0", "10.244.255.0")]
    [InlineData("10.0.0.0/8", 24, "10.0.1.0", "10.255.255.0")]
    [InlineData("10.10.0.0/22", 24, "10.10.1.0", "10.10.3.0")]
    [InlineData("10.10.0.0/24", 26, "10.10.0.64", "10.10.0.192")]
    [InlineData("10.10.0.0/28", 30, "10.10.0.4", "10.10.0.12")]
    public void Flannel_defaults_apply_exactly(string network, int subnetLen, string min, string max)
    {
        var n = Parse($$$"""{"Network":"{{{network}}}","Backend":{"Type":"vxlan"}}""");
        Assert.Equal(subnetLen, n.SubnetLen);
        Assert.Equal(min, n.SubnetMin.ToString());
        Assert.Equal(max, n.SubnetMax.ToString());
        Assert.Equal(1u, n.Backend.Vni);
        Assert.Equal(8472, n.Backend.Port);
    }

    [Theory]
    [InlineData("""{"Network":"10.244.0.0/16"}""", "Backend", "udp")]
    [InlineData("""{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}""", "Backend.Type", "host-gw")]
    [InlineData("""{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}""", "Backend.Type", "'udp'")]
    [InlineData("""{"Network":"10.10.0.0/29","Backend":{"Type":"vxlan"}}""", "Network", "/28")]
    [InlineData("""{"Network":"10.244.0.0/16","SubnetLen":31,"Backend":{"Type":"vxlan"}}""", "SubnetLen", "/31")]
    [InlineData("""{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.128","Backend":{"Type":"vxlan"}}""", "SubnetMin", "boundary")]
    [InlineData("""{"Network":"10.244.0.0/16","SubnetMax":"10.245.0.0","Backend":{"Type":"vxlan"}}""", "SubnetMax", "range")]
    public void Bad_configs_are_refused_naming_the_field(string json, string path, string words)
    {
        var e = Assert.Throws<ConfigException>(() => Parse(json));
        Assert.Equal("etcd config." + path, e.Path);
        Assert.Contains(words, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Config_is_read_like_gos_decoder_case_insensitive_and_lenient()
    {
        var n = Parse("""{"network":"10.1.0.0/16","subnetlen":26,"SubnetMin":"10.1.0.64","backend":{"type":"VXLAN","vni":42,"port":4789},"Extra":true}""");
        Assert.Equal((26, "10.1.0.64", 42u, (ushort)4789), (n.SubnetLen, n.SubnetMin.ToString(), n.Backend.Vni, n.Backend.Port));
    }

    [Theory]
    [InlineData("10.244.1.0-24", "10.244.1.0/24")]
    [InlineData("10.5.1.0-24&fc00::-64", "10.5.1.0/24")]
    [InlineData("x10.244.1.0-24", "10.244.1.0/24")]
    public void Keys_parse_as_flannels_regex_does(string key, string subnet)
    {
        Assert.True(SubnetKey.TryParse(key, out var parsed));
        Assert.Equal(subnet, parsed.ToString());
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("10.244.1.0-24x")]
    [InlineData("10.244.1.5-24")]
    [InlineData("10.244.1.0-33")]
    public void Bad_keys_do_not_parse(string key) => Assert.False(SubnetKey.TryParse(key, out _));

    [Fact]
    public void Our_value_is_flannels_json_byte_for_byte()
    {
        var attrs = LeaseAttrs.Vxlan(Ipv4Address.Parse("192.168.64.3"), 1, MacAddress.Parse("c6:d2:32:6f:8f:44"));
        // Documentation/reservations.md's example lease.
        Assert.Equal("""{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}""", Encoding.UTF8.GetString(attrs.ToJson()));
        Assert.Equal(attrs, LeaseAttrs.TryParse(attrs.ToJson(), out _));
    }

    [Fact]
    public void Values_from_other_flannel_versions_parse()
    {
        var dual = LeaseAttrs.TryParse("""{"publicip":"10.0.0.7","PublicIPv6":"fc00::7","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:00"}}"""u8, out _);
        Assert.Equal("aa:bb:cc:dd:ee:ff", dual!.VtepMac.ToString());
        Assert.Null(LeaseAttrs.TryParse("not json"u8, out var problem));
        Assert.Contains("JSON", problem, StringComparison.Ordinal);
        Assert.Null(LeaseAttrs.TryParse("""{"PublicIP":"nope"}"""u8, out _));
    }

    [Fact]
    public void Subnet_env_is_flannels_format_written_by_rename()
    {
        var dir = Directory.CreateTempSubdirectory("fastoverlay-subnetenv-");
        try
        {
            var path = Path.Combine(dir.FullName, "run", "subnet.env");
            SubnetFile.Write(path, Ipv4Prefix.Parse("10.244.0.0/16"), Ipv4Prefix.Parse("10.244.1.0/24"), 1450);
            Assert.Equal("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n", File.ReadAllText(path));
            Assert.Equal(Ipv4Prefix.Parse("10.244.1.0/24"), SubnetFile.ReadSubnet(path));
            // Atomic: a reader holding the old file keeps reading the old content; no temporary file is left behind.
            using var old = File.OpenRead(path);
            SubnetFile.Write(path, Ipv4Prefix.Parse("10.244.0.0/16"), Ipv4Prefix.Parse("10.244.7.0/24"), 1400);
            Assert.Contains("10.244.1.1/24", new StreamReader(old).ReadToEnd(), StringComparison.Ordinal);
            Assert.Contains("FLANNEL_SUBNET=10.244.7.1/24", File.ReadAllText(path), StringComparison.Ordinal);
            Assert.Equal(["subnet.env"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Etcd_mode_files_refuse_what_comes_from_etcd()
    {
        foreach (var key in new[] { "Network", "Backend", "Peers" })
        {
            var json = $$$"""{"Etcd":{"Endpoints":["http://127.0.0.1:2379"]},"{{{key}}}":{},"Node":{}}""";
            var e = Assert.Throws<ConfigException>(() => EtcdNodeFile.Parse(Encoding.UTF8.GetBytes(json)));
            Assert.Equal(key, e.Path);
            Assert.Contains("etcd", e.Message, StringComparison.Ordinal);
        }
        var file = EtcdNodeFile.Parse("""{"Etcd":{"Endpoints":["http://10.0.0.1:2379"],"Prefix":"/x"},"Node":{"Pods":[{"Interface":"veth-pod1"}]}}"""u8.ToArray());
        Assert.Equal(("http://10.0.0.1:2379", "/x"), (file.Etcd!.Endpoints[0], file.Etcd.Prefix));
        Assert.Null(file.Node.Subnet);
        Assert.Null(file.Node.VtepMac);
        Assert.True(EtcdNodeFile.HasEtcdSection("""{"Etcd":{}}"""u8.ToArray()));
        Assert.False(EtcdNodeFile.HasEtcdSection(Encoding.UTF8.GetBytes(ConfigFixture.Example)));
    }
}
