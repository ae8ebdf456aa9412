using System.Text;
using System.Text.Json;
using FastOverlay.Cli.Cni;

namespace FastOverlay.Tests.Cni;

/// <summary>The plugin's config and environment checks, which fail before anything is touched (no root needed).</summary>
public sealed class CniConfigTests
{
    private const string Good = """{"cniVersion":"1.0.0","name":"fastoverlay","type":"fastoverlay","ipam":{"type":"host-local"}}""";

    [Theory]
    [InlineData("{", 6)]
    [InlineData("[1]", 6)]
    [InlineData("""{"name":"n","type":"fastoverlay","ipam":{"type":"host-local"}}""", 7)]
    [InlineData("""{"cniVersion":"0.2.0","name":"n","type":"fastoverlay","ipam":{"type":"host-local"}}""", 1)]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","type":"bridge","ipam":{"type":"host-local"}}""", 7)]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","type":"fastoverlay"}""", 7)]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","type":"fastoverlay","ipam":{"type":"../../bin/sh"}}""", 7)]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","type":"fastoverlay","mtu":"big","ipam":{"type":"host-local"}}""", 7)]
    public void Bad_configs_give_the_specs_codes(string config, int code)
    {
        var (rc, result) = Run(config, ("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c"), ("CNI_NETNS", "/nonexistent"), ("CNI_IFNAME", "eth0"));
        Assert.Equal(1, rc);
        Assert.Equal(code, result.GetProperty("code").GetInt32());
        Assert.False(string.IsNullOrEmpty(result.GetProperty("msg").GetString()));
    }

    [Fact]
    public void Missing_environment_is_code_4_and_VERSION_lists_1_0_0()
    {
        Assert.Equal(4, Run(Good, ("CNI_COMMAND", "ADD"), ("CNI_NETNS", "/x"), ("CNI_IFNAME", "eth0")).Result.GetProperty("code").GetInt32());
        Assert.Equal(4, Run(Good, ("CNI_COMMAND", "GC?")).Result.GetProperty("code").GetInt32());
        var (rc, version) = Run("", ("CNI_COMMAND", "VERSION"));
        Assert.Equal(0, rc);
        Assert.Contains("1.0.0", version.GetProperty("supportedVersions").EnumerateArray().Select(v => v.GetString()));
    }

    [Fact]
    public void Host_interface_names_fit_IFNAMSIZ_and_are_stable_and_pod_MACs_follow_Kubernetes()
    {
        var name = CniPlugin.HostInterface(new string('f', 64), "eth0");
        Assert.InRange(name.Length, 1, 15);
        Assert.Equal(name, CniPlugin.HostInterface(new string('f', 64), "eth0"));
        Assert.NotEqual(name, CniPlugin.HostInterface(new string('f', 64), "eth1"));
        Assert.Equal("0a:58:0a:f4:01:0a", CniPlugin.PodMac("10.244.1.10"));
    }

    [Fact]
    public void Subnet_env_gives_the_subnet_gateway_and_mtu_and_a_missing_one_says_try_again()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n");
            Assert.Equal(new SubnetEnv("10.244.0.0/16", "10.244.1.0/24", "10.244.1.1", 1450), SubnetEnv.Read(file));
        }
        finally
        {
            File.Delete(file);
        }
        Assert.Equal(11, Assert.Throws<CniError>(() => SubnetEnv.Read("/nonexistent/subnet.env")).Code);
    }

    private static (int Rc, JsonElement Result) Run(string stdin, params (string Key, string Value)[] env)
    {
        var output = new StringWriter();
        var rc = new CniPlugin(env.ToDictionary(e => e.Key, e => (string?)e.Value), output).Run(Encoding.UTF8.GetBytes(stdin));
        return (rc, JsonDocument.Parse(output.ToString()).RootElement);
    }
}
