namespace FastOverlay.Tests.Lab;

/// <summary>
/// NodePorts and LoadBalancer IPs from a client outside the cluster: the lab with LAB_CLIENT=1 (namespace c,
/// 172.31.77.100 on the underlay's bridge, LoadBalancer IPs 172.31.200.0/24 routed via node1).
///
/// They need the external port (an AF_PACKET socket on the underlay taking NodePort and external-address
/// traffic) and the nftables guard that keeps the node's kernel from answering that traffic with a RST or an ICMP
/// error; the health check test also needs the health check server (healthCheckNodePort and the proxy's 10256).
/// All came with svc-external; the traits say so, for a build without them (<c>--filter "Needs!=external-port"</c>).
/// Without nft the guard cannot work, and the tests skip.
/// </summary>
public sealed partial class ServiceLabTests
{
    private const string LbCluster = "172.31.200.10", LbLocal = "172.31.200.20", LbGuarded = "172.31.200.30";
    private const int TcpNodePort = 30080, UdpNodePort = 30053, HealthPort = 32100, ProxyHealthPort = 10256;

    [SkippableFact]
    [Trait("Needs", "external-port")]
    public void NodePorts_and_a_LoadBalancer_IP_under_the_Cluster_policy_reach_endpoints_on_both_nodes_from_the_underlay_SNATed_to_the_ingress_node()
    {
        ServiceLab.Require("nft");
        using var lab = LabRun.Up("fastoverlay", output, client: true);
        lab.Serve("p12", "p22");
        lab.ApplyServices(new
        {
            Name = "front", ClusterIP = "10.96.1.10", Type = "LoadBalancer", LoadBalancerIPs = new[] { LbCluster },
            Ports = new[] { ServiceLab.Port("http", "TCP", Http, ServiceLab.ServerTcpPort, TcpNodePort), ServiceLab.Port("dns", "UDP", Dns, ServiceLab.ServerUdpPort, UdpNodePort) },
            Endpoints = ServiceLab.Endpoints("p12", "p22"),
        });

        // externalTrafficPolicy Cluster: any node takes the traffic to any endpoint and SNATs it to itself (its
        // gateway address), so that the reply comes back through it and leaves by its external port.
        foreach (var (ingress, address, tcpPort, udpPort) in new[] { (1, LabRun.PublicIp(1), TcpNodePort, UdpNodePort), (2, LabRun.PublicIp(2), TcpNodePort, UdpNodePort), (1, LbCluster, Http, Dns) })
        {
            var snat = $"10.244.{ingress}.1";
            foreach (var run in new[] { lab.SvcTcp("c", address, tcpPort, count: 20), lab.SvcUdp("c", address, udpPort, count: 20) })
            {
                Assert.True(run.AllOk && run.Answers.Count == 20, $"from the client to {address}: {run}");
                Assert.True(run.ByBackend.Count == 2, $"from the client to {address}: not both endpoints answered: {run}");
                Assert.True(run.Answers.All(a => a.SeenIp == snat), $"a backend did not see node{ingress}'s SNAT address {snat}: {run}");
            }
        }
        Assert.True(lab.FastOverlayRunning(1) && lab.FastOverlayRunning(2), "a node died on external traffic");
    }

    [SkippableFact]
    [Trait("Needs", "external-port")]
    public void The_Local_policy_keeps_the_client_IP_on_nodes_with_a_local_endpoint_and_drops_on_nodes_without_one()
    {
        ServiceLab.Require("nft");
        using var lab = LabRun.Up("fastoverlay", output, client: true);
        lab.Serve("p12", "p22");
        lab.ApplyServices(LocalService("p22"));

        // Only node2 has an endpoint: there the client's own address reaches it (no SNAT under Local) ...
        AssertFromClient(lab.SvcTcp("c", LabRun.PublicIp(2), TcpNodePort, count: 10), "p22");
        AssertFromClient(lab.SvcUdp("c", LabRun.PublicIp(2), UdpNodePort, count: 10), "p22");
        // ... while node1, the NodePort on its address and the LoadBalancer IP routed to it, drops: a timeout, not
        // a refusal (kube-proxy's DROP for "has no local endpoints"; the load balancer's health check avoids it).
        foreach (var run in new[]
                 {
                     lab.SvcTcp("c", LabRun.PublicIp(1), TcpNodePort, count: 2, timeout: 2), lab.SvcUdp("c", LabRun.PublicIp(1), UdpNodePort, count: 2, timeout: 2),
                     lab.SvcTcp("c", LbLocal, Http, count: 2, timeout: 2),
                 })
            Assert.True(run.Answers.Count == 2 && run.Answers.All(a => a.Outcome == "TIMEOUT"), $"node1 has no local endpoint and should drop: {run}");

        // An endpoint on node1 as well: each node now sends to its own endpoint only, still with the client's address.
        lab.ApplyServices(LocalService("p12", "p22"));
        AssertFromClient(lab.SvcTcp("c", LbLocal, Http, count: 10), "p12");
        AssertFromClient(lab.SvcTcp("c", LabRun.PublicIp(1), TcpNodePort, count: 10), "p12");
        AssertFromClient(lab.SvcTcp("c", LabRun.PublicIp(2), TcpNodePort, count: 10), "p22");
        AssertFromClient(lab.SvcUdp("c", LabRun.PublicIp(1), UdpNodePort, count: 10), "p12");
    }

