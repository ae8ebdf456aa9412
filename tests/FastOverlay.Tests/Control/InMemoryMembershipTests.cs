using System.Text;
using FastOverlay.Control.Subnets;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Control;

/// <summary>The leaser, the watcher and the data path glue against the in-memory store: no etcd process needed.</summary>
public sealed class InMemoryMembershipTests
{
    private static readonly FlannelNetwork Network = FlannelNetwork.Parse(Encoding.UTF8.GetBytes(FlannelJson.Config));
    private static byte[] Json(string text) => Encoding.UTF8.GetBytes(text);

    private static InMemorySubnetStore Store() => new(Json(FlannelJson.Config));

    private static SubnetLeaser Leaser(ISubnetStore store, string ip, int seed = 1) =>
        new(store, Network, Ipv4Address.Parse(ip), TextWriter.Null, random: new Random(seed));

    [Fact]
    public async Task Acquisition_prefers_our_public_ips_lease_then_the_previous_subnet_then_a_random_free_one()
    {
        var store = Store();
        store.Put("10.244.9.0-24", Json(FlannelJson.Lease("172.31.77.1", "0a:00:00:00:09:09")));
        var reused = await Leaser(store, "172.31.77.1").AcquireAsync(Ipv4Prefix.Parse("10.244.5.0/24"), null, default);
        Assert.Equal(("10.244.9.0/24", "0a:00:00:00:09:09"), (reused.Subnet.ToString(), reused.Attrs.VtepMac.ToString()));

        var previous = await Leaser(store, "172.31.77.2").AcquireAsync(Ipv4Prefix.Parse("10.244.5.0/24"), null, default);
        Assert.Equal("10.244.5.0/24", previous.Subnet.ToString());

        // The previous subnet is held by someone else now: a random one of the first 100 free (10.244.1..102, less 5 and 9).
        var random = await Leaser(store, "172.31.77.3").AcquireAsync(Ipv4Prefix.Parse("10.244.5.0/24"), null, default);
        Assert.InRange(random.Subnet.Address, Ipv4Address.Parse("10.244.1.0").Value, Ipv4Address.Parse("10.244.102.0").Value);
        Assert.DoesNotContain(random.Subnet.ToString(), new[] { "10.244.5.0/24", "10.244.9.0/24" });
        Assert.Equal(3, (await store.ListLeasesAsync(default)).Leases.Count);
    }

    [Fact]
    public async Task A_lease_of_ours_that_no_longer_fits_is_deleted_and_a_new_one_taken()
    {
        var store = Store();
        store.Put("10.244.0.0-24", Json(FlannelJson.Lease("172.31.77.1", "0a:00:00:00:00:01"))); // below SubnetMin
        var lease = await Leaser(store, "172.31.77.1").AcquireAsync(null, null, default);
        Assert.NotEqual("10.244.0.0/24", lease.Subnet.ToString());
        Assert.Null(store.Get("10.244.0.0-24"));
    }

    [Fact]
    public async Task Racing_leasers_over_four_subnets_get_four_distinct_ones()
    {
        var store = new InMemorySubnetStore(Json("""{"Network":"10.10.0.0/21","SubnetMin":"10.10.1.0","SubnetMax":"10.10.4.0","Backend":{"Type":"vxlan"}}"""));
        var network = FlannelNetwork.Parse(store.Config);
        var tasks = Enumerable.Range(1, 4).Select(i => Task.Run(() =>
            new SubnetLeaser(store, network, Ipv4Address.Parse($"172.31.77.{i}"), TextWriter.Null, random: new Random(7)).AcquireAsync(null, null, default))).ToArray();
        var leases = await Task.WhenAll(tasks);
        Assert.Equal(4, leases.Select(l => l.Subnet).Distinct().Count());
        await Assert.ThrowsAsync<InvalidOperationException>(() => new SubnetLeaser(store, network, Ipv4Address.Parse("172.31.77.9"), TextWriter.Null).AcquireAsync(null, null, default));
    }

