using FastOverlay.Control.Etcd;

namespace FastOverlay.Tests.Control;

/// <summary>--etcd-username/--etcd-password against an etcd with auth enabled (its own etcd: auth stays on).</summary>
public sealed class EtcdAuthTests(EtcdServer etcd) : IClassFixture<EtcdServer>
{
    [SkippableFact]
    public async Task A_node_with_a_user_and_password_joins_and_follows_peers()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        const string prefix = "/auth/coreos.com/network";
        etcd.Ctl("put", prefix + "/config", FlannelJson.Config);
        etcd.Ctl("user", "add", "root:rootpw");
        etcd.Ctl("user", "add", "flannel:flannelpw");
        etcd.Ctl("role", "add", "flannel");
        etcd.Ctl("role", "grant-permission", "--prefix=true", "flannel", "readwrite", prefix + "/");
        etcd.Ctl("user", "grant-role", "flannel", "flannel");
        etcd.Ctl("auth", "enable");

        using var denied = new EtcdSubnetStore(etcd.Options(prefix));
        await Assert.ThrowsAsync<FastOverlay.Control.Subnets.StoreUnavailableException>(() => denied.ListLeasesAsync(default));

        using var store = new EtcdSubnetStore(etcd.Options(prefix) with { Username = "flannel", Password = "flannelpw" });
        await using var node = new MemberHarness(store, "172.31.77.1");
        await node.StartAsync();
        etcd.Ctl("--user=root:rootpw", "put", prefix + "/subnets/10.244.200.0-24", FlannelJson.Lease("172.31.77.2", "0a:00:00:00:02:00"));
        await node.WaitAsync(() => node.StatePeer("10.244.200.0/24") is not null, TimeSpan.FromSeconds(1), "the peer, through an authenticated watch");
        Assert.Contains("172.31.77.1", etcd.Ctl("--user=root:rootpw", "get", "--print-value-only", $"{prefix}/subnets/{node.Lease.Key}"), StringComparison.Ordinal);
    }
}
