using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Control.Subnets;

/// <summary>What the membership drives: the node's data path. Called from the membership's task, one call at a time.</summary>
public interface IMembershipHost
{
    /// <summary>A lease is held: start routing for it. Throwing stops the membership with that exception.</summary>
    void LeaseAcquired(AcquiredLease lease);

    /// <summary>The whole peer set, after every change (the host rebuilds and swaps its forwarding state).</summary>
    void PeersChanged(IReadOnlyList<Peer> peers);

    /// <summary>The lease is gone: stop routing with that subnet before it is acquired again.</summary>
    void LeaseLost(AcquiredLease lease);
}

public sealed record MembershipOptions
{
    public LeaseTimings Timings { get; init; } = new();
    /// <summary>flannel's --subnet-file; null writes none.</summary>
    public string? SubnetFilePath { get; init; } = SubnetFile.DefaultPath;
    /// <summary>Node.Subnet: the subnet to ask for first (and the only one accepted, see the runner).</summary>
    public Ipv4Prefix? PreferredSubnet { get; init; }
    /// <summary>Node.VtepMAC, or null to keep the one of our previous lease.</summary>
    public MacAddress? VtepMac { get; init; }
    public bool IpMasq { get; init; }
}

/// <summary>
/// This node in the cluster: acquire a lease, write subnet.env, keep the lease renewed and the peers followed.
/// When our key is deleted by someone else (or expires while we were cut off), flanneld exits ("Lease has been
/// revoked. Shutting down daemon.") and relies on its supervisor; FastOverlay instead stops routing that subnet,
/// acquires again (the same subnet when it is still free: it is the previous one) and starts routing the new lease,
/// without a restart and without leaving the node to whatever restarts it.
/// </summary>
public sealed class SubnetMembership(ISubnetStore store, Ipv4Address publicIp, MembershipOptions options, TextWriter log)
{
    /// <summary>Reads <c>&lt;prefix&gt;/config</c>, waiting for it (flanneld polls every second) and for the store.</summary>
    private volatile PeerWatcher? _watcher;

    /// <summary>
    /// Whether the peer watch currently reaches etcd: null while no lease is held (acquiring), else the watcher's
    /// last list or watch outcome. For metrics and status, from any thread.
    /// </summary>
    public bool? EtcdConnected => _watcher?.Reaches;

    public async Task<FlannelNetwork> LoadNetworkAsync(CancellationToken cancel)
    {
        var backoff = PeerWatcher.MinBackoff;
        var said = "";
        while (true)
        {
            string why;
            try
            {
                if (await store.GetConfigAsync(cancel).ConfigureAwait(false) is { } json) return FlannelNetwork.Parse(json);
                why = "etcd: no network config yet at <prefix>/config; waiting (flanneld waits too)";
                backoff = TimeSpan.FromSeconds(1);
            }
            catch (StoreUnavailableException e)
            {
                why = $"etcd: unreachable ({e.Message}); retrying";
            }
            if (why != said) log.WriteLine(said = why);
            await Task.Delay(backoff, cancel).ConfigureAwait(false);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, PeerWatcher.MaxBackoff.Ticks));
        }
    }

    /// <summary>Runs until cancelled. Throws what the host throws, or when no subnet can be had.</summary>
    public async Task RunAsync(FlannelNetwork network, int mtu, IMembershipHost host, CancellationToken cancel)
    {
        var leaser = new SubnetLeaser(store, network, publicIp, log, options.Timings);
        var preferred = options.PreferredSubnet ?? (options.SubnetFilePath is { } file ? SubnetFile.ReadSubnet(file) : null);
        var vtepMac = options.VtepMac;
        while (true)
        {
            var lease = await AcquireAsync(leaser, preferred, vtepMac, cancel).ConfigureAwait(false);
            vtepMac = lease.Attrs.VtepMac;
            preferred = lease.Subnet;
            if (options.SubnetFilePath is { } path) SubnetFile.Write(path, network.Network, lease.Subnet, mtu, options.IpMasq);
            host.LeaseAcquired(lease);

            var watcher = new PeerWatcher(store, new PeerSetBuilder(network, lease.Subnet, publicIp, log), lease, log);
            _watcher = watcher;
            using var held = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            var renew = leaser.RenewLoopAsync(lease, renewed => watcher.Own = renewed, held.Token);
            var watch = watcher.RunAsync(host.PeersChanged, held.Token);
            await Task.WhenAny(renew, watch).ConfigureAwait(false);
            await held.CancelAsync().ConfigureAwait(false);
            await Quietly(renew).ConfigureAwait(false);
            await Quietly(watch).ConfigureAwait(false);
            cancel.ThrowIfCancellationRequested();
            _watcher = null;
            log.WriteLine($"subnet: lost {lease.Subnet}; stopped routing it and acquiring a lease again");
            host.LeaseLost(lease);
        }
    }

    private async Task<AcquiredLease> AcquireAsync(SubnetLeaser leaser, Ipv4Prefix? preferred, MacAddress? vtepMac, CancellationToken cancel)
    {
        var backoff = PeerWatcher.MinBackoff;
        var logged = false;
        while (true)
        {
            try
            {
                return await leaser.AcquireAsync(preferred, vtepMac, cancel).ConfigureAwait(false);
            }
            catch (StoreUnavailableException e)
            {
                if (!logged) log.WriteLine($"etcd: unreachable while acquiring a subnet ({e.Message}); retrying");
                logged = true;
            }
            await Task.Delay(backoff, cancel).ConfigureAwait(false);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, PeerWatcher.MaxBackoff.Ticks));
        }
    }

    /// <summary>Awaits a task this class has just cancelled: a cancellation, or a store call cut short by it, is not an error.</summary>
    private static async Task Quietly(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or StoreUnavailableException or Grpc.Core.RpcException)
        {
        }
    }
}
