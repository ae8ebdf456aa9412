using System.Diagnostics;
using System.Globalization;
using FastOverlay.Control.Etcd;
using FastOverlay.Control.Subnets;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Control;

/// <summary>
/// Issue 9's scale figures, a benchmark rather than a timed test: it runs only with FASTOVERLAY_ETCD_SCALE set
/// (a lease count, e.g. 1000 or 10000) and prints the time from a put to the route being in the forwarding state
/// (p50/p99), memory per peer, and how a storm of changes is absorbed. The README quotes its output.
/// </summary>
public sealed class EtcdScaleBenchmark(EtcdServer etcd) : IClassFixture<EtcdServer>
{
    [SkippableFact]
    public async Task Put_to_data_path_latency_and_memory_at_scale()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var setting = Environment.GetEnvironmentVariable("FASTOVERLAY_ETCD_SCALE");
        Skip.If(setting is null, "a benchmark: set FASTOVERLAY_ETCD_SCALE=1000 (or 10000) to run it");
        var count = int.Parse(setting, CultureInfo.InvariantCulture);
        const string prefix = "/scale/coreos.com/network";
        etcd.Ctl("put", prefix + "/config", """{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}""");
        using var store = new EtcdSubnetStore(etcd.Options(prefix));
        var ttl = TimeSpan.FromHours(1);

        var fill = Stopwatch.StartNew();
        await Parallel.ForAsync(1, count + 1, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
            await store.TryPutLeaseAsync(Key(i), Value(i, 0), ttl, new LeaseCondition.Absent(), ct));
        Console.WriteLine($"scale: wrote {count} leases in {fill.Elapsed.TotalSeconds:0.0} s");

        var before = GC.GetTotalMemory(forceFullCollection: true);
        await using var node = new MemberHarness(store, "192.168.0.1");
        await node.StartAsync();
        var join = await node.WaitAsync(() => node.Node.Controller?.Forwarder.State.Peers.Count == count, TimeSpan.FromSeconds(120), "every peer");
        var after = GC.GetTotalMemory(forceFullCollection: true);
        Console.WriteLine($"scale: {count} peers in the forwarding state {join.TotalMilliseconds:0} ms after the lease; managed memory {(after - before) / 1024.0 / 1024.0:0.0} MiB, {(after - before) / count} bytes per peer");

        // One put at a time: from the call to the route pointing at a peer.
        var samples = new List<double>();
        for (var i = count + 1; i <= count + 200; i++)
        {
            var clock = Stopwatch.StartNew();
            await store.TryPutLeaseAsync(Key(i), Value(i, 0), ttl, new LeaseCondition.Absent(), default);
            var address = Subnet(i).Address + 5;
            while (FastOverlay.Pipeline.RouteTarget.Kind(node.Node.Controller!.Forwarder.State.Routes.Lookup(address)) != FastOverlay.Pipeline.RouteKind.Peer)
            {
                if (clock.Elapsed > TimeSpan.FromSeconds(10)) Assert.Fail("a put did not arrive in 10 s");
                Thread.SpinWait(200);
            }
            samples.Add(clock.Elapsed.TotalMilliseconds);
        }
        samples.Sort();
        Console.WriteLine($"scale: put -> route at {count} leases: p50 {samples[samples.Count / 2]:0.00} ms, p99 {samples[samples.Count * 99 / 100]:0.00} ms, max {samples[^1]:0.00} ms");

