using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using FastOverlay.Control.Etcd;
using FastOverlay.Control.Subnets;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Control;

/// <summary>
/// Against a real etcd 3.4 (one per test class, each test under its own prefix): leases written with etcdctl exactly
/// as flanneld writes them become peers, and ours reads back as flanneld would parse it.
/// </summary>
public sealed partial class EtcdInteropTests(EtcdServer etcd) : IClassFixture<EtcdServer>
{
    private string NewPrefix(string? name = null) => name ?? $"/t{Guid.NewGuid():N}/coreos.com/network";

    private EtcdSubnetStore Store(string prefix)
    {
        etcd.Ctl("put", prefix + "/config", FlannelJson.Config);
        return new EtcdSubnetStore(etcd.Options(prefix));
    }

    [SkippableFact]
    public async Task A_lease_written_as_flanneld_writes_it_becomes_a_peer_within_a_second()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        const string prefix = EtcdOptions.DefaultPrefix;
        using var store = Store(prefix);
        await using var node = new MemberHarness(store, "172.31.77.1");
        await node.StartAsync();

        var lease = etcd.Ctl("lease", "grant", "86400").Split(' ')[1];
        etcd.Ctl("put", "--lease=" + lease, prefix + "/subnets/10.244.77.0-24", FlannelJson.Lease("172.31.77.7", "c6:d2:32:6f:8f:44"));
        var took = await node.WaitAsync(() => node.StatePeer("10.244.77.0/24") is not null, TimeSpan.FromSeconds(1), "the flanneld lease as a peer");
        var peer = node.StatePeer("10.244.77.0/24")!;
        Assert.Equal(("172.31.77.7", "c6:d2:32:6f:8f:44"), (peer.PublicIp.ToString(), peer.VtepMac.ToString()));
        Console.WriteLine($"etcdctl put -> peer in the forwarding state: {took.TotalMilliseconds:0} ms (includes the etcdctl process)");
        etcd.Ctl("del", prefix + "/subnets/10.244.77.0-24");
        etcd.Ctl("del", prefix + "/subnets/" + node.Lease.Key);
    }

    [SkippableFact]
    public async Task A_dead_first_endpoint_is_skipped_for_the_next_one()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = NewPrefix();
        etcd.Ctl("put", prefix + "/config", FlannelJson.Config);
        using var store = new EtcdSubnetStore(etcd.Options(prefix) with { Endpoints = [new Uri("http://127.0.0.1:1"), new Uri(etcd.Endpoint)] });
        await using var node = new MemberHarness(store, "172.31.77.1");
        await node.StartAsync();
        Assert.Contains("etcd: unreachable", node.LogText, StringComparison.Ordinal);
        Assert.Equal(etcd.Endpoint + "/", store.Endpoint);
    }

    [SkippableFact]
    public async Task Our_lease_reads_back_as_flannel_parses_it_with_a_24_hour_ttl()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = NewPrefix();
        using var store = Store(prefix);
        await using var node = new MemberHarness(store, "172.31.77.1");
        await node.StartAsync();

        var key = $"{prefix}/subnets/{node.Lease.Key}";
        var value = etcd.Ctl("get", "--print-value-only", key).TrimEnd('\n');
        Assert.Matches(LeaseShape(), value);
        Assert.Equal($$$"""{"PublicIP":"172.31.77.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"{{{node.Lease.Attrs.VtepMac}}}"}}""", value);
        Assert.Matches(@"^10\.244\.\d+\.0-24$", node.Lease.Key);
        var ttl = etcd.Ctl("lease", "timetolive", node.Lease.LeaseId.ToString("x", CultureInfo.InvariantCulture));
        var seconds = int.Parse(TtlPattern().Match(ttl).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.InRange(seconds, 86_390, 86_400);
        // The config key is flannel's, and we never wrote it.
        Assert.Equal(FlannelJson.Config, etcd.Ctl("get", "--print-value-only", prefix + "/config").TrimEnd('\n'));
    }

    [SkippableFact]
    public async Task Eight_nodes_at_once_get_eight_distinct_subnets_and_a_restart_keeps_subnet_and_vtep_mac()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = NewPrefix();
        using var store = Store(prefix);
        var network = FlannelNetwork.Parse(Encoding.UTF8.GetBytes(FlannelJson.Config));
        var leases = await Task.WhenAll(Enumerable.Range(1, 8).Select(i =>
            Task.Run(() => new SubnetLeaser(store, network, Ipv4Address.Parse($"172.31.77.{i}"), TextWriter.Null).AcquireAsync(null, null, default))));
        Assert.Equal(8, leases.Select(l => l.Subnet).Distinct().Count());
        Assert.All(leases, l => Assert.True(network.Fits(l.Subnet)));

        var again = await new SubnetLeaser(store, network, Ipv4Address.Parse("172.31.77.3"), TextWriter.Null).AcquireAsync(null, null, default);
        Assert.Equal((leases[2].Subnet, leases[2].Attrs.VtepMac), (again.Subnet, again.Attrs.VtepMac));
        Assert.NotEqual(leases[2].LeaseId, again.LeaseId);
        Assert.Equal(8, etcd.Ctl("get", "--prefix", "--keys-only", prefix + "/subnets/").Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [SkippableFact]
    public async Task Racing_leasers_over_four_subnets_each_get_one_through_the_version_zero_transaction()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = NewPrefix();
        etcd.Ctl("put", prefix + "/config", """{"Network":"10.10.0.0/21","SubnetMin":"10.10.1.0","SubnetMax":"10.10.4.0","Backend":{"Type":"vxlan"}}""");
        using var store = new EtcdSubnetStore(etcd.Options(prefix));
        var network = FlannelNetwork.Parse(Encoding.UTF8.GetBytes(etcd.Ctl("get", "--print-value-only", prefix + "/config").TrimEnd('\n')));
        var log = new StringWriter();
        var synced = TextWriter.Synchronized(log);
        // The same seed makes every leaser pick the same candidate first: conflicts are certain.
        var leases = await Task.WhenAll(Enumerable.Range(1, 4).Select(i =>
            Task.Run(() => new SubnetLeaser(store, network, Ipv4Address.Parse($"172.31.77.{i}"), synced, random: new Random(3)).AcquireAsync(null, null, default))));
        Assert.Equal(4, leases.Select(l => l.Subnet).Distinct().Count());
        Assert.Contains("another node took the subnet first", log.ToString(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task The_subnet_file_subnet_is_taken_when_free_and_the_lease_is_renewed()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = NewPrefix();
        using var store = Store(prefix);
        var dir = Directory.CreateTempSubdirectory("fastoverlay-etcd-env-");
        try
        {
            var env = Path.Combine(dir.FullName, "subnet.env");
            File.WriteAllText(env, "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.42.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n");
            var timings = new LeaseTimings { Ttl = TimeSpan.FromSeconds(3), RenewMargin = TimeSpan.FromSeconds(2), RetryInterval = TimeSpan.FromSeconds(1) };
            await using var node = new MemberHarness(store, "172.31.77.1", MemberHarness.Options(env, timings));
            await node.StartAsync();
            Assert.Equal("10.244.42.0/24", node.Lease.Subnet.ToString());
            Assert.Equal("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.42.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n", File.ReadAllText(env));
            // Three TTLs later the key is still there: renewed every second (a new lease each time, as flanneld does).
            await Task.Delay(TimeSpan.FromSeconds(9));
            Assert.Contains("172.31.77.1", etcd.Ctl("get", "--print-value-only", $"{prefix}/subnets/10.244.42.0-24"), StringComparison.Ordinal);
            Assert.Single(node.Host.Acquired);
            Assert.Empty(node.Host.Lost);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [SkippableFact]
    public async Task Peers_put_update_delete_and_expiry_reach_the_data_path_within_a_second()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = NewPrefix();
        using var store = Store(prefix);
        await using var node = new MemberHarness(store, "172.31.77.1");
        await node.StartAsync();
        var subnets = prefix + "/subnets/";
        etcd.Ctl("put", subnets + "10.244.200.0-24", FlannelJson.Lease("172.31.77.2", "0a:00:00:00:02:00"));
        etcd.Ctl("put", subnets + "10.244.201.0-24", FlannelJson.Lease("172.31.77.3", "0a:00:00:00:03:00"));
        await node.WaitAsync(() => node.StatePeers.Count == 2, TimeSpan.FromSeconds(1), "two peers");
        var untouched = node.StatePeer("10.244.201.0/24");

        etcd.Ctl("put", subnets + "10.244.200.0-24", FlannelJson.Lease("172.31.77.22", "0a:00:00:00:02:22"));
        await node.WaitAsync(() => node.StatePeer("10.244.200.0/24")?.PublicIp == Ipv4Address.Parse("172.31.77.22"), TimeSpan.FromSeconds(1), "the changed PublicIP");
        Assert.Equal(MacAddress.Parse("0a:00:00:00:02:22"), node.StatePeer("10.244.200.0/24")!.VtepMac);
        Assert.Equal(untouched, node.StatePeer("10.244.201.0/24"));

        etcd.Ctl("del", subnets + "10.244.200.0-24");
        await node.WaitAsync(() => node.StatePeer("10.244.200.0/24") is null, TimeSpan.FromSeconds(1), "the delete");

        var shortLease = etcd.Ctl("lease", "grant", "2").Split(' ')[1];
        etcd.Ctl("put", "--lease=" + shortLease, subnets + "10.244.202.0-24", FlannelJson.Lease("172.31.77.4", "0a:00:00:00:04:00"));
        await node.WaitAsync(() => node.StatePeer("10.244.202.0/24") is not null, TimeSpan.FromSeconds(1), "the short-lived peer");
        await node.WaitAsync(() => node.StatePeer("10.244.202.0/24") is null, TimeSpan.FromSeconds(8), "the expiry");

        etcd.Ctl("put", subnets + "10.244.203.0-24", FlannelJson.Lease("172.31.77.5", "0a:00:00:00:05:00", backend: "host-gw"));
        etcd.Ctl("put", subnets + "nonsense", "{}");
        etcd.Ctl("put", subnets + "10.244.204.0-24", "not json");
        etcd.Ctl("put", subnets + "10.244.205.0-24", FlannelJson.Lease("172.31.77.6", "0a:00:00:00:06:00"));
        await node.WaitAsync(() => node.StatePeer("10.244.205.0/24") is not null, TimeSpan.FromSeconds(1), "the good peer after the bad ones");
        Assert.Equal(2, node.StatePeers.Count);
        var log = node.LogText;
        Assert.Equal(1, InMemoryMembershipTests.Count(log, "lease 10.244.203.0-24 skipped: BackendType \"host-gw\""));
        Assert.Equal(1, InMemoryMembershipTests.Count(log, "lease nonsense skipped"));
        Assert.Equal(1, InMemoryMembershipTests.Count(log, "lease 10.244.204.0-24 skipped"));
    }

    [SkippableFact]
    public async Task Our_key_deleted_with_etcdctl_is_acquired_again_with_the_same_subnet_and_mac()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = NewPrefix();
        using var store = Store(prefix);
        await using var node = new MemberHarness(store, "172.31.77.1");
        await node.StartAsync();
        var first = node.Lease;
        etcd.Ctl("del", $"{prefix}/subnets/{first.Key}");
        var took = await node.WaitAsync(() => node.Host.Acquired.Count == 2 && node.Node.Lease is not null, TimeSpan.FromSeconds(2), "re-acquisition");
        Assert.Equal((first.Subnet, first.Attrs.VtepMac), (node.Lease.Subnet, node.Lease.Attrs.VtepMac));
        Assert.Contains("172.31.77.1", etcd.Ctl("get", "--print-value-only", $"{prefix}/subnets/{first.Key}"), StringComparison.Ordinal);
        Console.WriteLine($"own key deleted -> lease held again: {took.TotalMilliseconds:0} ms");
    }

    [SkippableFact]
    public async Task A_compaction_across_the_watch_gap_loses_no_delete()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = NewPrefix();
        using var inner = Store(prefix);
        etcd.Ctl("put", prefix + "/subnets/10.244.200.0-24", FlannelJson.Lease("172.31.77.2", "0a:00:00:00:02:00"));
        var store = new GatedStore(inner);
        await using var node = new MemberHarness(store, "172.31.77.1");
        store.HoldWatch();
        await node.StartAsync();
        await node.WaitAsync(() => node.StatePeer("10.244.200.0/24") is not null, TimeSpan.FromSeconds(1), "the listed peer");
        // Compacting at exactly the delete's revision drops its tombstone, and etcd still accepts a watch from
        // there without an error: only the read check after the watch's creation catches it.
        etcd.Ctl("del", prefix + "/subnets/10.244.200.0-24");
        var revision = RevisionPattern().Match(etcd.Ctl("endpoint", "status", "-w", "json")).Groups[1].Value;
        etcd.Ctl("compact", revision);
        store.ReleaseWatch();
        await node.WaitAsync(() => node.StatePeers.Count == 0, TimeSpan.FromSeconds(1), "the delete, through a re-list");
        Assert.Contains("watch compacted", node.LogText, StringComparison.Ordinal);

        // A compaction further on, while a new gap is held open: the watch is refused outright (Canceled +
        // CompactRevision, etcd 3.4) and the re-list sees the second delete too.
        etcd.Ctl("put", prefix + "/subnets/10.244.201.0-24", FlannelJson.Lease("172.31.77.3", "0a:00:00:00:03:00"));
        await node.WaitAsync(() => node.StatePeer("10.244.201.0/24") is not null, TimeSpan.FromSeconds(1), "the second peer");
        store.BreakWatch();
        await node.WaitAsync(() => store.Holding, TimeSpan.FromSeconds(6), "the held watch");
        etcd.Ctl("del", prefix + "/subnets/10.244.201.0-24");
        etcd.Ctl("put", prefix + "/subnets/10.244.202.0-24", FlannelJson.Lease("172.31.77.4", "0a:00:00:00:04:00"));
        etcd.Ctl("compact", RevisionPattern().Match(etcd.Ctl("endpoint", "status", "-w", "json")).Groups[1].Value);
        store.ReleaseWatch();
        await node.WaitAsync(() => node.StatePeer("10.244.201.0/24") is null && node.StatePeer("10.244.202.0/24") is not null, TimeSpan.FromSeconds(1), "the second delete");
    }

    [GeneratedRegex("""^\{"PublicIP":"\d+\.\d+\.\d+\.\d+","PublicIPv6":null,"BackendType":"vxlan","BackendData":\{"VNI":1,"VtepMAC":"([0-9a-f]{2}:){5}[0-9a-f]{2}"\}\}$""")]
    private static partial Regex LeaseShape();

    [GeneratedRegex(@"remaining\((\d+)s\)")]
    private static partial Regex TtlPattern();

    [GeneratedRegex("\"revision\":(\\d+)")]
    private static partial Regex RevisionPattern();
}
