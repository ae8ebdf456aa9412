using FastOverlay.Control.Subnets;
using FastOverlay.Control.Etcd;

namespace FastOverlay.Tests.Control;

/// <summary>etcd killed under a running node (its own etcd: the test kills it), and a node cut off from a working etcd.</summary>
public sealed class EtcdOutageTests(EtcdServer etcd) : IClassFixture<EtcdServer>
{
    [SkippableFact]
    public async Task Etcd_killed_keeps_the_forwarding_state_and_a_restart_resyncs_without_spinning()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        const string prefix = "/outage/coreos.com/network";
        etcd.Ctl("put", prefix + "/config", FlannelJson.Config);
        etcd.Ctl("put", prefix + "/subnets/10.244.200.0-24", FlannelJson.Lease("172.31.77.2", "0a:00:00:00:02:00"));
        using var inner = new EtcdSubnetStore(etcd.Options(prefix));
        var store = new GatedStore(inner);
        await using var node = new MemberHarness(store, "172.31.77.1");
        await node.StartAsync();
        await node.WaitAsync(() => node.StatePeers.Count == 1, TimeSpan.FromSeconds(1), "the peer");
        var state = node.Node.Controller!.Forwarder.State;
        Assert.True(node.Membership.EtcdConnected);

        etcd.Kill();
        var listsBefore = store.Lists;
        await Task.Delay(TimeSpan.FromSeconds(4));
        // The data path never waited on etcd: same state, same peer.
        Assert.Same(state, node.Node.Controller!.Forwarder.State);
        // Backoff 100 ms doubling to 5 s: a handful of attempts in 4 s, not a spin.
        Assert.InRange(store.Lists - listsBefore, 1, 8);
        Assert.Equal(1, InMemoryMembershipTests.Count(node.LogText, "etcd: unreachable"));
        // What fastoverlay_etcd_connected exports: the lease is still held, but etcd is not reached.
        Assert.False(node.Membership.EtcdConnected);

        etcd.Start();
        etcd.Ctl("del", prefix + "/subnets/10.244.200.0-24");
        etcd.Ctl("put", prefix + "/subnets/10.244.201.0-24", FlannelJson.Lease("172.31.77.3", "0a:00:00:00:03:00"));
        var took = await node.WaitAsync(() => node.StatePeer("10.244.201.0/24") is not null && node.StatePeer("10.244.200.0/24") is null, TimeSpan.FromSeconds(8), "the resync");
        Console.WriteLine($"etcd restarted -> peers resynced in {took.TotalMilliseconds:0} ms");
        Assert.True(node.Membership.EtcdConnected);
        Assert.Single(node.Host.Acquired);
        Assert.Contains("172.31.77.1", etcd.Ctl("get", "--print-value-only", $"{prefix}/subnets/{node.Lease.Key}"), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_lease_deleted_while_the_node_was_cut_off_is_gone_after_the_resync()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        const string prefix = "/partition/coreos.com/network";
        etcd.Ctl("put", prefix + "/config", FlannelJson.Config);
        etcd.Ctl("put", prefix + "/subnets/10.244.200.0-24", FlannelJson.Lease("172.31.77.2", "0a:00:00:00:02:00"));
        etcd.Ctl("put", prefix + "/subnets/10.244.201.0-24", FlannelJson.Lease("172.31.77.3", "0a:00:00:00:03:00"));
        using var inner = new EtcdSubnetStore(etcd.Options(prefix));
        var store = new GatedStore(inner);
        await using var node = new MemberHarness(store, "172.31.77.1");
        await node.StartAsync();
        await node.WaitAsync(() => node.StatePeers.Count == 2, TimeSpan.FromSeconds(1), "two peers");
        store.Down = true;
        etcd.Ctl("del", prefix + "/subnets/10.244.200.0-24");
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(2, node.StatePeers.Count);
        store.Down = false;
        await node.WaitAsync(() => node.StatePeers.Count == 1, TimeSpan.FromSeconds(3), "the resync");
        Assert.Equal("10.244.201.0/24", node.StatePeers[0].Subnet.ToString());
    }
}
