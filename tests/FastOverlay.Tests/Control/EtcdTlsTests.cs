namespace FastOverlay.Tests.Control;

/// <summary>--etcd-cafile/--etcd-certfile/--etcd-keyfile against an etcd that requires client certificates.</summary>
public sealed class EtcdTlsTests(TlsEtcdServer etcd) : IClassFixture<TlsEtcdServer>
{
    [SkippableFact]
    public async Task A_node_with_a_client_certificate_joins_over_tls()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        Skip.If(etcd.Tls is null, "openssl is not installed (apt-get install openssl): no certificates for the TLS etcd");
        const string prefix = "/tls/coreos.com/network";
        etcd.Ctl("put", prefix + "/config", FlannelJson.Config);
        using (var anonymous = new FastOverlay.Control.Etcd.EtcdSubnetStore(etcd.Options(prefix) with { CertFile = null, KeyFile = null }))
            await Assert.ThrowsAsync<FastOverlay.Control.Subnets.StoreUnavailableException>(() => anonymous.ListLeasesAsync(default));

        using var store = new FastOverlay.Control.Etcd.EtcdSubnetStore(etcd.Options(prefix));
        await using var node = new MemberHarness(store, "172.31.77.1");
        await node.StartAsync();
        etcd.Ctl("put", prefix + "/subnets/10.244.200.0-24", FlannelJson.Lease("172.31.77.2", "0a:00:00:00:02:00"));
        await node.WaitAsync(() => node.StatePeer("10.244.200.0/24") is not null, TimeSpan.FromSeconds(1), "the peer, over TLS");
    }
}
