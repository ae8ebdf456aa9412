using Xunit.Abstractions;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// The node's own stack behind the host port (Node.HostInterface), as cbr0 and the node's routes give it to a
/// flannel node: what kubelet probes, host-network pods and pods talking to the node or the world need. The lab's
/// node stacks hold 10.244.N.0/32 on the kernel end and route the pod and service networks through it, with
/// ip_forward and flannel's ip-masq rule (LAB_HOST=1); the client namespace stands for the world outside.
/// </summary>
[Collection("netns")]
public sealed class HostPortLabTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData("default")]
    [InlineData("off")]
    public void The_node_reaches_its_pods_and_the_others_and_pods_reach_the_nodes_and_the_world_outside(string offloads)
    {
        ServiceLab.Require("nft", "iperf3", "ss");
        using var lab = LabRun.Up("fastoverlay", output, offloads: offloads, client: true, host: true);
        lab.Serve("p11", "p21", "n1", "n2", "c");

        // Host processes (kubelet's probes) to a local and a remote pod: they come from the node's overlay address.
        foreach (var pod in new[] { "p11", "p21" })
        {
            var r = lab.SvcTcp("n1", LabRun.PodIp(pod), ServiceLab.ServerTcpPort);
            Assert.True(r.AllOk && r.Answers[0].Backend == pod && r.Answers[0].SeenIp == "10.244.1.0", $"node1 -> {pod}: {r}");
        }
        // Pods to their own node and to the other one (inside the underlay network: the masquerade rule applies
        // to what leaves the pod network, so node2 sees node1's address), and to a host outside the cluster.
        Expect(lab.SvcTcp("p11", LabRun.PublicIp(1), ServiceLab.ServerTcpPort), "n1", LabRun.PodIp("p11"));
        Expect(lab.SvcTcp("p21", LabRun.PublicIp(1), ServiceLab.ServerTcpPort), "n1", LabRun.PublicIp(2));
        Expect(lab.SvcTcp("p11", LabRun.PublicIp(2), ServiceLab.ServerTcpPort), "n2", LabRun.PublicIp(1));
        Expect(lab.SvcTcp("p21", LabRun.ClientIp, ServiceLab.ServerTcpPort), "c", LabRun.PublicIp(2));
        Expect(lab.SvcUdp("p12", LabRun.ClientIp, ServiceLab.ServerUdpPort), "c", LabRun.PublicIp(1));

        // At a real rate both ways, with the host's TSO super-frames in and the pods' out.
        lab.AssertTcp("n1", "p21");
        lab.AssertTcp("n1", "p21", reverse: true);
        lab.AssertTcp("n2", "p22");
        Assert.True(lab.FastOverlayRunning(1) && lab.FastOverlayRunning(2), "a node died");
    }

    /// <summary>
    /// The node's processes reach ClusterIPs (routed into the host port), and a Service whose endpoint is a node's
    /// own address (the API server behind the default kubernetes Service) is reached from pods.
    /// </summary>
    [SkippableFact]
    public void Node_processes_reach_a_ClusterIP_and_pods_reach_a_Service_whose_endpoint_is_a_node_address()
    {
        ServiceLab.Require("nft");
        using var lab = LabRun.Up("fastoverlay", output, client: true, host: true);
        lab.Serve("p12", "p22", "n2");
        const string Web = "10.96.0.12", Api = "10.96.0.1";
        lab.ApplyServices(
            new { Name = "web", ClusterIP = Web, Ports = new[] { ServiceLab.Port("http", "TCP", 80, ServiceLab.ServerTcpPort) }, Endpoints = ServiceLab.Endpoints("p12", "p22") },
            new
            {
                Name = "kubernetes", Namespace = "default", ClusterIP = Api,
                Ports = new[] { ServiceLab.Port("https", "TCP", 443, ServiceLab.ServerTcpPort) },
                Endpoints = new object[] { new { IP = LabRun.PublicIp(2), Node = "node2" } },
            });

        var web = lab.SvcTcp("n1", Web, 80, count: 12);
        Assert.True(web.AllOk && web.ByBackend.Count == 2, $"node1's processes through ClusterIP {Web}: {web}");
        foreach (var client in new[] { "p11", "p21" })
            Expect(lab.SvcTcp(client, Api, 443, count: 3), "n2", null);
    }

    private static void Expect(SvcRun run, string server, string? seen)
    {
        Assert.True(run.AllOk, $"not answered: {run}");
        Assert.All(run.Answers, a => Assert.Equal(server, a.Backend));
        if (seen is not null) Assert.All(run.Answers, a => Assert.Equal(seen, a.SeenIp));
    }
}
