using System.Text.RegularExpressions;
using FastOverlay.Control.Services;
using FastOverlay.Control.Subnets;

namespace FastOverlay.Tests.Control;

/// <summary>
/// Services in a real etcd 3.4 (one per test class, each test under its own prefix), written with etcdctl as an
/// operator would, followed by <see cref="ServiceWatcher"/> over <see cref="EtcdServiceStore"/>.
/// </summary>
public sealed partial class ServiceStoreTests(EtcdServer etcd) : IClassFixture<EtcdServer>
{
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(5);

    private static string NewPrefix() => $"/t{Guid.NewGuid():N}/fastoverlay/services/";

    [SkippableFact]
    public async Task Two_services_put_with_etcdctl_are_handed_on_and_an_update_and_a_delete_follow()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = NewPrefix();
        etcd.Ctl("put", prefix + "default/web", ServiceJson.ClusterIp("web", "10.96.0.10"));
        etcd.Ctl("put", prefix + "shop/cart", ServiceJson.ClusterIp("cart", "10.96.0.11", ns: "shop"));
        // A sibling prefix that merely starts the same is not ours.
        etcd.Ctl("put", prefix.TrimEnd('/') + "-old/default/stale", ServiceJson.ClusterIp("stale", "10.96.0.99"));
        using var store = new EtcdServiceStore(etcd.Options(), prefix);
        await using var sink = new ServiceSink(store);
        await sink.WaitAsync(() => sink.Keys.Count == 2, Soon, "both Services");
        Assert.Equal(["default/web", "shop/cart"], sink.Keys);
        Assert.Single(sink.Sets);

        etcd.Ctl("put", prefix + "default/web", ServiceJson.ClusterIp("web", "10.96.0.10", endpoint: "10.244.3.3"));
        var took = await sink.WaitAsync(() => sink.Find("default/web")?.Endpoints[0].Ip.ToString() == "10.244.3.3", Soon, "the update");
        Console.WriteLine($"etcdctl put -> the updated set handed on: {took.TotalMilliseconds:0} ms (includes the etcdctl process and the 100 ms debounce)");

        etcd.Ctl("del", prefix + "shop/cart");
        await sink.WaitAsync(() => sink.Keys.SequenceEqual(["default/web"]), Soon, "the deletion");
        Assert.Equal(0, sink.Watcher.Rejected);
        Assert.Contains($"services: listed 2 keys under {prefix}", sink.LogText, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_bad_value_is_skipped_and_counted_while_the_others_apply()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = NewPrefix();
        etcd.Ctl("put", prefix + "default/web", ServiceJson.ClusterIp("web", "10.96.0.10"));
        using var store = new EtcdServiceStore(etcd.Options(), prefix);
        await using var sink = new ServiceSink(store);
        await sink.WaitAsync(() => sink.Keys.Count == 1, Soon, "the first Service");

        etcd.Ctl("put", prefix + "default/broken", """{ "Name": "broken", "ClusterIP": "10.96.0.20", "Ports": [ { "Port": 80, "Protocol": "SCTP" } ] }""");
        etcd.Ctl("put", prefix + "default/api", ServiceJson.ClusterIp("api", "10.96.0.12"));
        await sink.WaitAsync(() => sink.Keys.Count == 2, Soon, "the good Service next to the bad one");
        Assert.Equal(["default/web", "default/api"], sink.Keys);
        Assert.Equal(1, sink.Watcher.Rejected);
        Assert.Contains($"services: skipped {prefix}default/broken: Ports[0].Protocol: SCTP is not supported", sink.LogText, StringComparison.Ordinal);

        etcd.Ctl("put", prefix + "default/broken", ServiceJson.ClusterIp("broken", "10.96.0.20"));
        await sink.WaitAsync(() => sink.Keys.Count == 3, Soon, "the fixed Service");
        Assert.Empty(sink.Watcher.Skipped);
    }

    [SkippableFact]
    public async Task A_watch_from_a_compacted_revision_reports_the_compaction()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = NewPrefix();
        using var store = new EtcdServiceStore(etcd.Options(), prefix);
        etcd.Ctl("put", prefix + "default/a", ServiceJson.ClusterIp("a", "10.96.0.1"));
        var before = await store.ListAsync(default);
        etcd.Ctl("put", prefix + "default/b", ServiceJson.ClusterIp("b", "10.96.0.2"));
        etcd.Ctl("del", prefix + "default/a");
        var after = await store.ListAsync(default);
        etcd.Ctl("compact", after.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture));

        await Assert.ThrowsAsync<StoreCompactedException>(async () =>
        {
            await foreach (var _ in store.WatchAsync(before.Revision + 1, default)) Assert.Fail("a batch from a compacted revision");
        });
        var b = Assert.Single(after.Services);
        Assert.Equal("default/b", b.Key);
        Assert.True(b.CreateRevision > before.Revision);
    }

    [SkippableFact]
    public async Task Etcd_killed_keeps_the_last_set_and_a_restart_resyncs()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var prefix = NewPrefix();
        etcd.Ctl("put", prefix + "default/web", ServiceJson.ClusterIp("web", "10.96.0.10"));
        etcd.Ctl("put", prefix + "default/api", ServiceJson.ClusterIp("api", "10.96.0.12"));
        using var store = new EtcdServiceStore(etcd.Options(), prefix);
        await using var sink = new ServiceSink(store);
        await sink.WaitAsync(() => sink.Keys.Count == 2, Soon, "two Services");

        etcd.Kill();
        try
        {
            await sink.WaitAsync(() => sink.Watcher.Reaches == false, Soon, "the outage noticed");
            await Task.Delay(TimeSpan.FromSeconds(2));
            Assert.Equal(["default/web", "default/api"], sink.Keys);
            Assert.Single(sink.Sets);
            Assert.Equal(1, InMemoryMembershipTests.Count(sink.LogText, "services: store unreachable"));
        }
        finally
        {
            etcd.Start();
        }
        etcd.Ctl("del", prefix + "default/api");
        etcd.Ctl("put", prefix + "default/db", ServiceJson.ClusterIp("db", "10.96.0.13"));
        var took = await sink.WaitAsync(() => sink.Keys.SequenceEqual(["default/web", "default/db"]), TimeSpan.FromSeconds(10), "the resync");
        Console.WriteLine($"etcd restarted -> Services resynced in {took.TotalMilliseconds:0} ms");
        Assert.True(sink.Watcher.Reaches);
        Assert.Matches(ResyncedLine(), sink.LogText);
    }

    [GeneratedRegex(@"services: listed \d+ keys under .*\n(.*\n)*services: store unreachable .*\n(.*\n)*services: listed \d+ keys")]
    private static partial Regex ResyncedLine();
}
