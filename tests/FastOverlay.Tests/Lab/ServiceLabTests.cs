using Xunit.Abstractions;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// Kubernetes Services on the two-node lab (fastoverlay mode, pod offloads at Linux's defaults): both nodes get the
/// same Services by live reload, servers in the endpoint pods (svc_tool.py) name themselves and the client address
/// they saw, and clients in other pods report each attempt. The checks follow kube-proxy's behaviour and the
/// Kubernetes e2e tests named in the research notes (s5): client IP kept for ClusterIP traffic, hairpin SNAT,
/// REJECT without endpoints, same port on two protocols, ClientIP affinity, flows surviving endpoint changes.
/// </summary>
[Collection("netns")]
public sealed partial class ServiceLabTests(ITestOutputHelper output)
{
    private const int Http = 80, Dns = 53;

    [SkippableFact]
    public void ClusterIP_TCP_and_UDP_from_pods_on_both_nodes_reach_endpoints_on_both_nodes_with_the_client_IP_kept()
    {
        ServiceLab.Require();
        using var lab = LabRun.Up("fastoverlay", output);
        lab.Serve("p12", "p22");
        const string Web = "10.96.0.10";
        lab.ApplyServices(new
        {
            Name = "web", ClusterIP = Web,
            Ports = new[] { ServiceLab.Port("http", "TCP", Http, ServiceLab.ServerTcpPort), ServiceLab.Port("dns", "UDP", Dns, ServiceLab.ServerUdpPort) },
            Endpoints = ServiceLab.Endpoints("p12", "p22"),
        });

        foreach (var client in new[] { "p11", "p21" })
        {
            // Twenty connections from ephemeral ports: Maglev over (client, port) puts all twenty on one of two
            // backends with probability 2^-19.
            AssertSpread(lab.SvcTcp(client, Web, Http, count: 20), client, "p12", "p22");
            AssertSpread(lab.SvcUdp(client, Web, Dns, count: 20), client, "p12", "p22");
        }
        Assert.True(lab.FastOverlayRunning(1) && lab.FastOverlayRunning(2), "a node died during the Service traffic");
    }