    [SkippableFact]
    [Trait("Needs", "external-port")]
    [Trait("Needs", "health-check-port")]
    public void The_health_check_node_port_answers_200_on_the_node_with_a_local_endpoint_and_503_on_the_other()
    {
        ServiceLab.Require("nft");
        using var lab = LabRun.Up("fastoverlay", output, client: true);
        lab.ApplyServices(LocalService("p22"));

        // kube-proxy's service health server: 200 with local endpoints, 503 without (virtual-ips.md: "you should set
        // up a similar health checking port"); what a cloud load balancer asks before it sends a node traffic.
        AssertHealth(lab, 1, 503);
        AssertHealth(lab, 2, 200);
        // The node's own proxy health port (kube-proxy's 10256 /healthz) is healthy on both.
        AssertHealth(lab, 1, 200, ProxyHealthPort);
        AssertHealth(lab, 2, 200, ProxyHealthPort);
        lab.ApplyServices(LocalService("p12", "p22"));
        AssertHealth(lab, 1, 200);
        lab.ApplyServices(LocalService("p12"));
        AssertHealth(lab, 2, 503);
    }

    /// <summary>
    /// loadBalancerSourceRanges from a real client on the underlay: outside the ranges the LoadBalancer IP drops it
    /// (a timeout: kube-proxy's firewall chain drops), while the same Service's NodePort still serves it; once a
    /// reload puts the client's network in the ranges the LoadBalancer IP serves it too.
    /// </summary>
    [SkippableFact]
    [Trait("Needs", "external-port")]
    public void Load_balancer_source_ranges_keep_other_clients_off_the_load_balancer_ip_but_not_off_the_node_port()
    {
        ServiceLab.Require("nft");
        using var lab = LabRun.Up("fastoverlay", output, client: true);
        lab.Serve("p12");
        object Guarded(string range) => new
        {
            Name = "guarded", ClusterIP = "10.96.1.30", Type = "LoadBalancer", LoadBalancerIPs = new[] { LbGuarded },
            LoadBalancerSourceRanges = new[] { range },
            Ports = new[] { ServiceLab.Port("http", "TCP", Http, ServiceLab.ServerTcpPort, TcpNodePort) },
            Endpoints = ServiceLab.Endpoints("p12"),
        };

        lab.ApplyServices(Guarded("192.0.2.0/24"));
        var refused = lab.SvcTcp("c", LbGuarded, Http, count: 2, timeout: 2);
        Assert.True(refused.Answers.Count == 2 && refused.Answers.All(a => a.Outcome == "TIMEOUT"), $"the client is outside the ranges: {refused}");
        var nodePort = lab.SvcTcp("c", LabRun.PublicIp(1), TcpNodePort, count: 5);
        Assert.True(nodePort.AllOk && nodePort.Answers.Count == 5, $"NodePorts are not subject to the ranges: {nodePort}");

        lab.ApplyServices(Guarded("172.31.77.0/24"));
        var allowed = lab.SvcTcp("c", LbGuarded, Http, count: 5);
        Assert.True(allowed.AllOk && allowed.Answers.Count == 5, $"the client's network is in the ranges now: {allowed}");
    }

    private static object LocalService(params string[] endpoints) => new
    {
        Name = "local", ClusterIP = "10.96.1.20", Type = "LoadBalancer", LoadBalancerIPs = new[] { LbLocal }, ExternalTrafficPolicy = "Local",
        HealthCheckNodePort = HealthPort,
        Ports = new[] { ServiceLab.Port("http", "TCP", Http, ServiceLab.ServerTcpPort, TcpNodePort), ServiceLab.Port("dns", "UDP", Dns, ServiceLab.ServerUdpPort, UdpNodePort) },
        Endpoints = ServiceLab.Endpoints(endpoints),
    };

    /// <summary>Every attempt answered by the one backend, which saw the client's own address.</summary>
    private static void AssertFromClient(SvcRun run, string backend)
    {
        Assert.True(run.AllOk, $"not every attempt from the client was answered: {run}");
        Assert.True(run.ByBackend.Keys.SequenceEqual([backend]), $"expected answers from {backend} only: {run}");
        Assert.True(run.Answers.All(a => a.SeenIp == LabRun.ClientIp), $"a backend did not see the client's own address {LabRun.ClientIp}: {run}");
    }

    /// <summary>
    /// The health port's status, polled for a few seconds: its listeners follow the Services after the reload
    /// that the node logged as applied.
    /// </summary>
    private static void AssertHealth(LabRun lab, int node, int status, int port = HealthPort)
    {
        SvcRun? last = null;
        LabScenarios.Eventually(() =>
            {
                last = lab.SvcHttp("c", $"http://{LabRun.PublicIp(node)}:{port}/healthz");
                return last.Answers is [{ Line: var line }] && line.Split(' ') is ["HTTP", var code, ..] && code == $"{status}";
            }, TimeSpan.FromSeconds(10), () => $"node{node}'s health port {port} should answer {status}: {last}");
    }
}
