using System.Diagnostics;
using FastOverlay.Config;
using FastOverlay.Control;
using FastOverlay.Control.Subnets;
using FastOverlay.Tables;
using FastOverlay.Tests.Config;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Control;

/// <summary>One node joined through a store: a membership task driving a real NodeController on ring ports.</summary>
internal sealed class MemberHarness : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly StringWriter _logText = new();

    public MemberHarness(ISubnetStore store, string publicIp, MembershipOptions? options = null, NodeTemplate? node = null)
    {
        PublicIp = Ipv4Address.Parse(publicIp);
        Log = TextWriter.Synchronized(_logText);
        var template = node ?? new NodeTemplate();
        var file = new EtcdNodeFile(null, template);
        Membership = new SubnetMembership(store, PublicIp, options ?? Options(), Log);
        Node = new MembershipNode(
            lease => ConfigLoader.Complete(file.ToConfig(Network!, lease, PublicIp, null, "node-" + publicIp), ConfigFixture.Interfaces()),
            config => NodeController.Start(config, new RingPortFactory(), poolBuffers: 256),
            Log);
        Host = new RecordingHost(Node);
    }

    public static MembershipOptions Options(string? subnetFile = null, LeaseTimings? timings = null) =>
        new() { SubnetFilePath = subnetFile, Timings = timings ?? new LeaseTimings() };

    public Ipv4Address PublicIp { get; }
    public TextWriter Log { get; }
    public string LogText => _logText.ToString();
    public SubnetMembership Membership { get; }
    public MembershipNode Node { get; }
    public RecordingHost Host { get; }
    public FlannelNetwork? Network { get; private set; }
    public Task? Running { get; private set; }

    public async Task StartAsync()
    {
        Network = await Membership.LoadNetworkAsync(_stop.Token);
        Running = Task.Run(() => Membership.RunAsync(Network, 1450, Host, _stop.Token));
        await WaitAsync(() => Host.Acquired.Count > 0, TimeSpan.FromSeconds(10), "a lease");
    }

    public AcquiredLease Lease => Node.Lease ?? throw new InvalidOperationException("no lease held");

    /// <summary>The peers of the forwarding state the data path reads now.</summary>
    public IReadOnlyList<Peer> StatePeers => Node.Controller?.Forwarder.State.Peers.All.ToArray() ?? [];

    public Peer? StatePeer(string subnet) => StatePeers.FirstOrDefault(p => p.Subnet == Ipv4Prefix.Parse(subnet));

    /// <summary>Waits for the condition; returns how long it took; fails with the node's log when it times out.</summary>
    public async Task<TimeSpan> WaitAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (Running is { IsFaulted: true }) throw new InvalidOperationException($"membership failed waiting for {what}", Running.Exception);
            if (clock.Elapsed > timeout) Assert.Fail($"timed out after {timeout.TotalSeconds} s waiting for {what}; log:\n{LogText}");
            await Task.Delay(5);
        }
        return clock.Elapsed;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (Running is not null)
        {
            try
            {
                await Running;
            }
            catch (OperationCanceledException)
            {
            }
        }
        Node.Dispose();
        _stop.Dispose();
    }
}

/// <summary>Passes everything to the real host and remembers the calls.</summary>
internal sealed class RecordingHost(IMembershipHost inner) : IMembershipHost
{
    public List<AcquiredLease> Acquired { get; } = [];
    public List<AcquiredLease> Lost { get; } = [];
    public int PeerUpdates { get; private set; }

    public void LeaseAcquired(AcquiredLease lease)
    {
        inner.LeaseAcquired(lease);
        lock (Acquired) Acquired.Add(lease);
    }

    public void PeersChanged(IReadOnlyList<Peer> peers)
    {
        inner.PeersChanged(peers);
        PeerUpdates++;
    }

    public void LeaseLost(AcquiredLease lease)
    {
        lock (Lost) Lost.Add(lease);
        inner.LeaseLost(lease);
    }
}

/// <summary>flannel's lease JSON as flanneld writes it (pkg/lease LeaseAttrs, Documentation/reservations.md).</summary>
internal static class FlannelJson
{
    public const string Config = """{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}""";

    public static string Lease(string publicIp, string vtepMac, string backend = "vxlan") =>
        $$$"""{"PublicIP":"{{{publicIp}}}","PublicIPv6":null,"BackendType":"{{{backend}}}","BackendData":{"VNI":1,"VtepMAC":"{{{vtepMac}}}"}}""";
}
