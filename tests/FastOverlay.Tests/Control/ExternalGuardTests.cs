using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using FastOverlay.Config;
using FastOverlay.Control;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Tests.Ports;
using FastOverlay.Wire;
using static FastOverlay.Tests.Ports.ExternalLink;

namespace FastOverlay.Tests.Control;

/// <summary>
/// ExternalGuard: the nftables table that keeps the node's kernel from answering NodePort and frontend traffic.
/// The namespace tests show it working: a client's connect() to a NodePort is refused (RST) without it and
/// gets no answer at all with it, while the external port still receives the SYN.
/// </summary>
[Collection("netns")]
public sealed class ExternalGuardTests
{
    private static readonly ExternalTraffic Traffic = new()
    {
        NodeIp = NodeIp,
        TcpNodePorts = [30080],
        UdpNodePorts = [30053],
        Frontends = [new(LbIp, L4Protocol.Tcp, 80)],
    };

    private static void Require()
    {
        Skip.If(ExternalLink.Unavailable() is not null, ExternalLink.Unavailable());
        Skip.IfNot(Shell.Exists("nft"), "nft is not installed (apt-get install nftables); .ci/run installs it");
    }

    [Fact]
    public void The_table_drops_in_prerouting_at_raw_priority_and_untracks_the_replies()
    {
        var script = ExternalGuard.Table(Traffic);
        Assert.StartsWith("add table ip fastoverlay\ndelete table ip fastoverlay\ntable ip fastoverlay {", script, StringComparison.Ordinal);
        Assert.Contains("type filter hook prerouting priority raw; policy accept;", script, StringComparison.Ordinal);
        Assert.Contains("ip daddr 10.77.0.1 tcp dport @nodeport_tcp drop", script, StringComparison.Ordinal);
        Assert.Contains("ip daddr . meta l4proto . th dport @frontend drop", script, StringComparison.Ordinal);
        Assert.Contains("ip saddr 10.77.0.1 udp sport @nodeport_udp notrack", script, StringComparison.Ordinal);
        Assert.Contains("add element ip fastoverlay nodeport_tcp { 30080 }\n", script, StringComparison.Ordinal);
        Assert.Contains("add element ip fastoverlay frontend { 10.77.0.100 . tcp . 80 }\n", script, StringComparison.Ordinal);

        // An update flushes all three sets and adds only non-empty ones (nft refuses an empty element list).
        var update = ExternalGuard.Elements(Traffic with { UdpNodePorts = [], TcpNodePorts = [30080, 30081] }, flush: true);
        Assert.Equal(
            "flush set ip fastoverlay nodeport_tcp\nflush set ip fastoverlay nodeport_udp\nflush set ip fastoverlay frontend\n" +
            "add element ip fastoverlay nodeport_tcp { 30080, 30081 }\nadd element ip fastoverlay frontend { 10.77.0.100 . tcp . 80 }\n", update);
    }

    [Fact]
    public void Health_check_ports_stay_with_the_kernel()
    {
        var services = new[]
        {
            new ServiceConfig
            {
                Name = "web", Type = ServiceType.LoadBalancer, ExternalTrafficPolicy = TrafficPolicy.Local, HealthCheckNodePort = 30082,
                LoadBalancerIps = [LbIp], Ports = [new("http", L4Protocol.Tcp, 80, 8080, 30081)],
            },
            // A Service that names the health port and the proxy health port by mistake: they are still left out.
            new ServiceConfig
            {
                Name = "odd", Type = ServiceType.NodePort, ExternalIps = [Ipv4Address.Parse("10.77.0.200")],
                Ports = [new("a", L4Protocol.Tcp, 10256, 1, 30082), new("b", L4Protocol.Udp, 53, 53, 30082)],
            },
            new ServiceConfig { Name = "internal", Ports = [new("x", L4Protocol.Tcp, 81, 81, 30090)], ExternalIps = [Ipv4Address.Parse("10.77.0.201")] },
            new ServiceConfig { Name = "dns", Type = ServiceType.ExternalName, ExternalName = "example.org", ExternalIps = [Ipv4Address.Parse("10.77.0.202")], Ports = [new("d", L4Protocol.Udp, 53, 53, 30091)] },
        };
        var traffic = ExternalTraffic.From(NodeIp, services, 10256);
        Assert.Equal([30081], traffic.TcpNodePorts);
        Assert.Equal([30082], traffic.UdpNodePorts);
        Assert.Equal(
            [new(LbIp, L4Protocol.Tcp, 80), new(Ipv4Address.Parse("10.77.0.200"), L4Protocol.Udp, 53), new(Ipv4Address.Parse("10.77.0.201"), L4Protocol.Tcp, 81)],
            traffic.Frontends);
    }

