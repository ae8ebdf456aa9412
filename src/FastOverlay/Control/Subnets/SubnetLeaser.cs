using FastOverlay.Wire;

namespace FastOverlay.Control.Subnets;

/// <summary>Timings of the own lease. flannel: a 24 h TTL (local_manager.go subnetTTL), renewed 60 min before expiry
/// (--subnet-lease-renew-margin), retried every minute while renewal fails. Tests shorten them.</summary>
public sealed record LeaseTimings
{
    public TimeSpan Ttl { get; init; } = TimeSpan.FromHours(24);
    public TimeSpan RenewMargin { get; init; } = TimeSpan.FromHours(1);
    public TimeSpan RetryInterval { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>flannel's raceRetries: how many lost creation races before giving up.</summary>
    public int RaceRetries { get; init; } = 10;
}

/// <summary>This node's lease as held: the key, the exact value written (renewals must find it unchanged) and the etcd lease id.</summary>
public sealed record AcquiredLease(Ipv4Prefix Subnet, LeaseAttrs Attrs, byte[] Value, long LeaseId, DateTimeOffset Expires)
{
    public string Key => SubnetKey.Format(Subnet);
}

/// <summary>
/// Acquires and renews this node's subnet lease the way flanneld does (pkg/subnet/etcd/local_manager.go
/// tryAcquireLease): reuse the lease carrying our PublicIP if it still fits the config; else the previous subnet
/// (subnet.env, or Node.Subnet) if nobody holds it; else a random one of the first 100 free subnets. Creation is a
/// transaction on "key absent", retried on conflict. The VtepMAC comes back from the reused lease, so peers'
/// neighbour entries stay valid across restarts.
/// </summary>
public sealed class SubnetLeaser(ISubnetStore store, FlannelNetwork network, Ipv4Address publicIp, TextWriter log, LeaseTimings? timings = null, Random? random = null)
{
    private readonly LeaseTimings _timings = timings ?? new LeaseTimings();
    private readonly Random _random = random ?? Random.Shared;

    public LeaseTimings Timings => _timings;

    /// <summary>
    /// One acquisition. <paramref name="vtepMac"/> is the configured MAC (Node.VtepMAC), or null to keep the one in
    /// our previous lease or make one. Throws <see cref="StoreUnavailableException"/>, or InvalidOperationException
    /// when the network is full or every race was lost.
    /// </summary>
    public async Task<AcquiredLease> AcquireAsync(Ipv4Prefix? previous, MacAddress? vtepMac, CancellationToken cancel)
    {
        for (var attempt = 1; attempt <= _timings.RaceRetries; attempt++)
        {
            var listing = await store.ListLeasesAsync(cancel).ConfigureAwait(false);
            var held = new List<(Ipv4Prefix Subnet, StoredLease Lease, LeaseAttrs? Attrs)>();
            foreach (var lease in listing.Leases)
            {
                if (SubnetKey.TryParse(lease.Key, out var subnet)) held.Add((subnet, lease, LeaseAttrs.TryParse(lease.Value, out _)));
            }

            foreach (var (subnet, lease, attrs) in held.Where(h => h.Attrs?.PublicIp == publicIp))
            {
                if (network.Fits(subnet))
                {
                    var mine = LeaseAttrs.Vxlan(publicIp, network.Backend.Vni, vtepMac ?? attrs!.VtepMac ?? NewVtepMac());
                    var reused = await PutAsync(subnet, mine, new LeaseCondition.AtRevision(lease.ModRevision), cancel).ConfigureAwait(false);
                    if (reused is not null)
                    {
                        log.WriteLine($"subnet: reusing {subnet}, the lease of our PublicIP {publicIp}");
                        return reused;
                    }
                    goto raced;
                }
                // flannel deletes a lease of ours that no longer fits the config (SubnetLen or Min/Max changed).
                log.WriteLine($"subnet: deleting our old lease {subnet}: it does not fit {network.Network} /{network.SubnetLen} {network.SubnetMin}..{network.SubnetMax}");
                await store.TryDeleteLeaseAsync(lease.Key, lease.ModRevision, cancel).ConfigureAwait(false);
            }

            Ipv4Prefix candidate;
            if (previous is { } p && network.Fits(p) && !held.Any(h => h.Subnet.Overlaps(p))) candidate = p;
            else if (PickFree(held.Select(h => h.Subnet).ToList()) is { } free) candidate = free;
            else throw new InvalidOperationException($"out of subnets: every /{network.SubnetLen} in {network.SubnetMin}..{network.SubnetMax} is leased");

            var attrsNew = LeaseAttrs.Vxlan(publicIp, network.Backend.Vni, vtepMac ?? NewVtepMac());
            var created = await PutAsync(candidate, attrsNew, new LeaseCondition.Absent(), cancel).ConfigureAwait(false);
            if (created is not null)
            {
                log.WriteLine($"subnet: acquired {candidate}");
                return created;
            }
        raced:
            log.WriteLine($"subnet: another node took the subnet first (attempt {attempt} of {_timings.RaceRetries}); listing again");
        }
        throw new InvalidOperationException($"lost {_timings.RaceRetries} races for a subnet in a row");
    }

