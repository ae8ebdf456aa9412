using System.Text;
using FastOverlay.Config;
using FastOverlay.Control.Services;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Control;

/// <summary><see cref="ServiceWatcher"/> over the in-memory store: the set it hands on, skips, conflicts, outages, debounce.</summary>
public sealed class InMemoryServiceStoreTests
{
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task The_listing_then_every_put_update_and_delete_hand_on_the_whole_set()
    {
        var store = new InMemoryServiceStore();
        store.Put("default/web", ServiceJson.ClusterIp("web", "10.96.0.10"));
        store.Put("shop/cart", ServiceJson.ClusterIp("cart", "10.96.0.11", ns: "shop"));
        await using var sink = new ServiceSink(store);
        await sink.WaitAsync(() => sink.Keys.Count == 2, Soon, "the listed Services");
        Assert.Equal(["default/web", "shop/cart"], sink.Keys);

        store.Put("default/api", ServiceJson.ClusterIp("api", "10.96.0.12", port: 443));
        await sink.WaitAsync(() => sink.Keys.Count == 3, Soon, "the new Service");
        var cart = sink.Find("shop/cart");

        store.Put("default/web", ServiceJson.ClusterIp("web", "10.96.0.10", endpoint: "10.244.3.3"));
        await sink.WaitAsync(() => sink.Find("default/web")?.Endpoints[0].Ip.ToString() == "10.244.3.3", Soon, "the updated endpoint");
        // Unchanged Services are the same objects: the consumer can tell what changed by reference.
        Assert.Same(cart, sink.Find("shop/cart"));

        store.Delete("shop/cart");
        await sink.WaitAsync(() => sink.Keys.Count == 2, Soon, "the deletion");
        Assert.Equal(["default/web", "default/api"], sink.Keys);
        Assert.Contains("services: removed shop/cart", sink.LogText, StringComparison.Ordinal);
        Assert.Equal(0, sink.Watcher.Rejected);
    }