    [Fact]
    public void Without_nft_the_guard_warns_once_and_stays_out_of_the_way()
    {
        var log = new StringWriter();
        using var guard = ExternalGuard.Start(Traffic, log, ["/nonexistent/nft"]);
        guard.Update(Traffic with { TcpNodePorts = [1] });
        Assert.False(guard.Active);
        var text = log.ToString();
        Assert.Contains("the kernel answers NodePort and LoadBalancer traffic itself (TCP RST, ICMP port unreachable)", text, StringComparison.Ordinal);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [SkippableFact]
    public void A_refusing_nft_is_an_error_with_its_own_words()
    {
        Skip.IfNot(Shell.Exists("nft"), "nft is not installed (apt-get install nftables)");
        var error = Assert.Throws<IOException>(() => ExternalGuard.Start(Traffic, TextWriter.Null, ["nft", "--no-such-option"]));
        Assert.StartsWith("cannot install nftables table ip fastoverlay: nft --no-such-option -f - exited ", error.Message, StringComparison.Ordinal);
        Assert.Contains("no-such-option", error.Message[60..], StringComparison.Ordinal);
    }

    [SkippableFact]
    public void With_the_guard_a_NodePort_SYN_goes_unanswered_by_the_kernel_and_still_reaches_the_port()
    {
        Require();
        using var link = new ExternalLink();
        var pool = new PacketPool(256);
        using var port = link.Node.Enter(() => new ExternalPort(NodeInterface, pool, Traffic));

        // The control: without the guard the kernel refuses (RST).
        var refused = Connect(link, 30080);
        Assert.Equal("refused", refused.Result);
        Assert.True(refused.Rst >= 1);
        PortDriver.Receive(port, pool, 10, TimeSpan.FromMilliseconds(200));

        var log = new StringWriter();
        using (var guard = ExternalGuard.Start(Traffic, log, link.Nft))
        {
            Assert.True(guard.Active);
            var silent = Connect(link, 30080);
            Assert.Equal("timeout", silent.Result);
            Assert.Equal(0, silent.Rst);
            // Our copy of the SYN (and its retransmission) still arrives: the tap sees it before ip_rcv.
            var syns = PortDriver.Receive(port, pool, 1, TimeSpan.FromSeconds(1));
            Assert.NotEmpty(syns);
            Assert.All(syns, f => Assert.Equal(0x02, f[47]));

            // Update moves the drop to another port, in one transaction.
            guard.Update(Traffic with { TcpNodePorts = [30081] });
            Assert.Equal("refused", Connect(link, 30080).Result);
            Assert.Equal("timeout", Connect(link, 30081).Result);
            Assert.Contains("30081", link.Node.Exec("nft list set ip fastoverlay nodeport_tcp"), StringComparison.Ordinal);
        }
        // Dispose deletes the table: the kernel answers again.
        Assert.DoesNotContain("fastoverlay", link.Node.Exec("nft list tables"), StringComparison.Ordinal);
        Assert.Equal("refused", Connect(link, 30081).Result);
        Assert.Equal("", log.ToString());
    }

    [SkippableFact]
    public void A_health_check_port_is_served_by_the_kernel_while_the_guard_is_on()
    {
        Require();
        using var link = new ExternalLink();
        var service = new ServiceConfig
        {
            Name = "web", Type = ServiceType.LoadBalancer, ExternalTrafficPolicy = TrafficPolicy.Local, HealthCheckNodePort = 30082,
            Ports = [new("http", L4Protocol.Tcp, 80, 8080, 30081)],
        };
        using var guard = ExternalGuard.Start(ExternalTraffic.From(NodeIp, [service], 10256), TextWriter.Null, link.Nft);
        using var listener = link.Node.Enter(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Parse(NodeIp.ToString()), 30082));
            s.Listen();
            return s;
        });
        Assert.Equal("connected", Connect(link, 30082).Result);
        Assert.Equal("timeout", Connect(link, 30081).Result);
    }

    [SkippableFact]
    public void A_table_left_behind_is_replaced_and_one_deleted_underneath_comes_back()
    {
        Require();
        using var link = new ExternalLink();
        using (ExternalGuard.Start(Traffic with { TcpNodePorts = [1] }, TextWriter.Null, link.Nft))
        {
            // Another start (a crashed run's table still there) replaces it whole.
            using var second = ExternalGuard.Start(Traffic, TextWriter.Null, link.Nft);
            var set = link.Node.Exec("nft list set ip fastoverlay nodeport_tcp");
            Assert.Contains("30080", set, StringComparison.Ordinal);
            Assert.DoesNotContain("elements = { 1 }", set, StringComparison.Ordinal);

            link.Node.Exec("nft delete table ip fastoverlay");
            second.Update(Traffic with { TcpNodePorts = [30099] });
            Assert.Contains("30099", link.Node.Exec("nft list set ip fastoverlay nodeport_tcp"), StringComparison.Ordinal);
            Assert.Equal("timeout", Connect(link, 30099).Result);
        }
    }

    private static (string Result, int Rst) Connect(ExternalLink link, int port)
    {
        var run = link.Python("connect", NodeIp.ToString(), port.ToString(System.Globalization.CultureInfo.InvariantCulture), "1", ClientInterface);
        Assert.True(run.Ok, run.ToString());
        using var json = JsonDocument.Parse(run.Stdout);
        return (json.RootElement.GetProperty("result").GetString()!, json.RootElement.GetProperty("rst").GetInt32());
    }
}
