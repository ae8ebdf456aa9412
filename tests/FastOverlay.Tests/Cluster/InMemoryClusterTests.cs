using FastOverlay.Cli.Demo;
using FastOverlay.Cluster;
using FastOverlay.Pipeline;

namespace FastOverlay.Tests.Cluster;

public class InMemoryClusterTests
{
    [Fact]
    public void Seed_cluster_has_three_workers_and_eight_pods_spread_over_them()
    {
        var cluster = InMemoryCluster.Create(ClusterSpec.Seed());
        Assert.Equal(3, cluster.Nodes.Length);
        Assert.Equal(8, cluster.Pods.Length);
        Assert.Equal(3, cluster.Pods.Count(p => p.Name.StartsWith("web-", StringComparison.Ordinal)));
        Assert.Equal(3, cluster.Pods.Count(p => p.Name.StartsWith("api-", StringComparison.Ordinal)));
        Assert.Equal(2, cluster.Pods.Count(p => p.Name.StartsWith("cache-", StringComparison.Ordinal)));
        Assert.All(cluster.Nodes, n => Assert.InRange(cluster.Pods.Count(p => p.NodeName == n.Name), 2, 3));
        Assert.All(cluster.Pods, p => Assert.True(cluster.Node(p.NodeName).State.Node.Subnet.Contains(p.Ip.Value)));
    }

    [Fact]
    public void Every_walk_is_delivered_end_to_end_through_the_hops_it_should_take()
    {
        var cluster = InMemoryCluster.Create(ClusterSpec.Seed());
        var tracer = cluster.EnableTracing();
        var walks = ClusterDemo.RunWalks(cluster, tracer);
        Assert.Equal(5, walks.Count);
        Assert.All(walks, w => Assert.True(w.Delivered, w.Title));

        var sameNode = walks[0].Hops.Select(h => h.Event).ToList();
        Assert.Contains(TraceEvent.ArpAnswered, sameNode);
        Assert.Contains(TraceEvent.ArpParked, sameNode);
        Assert.Contains(TraceEvent.ArpRequestSent, sameNode);
        Assert.Contains(TraceEvent.ArpReleased, sameNode);
        Assert.DoesNotContain(TraceEvent.Encapsulated, sameNode);

        var otherNode = walks[1].Hops.Select(h => (h.Node, h.Event)).ToList();
        var order = new[] { ("node1", TraceEvent.RouteLookup), ("node1", TraceEvent.Encapsulated), ("node2", TraceEvent.Decapsulated), ("node2", TraceEvent.RouteLookup), ("node2", TraceEvent.ArpParked), ("node2", TraceEvent.NeighborResolved), ("api-1", TraceEvent.EndpointReceived) };
        var at = -1;
        foreach (var step in order)
        {
            var next = otherNode.FindIndex(at + 1, h => h == step);
            Assert.True(next > at, $"{step} missing or out of order");
            at = next;
        }

        var reply = walks[2].Hops.Select(h => (h.Node, h.Event)).ToList();
        Assert.Contains(("node2", TraceEvent.Encapsulated), reply);
        Assert.Contains(("node1", TraceEvent.Decapsulated), reply);
        Assert.Contains(("web-0", TraceEvent.EndpointReceived), reply);

        // Through the ClusterIP: DNAT on the client's node before the route lookup, then VXLAN to the endpoint's
        // node; the answer is reverse-NATed back on the client's node, after decap.
        var toService = walks[3].Hops.Select(h => (h.Node, h.Event)).ToList();
        var serviceOrder = new[] { ("node1", TraceEvent.ServiceFlowCreated), ("node1", TraceEvent.ServiceDnat), ("node1", TraceEvent.RouteLookup), ("node1", TraceEvent.Encapsulated), ("node2", TraceEvent.Decapsulated), ("api-1", TraceEvent.EndpointReceived) };
        at = -1;
        foreach (var step in serviceOrder)
        {
            var next = toService.FindIndex(at + 1, h => h == step);
            Assert.True(next > at, $"{step} missing or out of order");
            at = next;
        }
        var fromService = walks[4].Hops.Select(h => (h.Node, h.Event)).ToList();
        Assert.True(fromService.IndexOf(("node1", TraceEvent.Decapsulated)) < fromService.IndexOf(("node1", TraceEvent.ServiceReverseNat)));
        Assert.DoesNotContain(("node2", TraceEvent.ServiceReverseNat), fromService);
        Assert.Contains(("web-0", TraceEvent.EndpointReceived), fromService);
        Assert.All(cluster.Nodes, n => Assert.Equal(0, n.Counters.TotalDrops));
    }

    [Fact]
    public void All_pods_reach_all_pods_and_nothing_leaks()
    {
        var cluster = InMemoryCluster.Create(ClusterSpec.Seed());
        ushort seq = 0;
        foreach (var from in cluster.Pods)
        {
            foreach (var to in cluster.Pods.Where(p => p != from))
            {
                var before = from.EchoRepliesReceived;
                for (var attempt = 0; attempt < 3 && !from.SendEcho(to.Ip.Value, 1, ++seq); attempt++) cluster.RunUntilIdle();
                cluster.RunUntilIdle();
                Assert.True(from.EchoRepliesReceived == before + 1, $"{from.Name} -> {to.Name}");
            }
        }
        Assert.Equal(0, cluster.Pool.InUse);
        Assert.All(cluster.Nodes, n => Assert.Equal(0, n.Counters.TotalDrops));
    }
}