    /// <summary>
    /// Datagrams over the pod MTU (a large DNS answer, say) leave the pod's kernel as IPv4 fragments, and only the
    /// first carries the ports: every fragment must be translated both ways, across nodes too, or the receiving
    /// kernel's reassembly never completes and the client times out.
    /// </summary>
    [SkippableFact]
    public void Fragmented_UDP_through_a_ClusterIP_reaches_endpoints_on_both_nodes_and_its_fragmented_answers_come_back()
    {
        ServiceLab.Require();
        using var lab = LabRun.Up("fastoverlay", output);
        lab.Serve("p12", "p22");
        const string Web = "10.96.0.11";
        const int Size = 4000;
        lab.ApplyServices(new
        {
            Name = "bigdns", ClusterIP = Web,
            Ports = new[] { ServiceLab.Port("dns", "UDP", Dns, ServiceLab.ServerUdpPort) },
            Endpoints = ServiceLab.Endpoints("p12", "p22"),
        });
        var mtu = int.Parse(lab.Exec("p11", "cat", "/sys/class/net/eth0/mtu").Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(mtu < Size, $"the pod MTU {mtu} must be below the datagram size {Size} for it to be fragmented");

        foreach (var client in new[] { "p11", "p21" })
            AssertSpread(lab.SvcUdp(client, Web, Dns, count: 20, size: Size), client, "p12", "p22");
        Assert.True(lab.FastOverlayRunning(1) && lab.FastOverlayRunning(2), "a node died during the fragmented traffic");
    }

    [SkippableFact]
    public void TCP_through_a_one_endpoint_ClusterIP_on_the_other_node_carries_at_least_100_Mbit_per_s_both_ways()
    {
        ServiceLab.Require("iperf3", "ss");
        using var lab = LabRun.Up("fastoverlay", output);
        const string Perf = "10.96.0.20";
        const int IperfPort = 5201;
        // Service port 80 to target 5201: the data connection is translated in port as well as address.
        lab.ApplyServices(new { Name = "perf", ClusterIP = Perf, Ports = new[] { ServiceLab.Port("iperf", "TCP", Http, IperfPort) }, Endpoints = ServiceLab.Endpoints("p21") });

        // The same floor as the pod-to-pod lab (LabTraffic.AssertTcp): far below a working path, far above one
        // that breaks super-frames or checksums (a NAT that leaves a partial checksum wrong gets retransmissions only).
        foreach (var reverse in new[] { false, true })
        {
            var r = lab.IperfToService("p11", "p21", Perf, Http, IperfPort, reverse);
            Assert.True(r.BitsPerSecond >= 100e6, $"TCP {(reverse ? "p21 -> p11" : "p11 -> p21")} through ClusterIP {Perf} below 100 Mbit/s: {r}");
        }
    }

    [SkippableFact]
    public void One_port_on_TCP_and_UDP_serves_both_and_removing_the_UDP_port_by_reload_refuses_UDP_while_TCP_goes_on()
    {
        ServiceLab.Require();
        using var lab = LabRun.Up("fastoverlay", output);
        lab.Serve("p21");
        const string Dual = "10.96.0.30";
        const int Shared = 5300;
        var tcp = ServiceLab.Port("tcp", "TCP", Shared, ServiceLab.ServerTcpPort);
        var udp = ServiceLab.Port("udp", "UDP", Shared, ServiceLab.ServerUdpPort);
        lab.ApplyServices(new { Name = "dual", ClusterIP = Dual, Ports = new[] { tcp, udp }, Endpoints = ServiceLab.Endpoints("p21") });
        AssertSpread(lab.SvcTcp("p11", Dual, Shared, count: 3), "p11", "p21");
        AssertSpread(lab.SvcUdp("p11", Dual, Shared, count: 3), "p11", "p21");

        // Conformance "should serve endpoints on same port and different protocols": without its UDP port the
        // Service refuses UDP (a port the ClusterIP does not define, as nftables-mode kube-proxy), TCP unchanged.
        lab.ApplyServices(new { Name = "dual", ClusterIP = Dual, Ports = new[] { tcp }, Endpoints = ServiceLab.Endpoints("p21") });
        var refused = lab.SvcUdp("p11", Dual, Shared, count: 3);
        Assert.True(refused.Answers.Count == 3 && refused.Answers.All(a => a.Outcome == "REFUSED"), $"UDP to the removed port was not refused: {refused}");
        AssertSpread(lab.SvcTcp("p11", Dual, Shared, count: 3), "p11", "p21");
        var counters = NodeLog.LastDropCounters(lab.StopNode(1));
        Assert.True(counters.Count(DropReason.ServicePortUndefined) >= 3, $"ServicePortUndefined did not count the refused datagrams: {string.Join(", ", counters)}");
    }

    [SkippableFact]
    public void A_pod_reaches_itself_through_its_own_Service_and_sees_the_hairpin_address_while_other_pods_keep_their_own()
    {
        ServiceLab.Require();
        using var lab = LabRun.Up("fastoverlay", output);
        lab.Serve("p11");
        const string Self = "10.96.0.40";
        lab.ApplyServices(new
        {
            Name = "self", ClusterIP = Self,
            Ports = new[] { ServiceLab.Port("http", "TCP", Http, ServiceLab.ServerTcpPort), ServiceLab.Port("dns", "UDP", Dns, ServiceLab.ServerUdpPort) },
            Endpoints = ServiceLab.Endpoints("p11"),
        });

        // kube-proxy's "-s endpointIP -j KUBE-MARK-MASQ": without SNAT p11 would answer itself directly and drop
        // the reply that does not come from the Service address. FastOverlay SNATs to the node's gateway address.
        const string Gateway = "10.244.1.1";
        foreach (var run in new[] { lab.SvcTcp("p11", Self, Http, count: 5), lab.SvcUdp("p11", Self, Dns, count: 5) })
        {
            Assert.True(run.AllOk && run.Answers.Count == 5, $"p11 did not reach itself through {Self}: {run}");
            Assert.All(run.Answers, a => Assert.Equal(("p11", Gateway), (a.Backend, a.SeenIp)));
        }
        // Pods that are not the endpoint are not SNATed, on the same node or the other.
        foreach (var client in new[] { "p12", "p21" })
        {
            AssertSpread(lab.SvcTcp(client, Self, Http, count: 3), client, "p11");
            AssertSpread(lab.SvcUdp(client, Self, Dns, count: 3), client, "p11");
        }
    }

    [SkippableFact]
    public void A_Service_without_endpoints_refuses_TCP_and_connected_UDP_at_once_and_so_does_an_undefined_port()
    {
        ServiceLab.Require();
        using var lab = LabRun.Up("fastoverlay", output);
        const string Empty = "10.96.0.50";
        lab.ApplyServices(new
        {
            Name = "empty", ClusterIP = Empty,
            Ports = new[] { ServiceLab.Port("http", "TCP", Http, ServiceLab.ServerTcpPort), ServiceLab.Port("dns", "UDP", Dns, ServiceLab.ServerUdpPort) },
            Endpoints = Array.Empty<object>(),
        });

        // e2e "should be rejected when no endpoints exist" expects REFUSED: an ICMP port unreachable from the
        // gateway (nothing else in the lab owns the address; a dropped SYN would give TIMEOUT instead).
        foreach (var client in new[] { "p11", "p21" })
        {
            AssertRefusedAtOnce($"TCP from {client}", lab.SvcTcp(client, Empty, Http, count: 3, timeout: 1));
            AssertRefusedAtOnce($"connected UDP from {client}", lab.SvcUdp(client, Empty, Dns, count: 3, timeout: 1));
            AssertRefusedAtOnce($"TCP from {client} to a port the Service does not define", lab.SvcTcp(client, Empty, 8081, count: 3, timeout: 1));
        }
        foreach (var node in new[] { 1, 2 })
        {
            var counters = NodeLog.LastDropCounters(lab.StopNode(node));
            Assert.True(counters.Count(DropReason.ServiceNoEndpoints) >= 6, $"node{node}: ServiceNoEndpoints did not count the refused flows: {string.Join(", ", counters)}");
            Assert.True(counters.Count(DropReason.ServicePortUndefined) >= 3, $"node{node}: ServicePortUndefined did not count the undefined port: {string.Join(", ", counters)}");
        }
    }

    [SkippableFact]
    public void ClientIP_affinity_keeps_each_client_on_one_backend_while_without_it_connections_spread()
    {
        ServiceLab.Require();
        using var lab = LabRun.Up("fastoverlay", output);
        lab.Serve("p12", "p22");
        const string Sticky = "10.96.0.60", Spread = "10.96.0.61";
        object[] ports = [ServiceLab.Port("http", "TCP", Http, ServiceLab.ServerTcpPort), ServiceLab.Port("dns", "UDP", Dns, ServiceLab.ServerUdpPort)];
        var endpoints = ServiceLab.Endpoints("p12", "p22");   // one on each node; neither is a client (that would be hairpin)
        lab.ApplyServices(
            new { Name = "sticky", ClusterIP = Sticky, SessionAffinity = "ClientIP", SessionAffinityTimeoutSeconds = 600, Ports = ports, Endpoints = endpoints },
            new { Name = "spread", ClusterIP = Spread, Ports = ports, Endpoints = endpoints });

        foreach (var client in new[] { "p11", "p21" })
        {
            // Affinity is per Service port (kube-proxy's recent list per endpoint chain): TCP and UDP may differ.
            foreach (var run in new[] { lab.SvcTcp(client, Sticky, Http, count: 20), lab.SvcUdp(client, Sticky, Dns, count: 20) })
            {
                Assert.True(run.AllOk && run.Answers.Count == 20, $"{client} to {Sticky}: {run}");
                Assert.True(run.ByBackend.Count == 1, $"ClientIP affinity: {client}'s 20 connections landed on {string.Join(", ", run.ByBackend)}");
                Assert.True(run.Answers.All(a => a.SeenIp == LabRun.PodIp(client)), $"the backend did not see {client}'s address: {run}");
            }
            // The control: the same endpoints without affinity spread (all 20 on one of two: 2^-19).
            var spread = lab.SvcTcp(client, Spread, Http, count: 20);
            Assert.True(spread.AllOk && spread.ByBackend.Count == 2, $"without affinity {client}'s connections did not spread: {spread}");
        }
    }

    /// <summary>
    /// Three attempts, each refused (svc_tool exits 2) within its 1 s timeout: the first SYN or datagram was
    /// answered with the ICMP error, not a retransmission one second later.
    /// </summary>
    private static void AssertRefusedAtOnce(string what, SvcRun run) =>
        Assert.True(run.Answers.Count == 3 && run.Answers.All(a => a.Outcome == "REFUSED") && run.Result.ExitCode == 2, $"{what} was not refused: {run}");

    /// <summary>Every attempt answered, by each of the expected backends at least once and by no other, and every
    /// backend saw the client pod's own address (ClusterIP traffic from pods is never SNATed).</summary>
    private static void AssertSpread(SvcRun run, string client, params string[] backends)
    {
        Assert.True(run.AllOk, $"not every attempt from {client} was answered: {run}");
        Assert.True(backends.Order().SequenceEqual(run.ByBackend.Keys.Order()), $"expected answers from {string.Join(" and ", backends)}: {run}");
        Assert.True(run.Answers.All(a => a.SeenIp == LabRun.PodIp(client)), $"a backend did not see {client}'s own address {LabRun.PodIp(client)}: {run}");
    }
}