        // A storm: every lease re-put with a new VtepMAC, 32 at a time, then the time until the last is visible.
        var applied = node.Node.Applied;
        var storm = Stopwatch.StartNew();
        var changes = Math.Min(count, 10_000);
        await Parallel.ForAsync(1, changes + 1, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
            await store.TryPutLeaseAsync(Key(i), Value(i, 1), ttl, new LeaseCondition.HoldsValue(Value(i, 0)), ct));
        var written = storm.Elapsed;
        await node.WaitAsync(() => node.StatePeers.All(p => p.Subnet.Address > Subnet(changes).Address || p.VtepMac.Value == Mac(IndexOf(p), 1).Value), TimeSpan.FromSeconds(120), "the storm");
        Console.WriteLine($"scale: storm of {changes} changes written in {written.TotalSeconds:0.0} s, all in the data path {storm.Elapsed.TotalSeconds:0.0} s after the first; {node.Node.Applied - applied} rebuilds");
    }

    [SkippableFact]
    public async Task Forwarding_pps_before_and_during_a_storm_of_lease_changes()
    {
        Skip.If(EtcdServer.Missing is not null, EtcdServer.Missing);
        var setting = Environment.GetEnvironmentVariable("FASTOVERLAY_ETCD_SCALE");
        Skip.If(setting is null, "a benchmark: set FASTOVERLAY_ETCD_SCALE=10000 to run it");
        var count = int.Parse(setting, CultureInfo.InvariantCulture);
        const string prefix = "/storm/coreos.com/network";
        etcd.Ctl("put", prefix + "/config", """{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}""");
        using var store = new EtcdSubnetStore(etcd.Options(prefix));
        var ttl = TimeSpan.FromHours(1);
        await Parallel.ForAsync(1, count + 1, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
            await store.TryPutLeaseAsync(Key(i), Value(i, 0), ttl, new LeaseCondition.Absent(), ct));

        // The encap path of `fastoverlay bench`, its forwarding state rebuilt from etcd's peers as a node's would be.
        var bench = new FastOverlay.Bench.PathBench(FastOverlay.Bench.BenchPath.Encap);
        var host = new BenchHost(bench);
        var membership = new SubnetMembership(store, Ipv4Address.Parse("192.168.0.1"), new MembershipOptions { SubnetFilePath = null }, TextWriter.Null);
        using var stop = new CancellationTokenSource();
        var network = await membership.LoadNetworkAsync(stop.Token);
        var running = Task.Run(() => membership.RunAsync(network, 1450, host, stop.Token));
        while (bench.Node.State.Peers.Count < count + 1) await Task.Delay(10);

        var windows = new List<(long At, long Packets)>();
        var measuring = true;
        var forwarder = new Thread(() =>
        {
            var window = Stopwatch.StartNew();
            long packets = 0;
            while (Volatile.Read(ref measuring))
            {
                packets += bench.RunBurst();
                if (window.ElapsedMilliseconds < 100) continue;
                lock (windows) windows.Add((Stopwatch.GetTimestamp(), packets * 1000 / window.ElapsedMilliseconds));
                packets = 0;
                window.Restart();
            }
        });
        forwarder.Start();
        // Tiered JIT: the first seconds run unoptimised code; let them pass, then measure 3 s before the storm.
        await Task.Delay(TimeSpan.FromSeconds(4));
        lock (windows) windows.Clear();
        await Task.Delay(TimeSpan.FromSeconds(3));
        var stormStart = Stopwatch.GetTimestamp();
        var rebuildsBefore = host.Rebuilds;
        await Parallel.ForAsync(1, count + 1, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
            await store.TryPutLeaseAsync(Key(i), Value(i, 1), ttl, new LeaseCondition.HoldsValue(Value(i, 0)), ct));
        while (bench.Node.State.Peers.All.ToArray().Any(p => p.Name != "node2" && p.VtepMac.Value != Mac(IndexOf(p), 1).Value)) await Task.Delay(10);
        var stormEnd = Stopwatch.GetTimestamp();
        Volatile.Write(ref measuring, false);
        forwarder.Join();
        await stop.CancelAsync();
        try
        {
            await running;
        }
        catch (OperationCanceledException)
        {
        }

        static double Median(List<long> xs) => xs.Count == 0 ? 0 : xs.Order().ElementAt(xs.Count / 2) / 1e6;
        var before = windows.Where(w => w.At < stormStart).Select(w => w.Packets).ToList();
        var during = windows.Where(w => w.At >= stormStart && w.At <= stormEnd).Select(w => w.Packets).ToList();
        Console.WriteLine($"storm: {count} changes over {Stopwatch.GetElapsedTime(stormStart, stormEnd).TotalSeconds:0.0} s, {host.Rebuilds - rebuildsBefore} rebuilds of {count + 1} peers; " +
            $"encap path median {Median(before):0.00} Mpps before, {Median(during):0.00} Mpps during (slowest 100 ms window {(during.Count == 0 ? 0 : during.Min() / 1e6):0.00} Mpps)");
    }

    /// <summary>Publishes etcd's peers (plus the bench's own peer) into the bench node, as NodeController.Apply does for a real one.</summary>
    private sealed class BenchHost(FastOverlay.Bench.PathBench bench) : IMembershipHost
    {
        private readonly Peer _benchPeer = bench.Node.State.Peers[0];
        public int Rebuilds { get; private set; }

        public void LeaseAcquired(AcquiredLease lease)
        {
        }

        public void PeersChanged(IReadOnlyList<Peer> peers)
        {
            var state = bench.Node.State;
            var pods = new List<FastOverlay.Pipeline.PodAttachment>
            {
                new(state.Ports[1]!, new Ipv4Address(state.Node.Subnet.Address + 2)),
                new(state.Ports[2]!, new Ipv4Address(state.Node.Subnet.Address + 3)),
            };
            bench.Node.Publish(FastOverlay.Pipeline.ForwardingState.Build(state.Node, state.Ports[0]!, pods, [_benchPeer, .. peers], previous: state));
            Rebuilds++;
        }

        public void LeaseLost(AcquiredLease lease)
        {
        }
    }

    private static Ipv4Prefix Subnet(int i) => new(0x0A80_0000u + ((uint)i << 8), 24);
    private static string Key(int i) => SubnetKey.Format(Subnet(i));
    private static int IndexOf(Peer p) => (int)((p.Subnet.Address - 0x0A80_0000u) >> 8);
    private static MacAddress Mac(int i, int generation) => new(0x0200_0000_0000UL | ((ulong)generation << 32) | (uint)i);
    private static byte[] Value(int i, int generation) =>
        LeaseAttrs.Vxlan(new Ipv4Address(0xAC10_0000u + (uint)i), 1, Mac(i, generation)).ToJson();
}