    [Fact]
    public async Task Renewal_never_resurrects_a_deleted_key_or_overwrites_a_taker()
    {
        var store = Store();
        var leaser = Leaser(store, "172.31.77.1");
        var lease = await leaser.AcquireAsync(null, null, default);
        Assert.NotNull(await leaser.RenewAsync(lease, default));
        store.Delete(lease.Key);
        Assert.Null(await leaser.RenewAsync(lease, default));
        store.Put(lease.Key, Json(FlannelJson.Lease("172.31.77.50", "0a:00:00:00:00:50")));
        Assert.Null(await leaser.RenewAsync(lease, default));
        Assert.Contains("172.31.77.50", Encoding.UTF8.GetString(store.Get(lease.Key)!), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Peers_follow_puts_updates_deletes_and_expiry_and_skip_what_flannel_skips()
    {
        var store = Store();
        await using var node = new MemberHarness(store, "172.31.77.1");
        await node.StartAsync();
        store.Put("10.244.200.0-24", Json(FlannelJson.Lease("172.31.77.2", "0a:00:00:00:02:00")));
        await node.WaitAsync(() => node.StatePeer("10.244.200.0/24") is not null, TimeSpan.FromSeconds(1), "the peer");
        store.Put("10.244.200.0-24", Json(FlannelJson.Lease("172.31.77.22", "0a:00:00:00:02:22")));
        await node.WaitAsync(() => node.StatePeer("10.244.200.0/24")?.VtepMac == MacAddress.Parse("0a:00:00:00:02:22"), TimeSpan.FromSeconds(1), "the update");
        Assert.Equal("172.31.77.22", node.StatePeer("10.244.200.0/24")!.PublicIp.ToString());

        store.Put("10.244.201.0-24", Json(FlannelJson.Lease("172.31.77.3", "0a:00:00:00:03:00", backend: "udp")));
        store.Put("garbage", Json("{}"));
        store.Put("10.244.202.0-24", Json("not json"));
        store.Put("10.244.203.0-24", Json(FlannelJson.Lease("172.31.77.4", "0a:00:00:00:04:00")), TimeSpan.FromMilliseconds(200));
        await node.WaitAsync(() => node.StatePeer("10.244.203.0/24") is not null, TimeSpan.FromSeconds(1), "the short-lived peer");
        await Task.Delay(300);
        store.ExpireNow();
        await node.WaitAsync(() => node.StatePeer("10.244.203.0/24") is null, TimeSpan.FromSeconds(1), "expiry");
        store.Delete("10.244.200.0-24");
        await node.WaitAsync(() => node.StatePeers.Count == 0, TimeSpan.FromSeconds(1), "the delete");

        var log = node.LogText;
        Assert.Equal(1, Count(log, "lease 10.244.201.0-24 skipped: BackendType \"udp\""));
        Assert.Equal(1, Count(log, "lease garbage skipped"));
        Assert.Equal(1, Count(log, "lease 10.244.202.0-24 skipped: the value does not parse"));
        Assert.Equal(1, Count(log, $"lease {node.Lease.Key} skipped: our own lease"));
    }

    [Fact]
    public async Task A_compacted_watch_relists_and_loses_no_delete()
    {
        var store = Store();
        store.Put("10.244.200.0-24", Json(FlannelJson.Lease("172.31.77.2", "0a:00:00:00:02:00")));
        var gated = new GatedStore(store);
        await using var node = new MemberHarness(gated, "172.31.77.1");
        gated.HoldWatch();
        await node.StartAsync();
        await node.WaitAsync(() => node.StatePeer("10.244.200.0/24") is not null, TimeSpan.FromSeconds(1), "the listed peer");
        // The gap between the list and the watch: the peer goes, and the history of it is compacted away.
        store.Delete("10.244.200.0-24");
        store.Compact();
        gated.ReleaseWatch();
        await node.WaitAsync(() => node.StatePeers.Count == 0, TimeSpan.FromSeconds(1), "the delete, through a re-list");
        Assert.Contains("watch compacted", node.LogText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_outage_keeps_the_peers_and_a_delete_made_meanwhile_is_seen_on_resync()
    {
        var store = Store();
        store.Put("10.244.200.0-24", Json(FlannelJson.Lease("172.31.77.2", "0a:00:00:00:02:00")));
        store.Put("10.244.201.0-24", Json(FlannelJson.Lease("172.31.77.3", "0a:00:00:00:03:00")));
        var gated = new GatedStore(store);
        await using var node = new MemberHarness(gated, "172.31.77.1");
        await node.StartAsync();
        await node.WaitAsync(() => node.StatePeers.Count == 2, TimeSpan.FromSeconds(1), "two peers");
        gated.Down = true;
        store.Delete("10.244.200.0-24");
        await Task.Delay(500);
        Assert.Equal(2, node.StatePeers.Count);
        gated.Down = false;
        await node.WaitAsync(() => node.StatePeers.Count == 1, TimeSpan.FromSeconds(2), "the resync");
        Assert.Equal(1, Count(node.LogText, "etcd: unreachable"));
    }

    [Fact]
    public async Task Our_key_deleted_by_someone_else_stops_routing_and_is_acquired_again()
    {
        var store = Store();
        await using var node = new MemberHarness(store, "172.31.77.1");
        await node.StartAsync();
        var first = node.Lease;
        var controller = node.Node.Controller;
        store.Delete(first.Key);
        await node.WaitAsync(() => node.Host.Acquired.Count == 2, TimeSpan.FromSeconds(1), "re-acquisition");
        Assert.Equal([first], node.Host.Lost);
        // The previous subnet is preferred and free again, and the VtepMAC is kept.
        Assert.Equal((first.Subnet, first.Attrs.VtepMac), (node.Lease.Subnet, node.Lease.Attrs.VtepMac));
        Assert.NotSame(controller, node.Node.Controller);
        Assert.Contains("was deleted", node.LogText, StringComparison.Ordinal);
        Assert.NotNull(store.Get(first.Key));
    }

    internal static int Count(string text, string what)
    {
        var n = 0;
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + 1, StringComparison.Ordinal)) n++;
        return n;
    }
}