    /// <summary>
    /// Renews as flanneld's updateSubnet does (a fresh lease, the same value put again), but only while the key
    /// still holds our value: returns null when it does not (deleted, expired or taken), which means the lease is lost.
    /// </summary>
    public Task<AcquiredLease?> RenewAsync(AcquiredLease lease, CancellationToken cancel) =>
        PutAsync(lease.Subnet, lease.Attrs, new LeaseCondition.HoldsValue(lease.Value), cancel);

    /// <summary>
    /// Keeps the lease alive until cancelled or lost: sleeps until <see cref="LeaseTimings.RenewMargin"/> before expiry, renews,
    /// retries every <see cref="LeaseTimings.RetryInterval"/> while the store is unreachable. Returns when the key is no
    /// longer ours.
    /// </summary>
    public async Task RenewLoopAsync(AcquiredLease lease, Action<AcquiredLease> renewed, CancellationToken cancel)
    {
        var due = lease.Expires - _timings.RenewMargin;
        while (true)
        {
            var wait = due - DateTimeOffset.UtcNow;
            if (wait > TimeSpan.Zero) await Task.Delay(wait, cancel).ConfigureAwait(false);
            try
            {
                var next = await RenewAsync(lease, cancel).ConfigureAwait(false);
                if (next is null)
                {
                    log.WriteLine($"subnet: renewing {lease.Subnet} found the key gone or changed");
                    return;
                }
                lease = next;
                renewed(lease);
                due = lease.Expires - _timings.RenewMargin;
            }
            catch (StoreUnavailableException e)
            {
                log.WriteLine($"subnet: renewing {lease.Subnet} failed ({e.Message}); trying again in {_timings.RetryInterval.TotalSeconds:0} s");
                due = DateTimeOffset.UtcNow + _timings.RetryInterval;
            }
        }
    }

    private async Task<AcquiredLease?> PutAsync(Ipv4Prefix subnet, LeaseAttrs attrs, LeaseCondition condition, CancellationToken cancel)
    {
        var value = attrs.ToJson();
        var expires = DateTimeOffset.UtcNow + _timings.Ttl;
        var id = await store.TryPutLeaseAsync(SubnetKey.Format(subnet), value, _timings.Ttl, condition, cancel).ConfigureAwait(false);
        return id is { } leaseId ? new AcquiredLease(subnet, attrs, value, leaseId, expires) : null;
    }

    /// <summary>flannel's allocateSubnet: walk SubnetMin..SubnetMax, collect the first 100 free, pick one at random.</summary>
    private Ipv4Prefix? PickFree(List<Ipv4Prefix> taken)
    {
        var free = new List<Ipv4Prefix>(100);
        for (ulong a = network.SubnetMin.Value; a <= network.SubnetMax.Value && free.Count < 100; a += network.SubnetSize)
        {
            var candidate = new Ipv4Prefix((uint)a, network.SubnetLen);
            if (!taken.Any(t => t.Overlaps(candidate))) free.Add(candidate);
        }
        return free.Count == 0 ? null : free[_random.Next(free.Count)];
    }

    /// <summary>A random locally administered unicast MAC, as the kernel gives flannel.1 (net_device random addr).</summary>
    private MacAddress NewVtepMac()
    {
        Span<byte> b = stackalloc byte[6];
        _random.NextBytes(b);
        b[0] = (byte)((b[0] & 0xFE) | 0x02);
        return MacAddress.Read(b);
    }
}