    [Fact]
    public async Task The_same_bytes_put_again_hand_on_nothing_new()
    {
        var store = new InMemoryServiceStore();
        store.Put("default/web", ServiceJson.ClusterIp("web", "10.96.0.10"));
        await using var sink = new ServiceSink(store, debounce: TimeSpan.Zero);
        await sink.WaitAsync(() => sink.Sets.Count == 1, Soon, "the first set");
        store.Put("default/web", ServiceJson.ClusterIp("web", "10.96.0.10"));
        store.Put("default/api", ServiceJson.ClusterIp("api", "10.96.0.12"));
        await sink.WaitAsync(() => sink.Keys.Count == 2, Soon, "the second Service");
        Assert.Equal(2, sink.Sets.Count);
        Assert.DoesNotContain("services: updated", sink.LogText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_burst_of_changes_is_handed_on_as_one_set()
    {
        var store = new InMemoryServiceStore();
        await using var sink = new ServiceSink(store, debounce: TimeSpan.FromMilliseconds(100));
        await sink.WaitAsync(() => sink.Sets.Count == 1, Soon, "the empty first set");
        for (var i = 0; i < 50; i++) store.Put($"default/s{i}", ServiceJson.ClusterIp($"s{i}", $"10.96.1.{i + 1}"));
        await sink.WaitAsync(() => sink.Keys.Count == 50, Soon, "fifty Services");
        await Task.Delay(300);
        // Fifty puts in well under the debounce: one rebuild (two if the burst straddled a debounce window).
        Assert.InRange(sink.Sets.Count, 2, 3);
        Assert.Contains("services: 50 changes, 50 Services now", sink.LogText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_values_are_skipped_logged_and_counted_once_while_the_others_apply()
    {
        var store = new InMemoryServiceStore();
        store.Put("default/web", ServiceJson.ClusterIp("web", "10.96.0.10"));
        store.Put("default/json", "{ not json");
        store.Put("default/rule", ServiceJson.NodePort("rule", "10.96.0.20", nodePort: 80));
        store.Put("default/other", ServiceJson.ClusterIp("renamed", "10.96.0.21"));
        store.Put("prod/nons", ServiceJson.ClusterIp("nons", "10.96.0.22").Replace("\"Namespace\": \"default\", ", "", StringComparison.Ordinal));
        store.Put("flat", ServiceJson.ClusterIp("flat", "10.96.0.23"));
        store.Put("default/pod", ServiceJson.ClusterIp("pod", "10.244.5.5"));
        await using var sink = new ServiceSink(store);
        await sink.WaitAsync(() => sink.Sets.Count == 1, Soon, "the first set");

        Assert.Equal(["default/web"], sink.Keys);
        Assert.Equal(6, sink.Watcher.Rejected);
        var skipped = sink.Watcher.Skipped;
        Assert.StartsWith("not valid JSON", skipped["default/json"], StringComparison.Ordinal);
        Assert.Equal("Ports[0].NodePort: 80 is outside ServiceOptions.NodePortRange 30000-32767", skipped["default/rule"]);
        Assert.Equal("the key names default/other but the value is default/renamed", skipped["default/other"]);
        Assert.Equal("the key names prod/nons but the value is default/nons (a value without Namespace is in \"default\")", skipped["prod/nons"]);
        Assert.Equal("the key is not /fastoverlay/services/<namespace>/<name>", skipped["flat"]);
        Assert.StartsWith("ClusterIP: 10.244.5.5 is inside Network 10.244.0.0/16", skipped["default/pod"], StringComparison.Ordinal);
        Assert.Contains("services: skipped /fastoverlay/services/default/rule: Ports[0].NodePort: 80 is outside", sink.LogText, StringComparison.Ordinal);

        // A re-list (after a compaction) sees the same bad values: no new log line, no new count.
        store.Compact();
        store.Put("default/api", ServiceJson.ClusterIp("api", "10.96.0.12"));
        await sink.WaitAsync(() => sink.Keys.Count == 2, Soon, "the put after the compaction");
        Assert.Equal(6, sink.Watcher.Rejected);
        Assert.Equal(1, InMemoryMembershipTests.Count(sink.LogText, "skipped /fastoverlay/services/default/json"));

        // Fixed, it applies; a new bad value is a new count.
        store.Put("default/rule", ServiceJson.NodePort("rule", "10.96.0.20", nodePort: 30080));
        store.Put("default/json", "[]");
        await sink.WaitAsync(() => sink.Keys.Count == 3, Soon, "the fixed Service");
        Assert.Equal(7, sink.Watcher.Rejected);
        Assert.False(sink.Watcher.Skipped.ContainsKey("default/rule"));
    }

    [Fact]
    public async Task Of_two_services_claiming_one_address_the_older_keeps_it_even_when_updated()
    {
        var store = new InMemoryServiceStore();
        await using var sink = new ServiceSink(store, debounce: TimeSpan.Zero);
        store.Put("default/old", ServiceJson.ClusterIp("old", "10.96.0.10"));
        await sink.WaitAsync(() => sink.Keys.Count == 1, Soon, "the first Service");
        store.Put("default/new", ServiceJson.ClusterIp("new", "10.96.0.10"));
        store.Put("default/np", ServiceJson.NodePort("np", "10.96.0.30", 30080));
        store.Put("default/np2", ServiceJson.NodePort("np2", "10.96.0.31", 30080));
        await sink.WaitAsync(() => sink.Keys.Count == 2, Soon, "the NodePort Service");
        await sink.WaitAsync(() => sink.Watcher.Skipped.Count == 2, Soon, "the two conflicts");
        Assert.Equal("default/new.ClusterIP: 10.96.0.10 is also default/old.ClusterIP (each Service has its own)", sink.Watcher.Skipped["default/new"]);
        Assert.Equal("default/np2.Ports[0].NodePort: 30080/TCP is also default/np.Ports[0].NodePort", sink.Watcher.Skipped["default/np2"]);

        // An update keeps the older Service's creation revision: it is not displaced.
        store.Put("default/old", ServiceJson.ClusterIp("old", "10.96.0.10", endpoint: "10.244.2.2"));
        await sink.WaitAsync(() => sink.Find("default/old")?.Endpoints[0].Ip.ToString() == "10.244.2.2", Soon, "the update");
        Assert.Null(sink.Find("default/new"));

        // Once the holder is gone, the other applies.
        store.Delete("default/old");
        await sink.WaitAsync(() => sink.Find("default/new") is not null, Soon, "the newer Service");
        // Creation order: new was put before np.
        Assert.Equal(["default/new", "default/np"], sink.Keys);
    }

    [Fact]
    public async Task An_outage_keeps_the_last_set_and_the_resync_catches_up_with_a_missed_delete()
    {
        var store = new InMemoryServiceStore();
        store.Put("default/web", ServiceJson.ClusterIp("web", "10.96.0.10"));
        store.Put("default/api", ServiceJson.ClusterIp("api", "10.96.0.12"));
        await using var sink = new ServiceSink(store, debounce: TimeSpan.Zero);
        await sink.WaitAsync(() => sink.Keys.Count == 2, Soon, "two Services");
        Assert.True(sink.Watcher.Reaches);

        store.Down = true;
        // Others still reach the store (a partition): their writes are what the resync must catch up with.
        store.Delete("default/api");
        store.Put("default/db", ServiceJson.ClusterIp("db", "10.96.0.13"));
        await sink.WaitAsync(() => sink.Watcher.Reaches == false, Soon, "the outage noticed");
        var lists = store.Lists;
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal(["default/web", "default/api"], sink.Keys);
        Assert.Single(sink.Sets);
        // Backoff from 100 ms doubling: a handful of attempts in 1.5 s, not a spin.
        Assert.InRange(store.Lists - lists, 1, 5);
        Assert.Equal(1, InMemoryMembershipTests.Count(sink.LogText, "services: store unreachable"));
        Assert.Contains("the last 2 Services stay in force", sink.LogText, StringComparison.Ordinal);

        store.Down = false;
        await sink.WaitAsync(() => sink.Keys.SequenceEqual(["default/web", "default/db"]), Soon, "the resync");
        Assert.True(sink.Watcher.Reaches);
        Assert.True(sink.Watcher.Resyncs >= 1);
    }

    [Fact]
    public async Task Nothing_is_handed_on_before_the_first_listing()
    {
        var store = new InMemoryServiceStore { Down = true };
        store.Put("default/web", ServiceJson.ClusterIp("web", "10.96.0.10"));
        await using var sink = new ServiceSink(store, debounce: TimeSpan.Zero);
        await sink.WaitAsync(() => sink.Watcher.Reaches == false, Soon, "the failed listing");
        sink.Watcher.Rules = ServiceSink.Rules; // marks the set dirty: still nothing to hand on
        await Task.Delay(200);
        Assert.Empty(sink.Sets);
        store.Down = false;
        await sink.WaitAsync(() => sink.Keys.Count == 1, Soon, "the first set");
    }

    [Fact]
    public async Task A_set_the_consumer_refuses_leaves_the_previous_one_current_and_the_next_change_is_tried()
    {
        var store = new InMemoryServiceStore();
        store.Put("default/web", ServiceJson.ClusterIp("web", "10.96.0.10"));
        await using var sink = new ServiceSink(store, debounce: TimeSpan.Zero, refuse: set => set.Any(s => s.Name == "evil"));
        await sink.WaitAsync(() => sink.Sets.Count == 1, Soon, "the first set");
        var first = sink.Watcher.Current;

        store.Put("default/evil", ServiceJson.ClusterIp("evil", "10.96.0.66"));
        await sink.WaitAsync(() => sink.LogText.Contains("refused", StringComparison.Ordinal), Soon, "the refusal");
        Assert.Contains("services: the node refused the set of 2 Services (Services: refused by the test); the previous set stays", sink.LogText, StringComparison.Ordinal);
        Assert.Same(first, sink.Watcher.Current);

        store.Delete("default/evil");
        store.Put("default/api", ServiceJson.ClusterIp("api", "10.96.0.12"));
        await sink.WaitAsync(() => sink.Keys.Count == 2, Soon, "the next set");
        Assert.Equal(2, sink.Watcher.Publishes);
    }

    [Fact]
    public async Task New_rules_check_every_stored_service_again()
    {
        var store = new InMemoryServiceStore();
        store.Put("default/np", ServiceJson.NodePort("np", "10.96.0.30", 31000));
        await using var sink = new ServiceSink(store, debounce: TimeSpan.Zero);
        await sink.WaitAsync(() => sink.Keys.Count == 1, Soon, "the NodePort Service");

        var narrow = new ServiceOptionsConfig { NodePortMin = 30000, NodePortMax = 30999 };
        sink.Watcher.Rules = new ServiceConfigValidator(narrow, Ipv4Prefix.Parse("10.244.0.0/16"));
        await sink.WaitAsync(() => sink.Keys.Count == 0 && sink.Sets.Count == 2, Soon, "the Service out of the new range");
        Assert.Equal("Ports[0].NodePort: 31000 is outside ServiceOptions.NodePortRange 30000-30999", sink.Watcher.Skipped["default/np"]);
    }

    [Fact]
    public async Task Several_keys_in_one_revision_arrive_as_one_batch()
    {
        var store = new InMemoryServiceStore();
        await using var sink = new ServiceSink(store, debounce: TimeSpan.Zero);
        await sink.WaitAsync(() => sink.Sets.Count == 1, Soon, "the empty first set");
        store.Put([("default/a", Encoding.UTF8.GetBytes(ServiceJson.ClusterIp("a", "10.96.0.1"))), ("default/b", Encoding.UTF8.GetBytes(ServiceJson.ClusterIp("b", "10.96.0.2")))]);
        await sink.WaitAsync(() => sink.Keys.Count == 2, Soon, "both");
        Assert.Equal(2, sink.Sets.Count);
    }
}
