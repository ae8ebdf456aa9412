using FastOverlay.Config;
using FastOverlay.Tables.Services;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

internal sealed partial class ServiceNat
{
    /// <summary>
    /// The first packet of a flow (or one whose flow is gone: Maglev then picks the same backend again while the
    /// endpoints are unchanged, so a lost entry does not break a TCP connection, research notes s1.11). Which
    /// Service it is for depends on where it came from: from outside only NodePorts and external addresses count.
    /// </summary>
    private void NewFlow(PacketBurst burst, int i, Span<byte> ip, in FlowKey key, bool external, byte tcpFlags, ServiceTable services, ConntrackSet conntrack)
    {
        int index;
        BackendSet set;
        bool masquerade;
        if (key.Destination == services.NodeIp)
        {
            index = services.NodePorts.Find(ServiceKeyMap.Key(0, key.DestinationPort, key.Protocol));
            if (index < 0)
            {
                // Not a NodePort: the node's own traffic; from outside it is the kernel's (we only saw a copy).
                if (external) burst.SetDrop(i, DropReason.ExternalNotService);
                return;
            }
            (set, masquerade) = ExternalClass(services.Ports[index], external);
        }
        else
        {
            var kind = services.Addresses.Find(ServiceKeyMap.Key(key.Destination, 0, 0));
            if (kind < 0)
            {
                // A packet from an endpoint's port or to the SNAT address that belongs to no flow: not ours to translate.
                if (external) burst.SetDrop(i, DropReason.ExternalNotService);
                return;
            }
            index = external ? -1 : services.ClusterPorts.Find(ServiceKeyMap.Key(key.Destination, key.DestinationPort, key.Protocol));
            if (index >= 0)
            {
                set = services.Ports[index].Internal;
                masquerade = false;
            }
            else
            {
                index = services.ExternalPorts.Find(ServiceKeyMap.Key(key.Destination, key.DestinationPort, key.Protocol));
                if (index < 0)
                {
                    // nftables-mode kube-proxy rejects a port the Service does not define; the address is ours, so
                    // nothing else would answer and the client should not wait for a timeout.
                    if (!external) icmp.SendError(burst.Handles[i], Icmpv4.TypeDestinationUnreachable, IcmpPortUnreachable, 0);
                    burst.SetDrop(i, DropReason.ServicePortUndefined);
                    return;
                }
                (set, masquerade) = ExternalClass(services.Ports[index], external);
                // kube-proxy's firewall chain: checked on a flow's first packet only (its rules see state NEW).
                if (services.Ports[index].RefusesSource(key.Destination, key.Source, services.NodeIp))
                {
                    burst.SetDrop(i, DropReason.ServiceSourceRange);
                    return;
                }
            }
        }

        var port = services.Ports[index];
        if (set.IsEmpty)
        {
            port.Counters.Add(ctx.Worker, ServiceCounter.NoEndpoint);
            if (set.WhenEmpty == EmptyVerdict.Reject)
            {
                icmp.SendError(burst.Handles[i], Icmpv4.TypeDestinationUnreachable, IcmpPortUnreachable, 0);
                burst.SetDrop(i, DropReason.ServiceNoEndpoints);
            }
            else burst.SetDrop(i, DropReason.ServiceNoLocalEndpoints);
            return;
        }

        var backend = Choose(port, set, key, conntrack.Affinity[ctx.Worker]);
        // Hairpin: the client is its own backend. Without SNAT the pod would answer itself directly and never see
        // the reply come from the service address (kube-proxy's KUBE-MARK-MASQ on "-s endpointIP").
        masquerade |= backend.Ip == key.Source;
        var replyDestination = key.Source;
        var replyPort = key.SourcePort;
        var flags = external ? ConntrackFlags.External : ConntrackFlags.None;
        var table = conntrack.Tables[ctx.Worker];
        if (masquerade)
        {
            replyDestination = services.HairpinAddress;
            replyPort = AllocatePort(table, conntrack.Workers, backend, key, replyDestination);
            if (replyPort == 0)
            {
                burst.SetDrop(i, DropReason.ConntrackFull);
                return;
            }
            flags |= ConntrackFlags.Snat;
        }
        var reply = new FlowKey(backend.Ip, replyDestination, backend.Port, replyPort, key.Protocol);
        var created = table.Insert(key, reply, port.Id, services.Epoch, flags, ctx.Now);
        if (created < 0)
        {
            // Fail closed (Cilium, netfilter's "table full"): established flows keep working, new ones wait for
            // entries to expire, which the table reclaims lazily on insert.
            burst.SetDrop(i, DropReason.ConntrackFull);
            return;
        }
        table.Observe(created, false, tcpFlags, ctx.Now);
        port.Counters.Add(ctx.Worker, ServiceCounter.Flows);
        backend.Counters.Add(ctx.Worker, ServiceCounter.Flows);
        ctx.Tally.Add(Counter.ServiceFlowsCreated);
        ctx.Tracer?.Record(ctx.Name, TraceEvent.ServiceFlowCreated, burst.Handles[i], -1, backend.Ip, key.Destination, backend.Port);
        var flow = new ConntrackFlow { Original = key, Reply = reply, ServicePortId = port.Id, Epoch = services.Epoch, Flags = flags };
        Translate(burst, i, ip, Ipv4Header.HeaderLength(ip), in key, in flow, reply: false);
    }

    /// <summary>
    /// externalTrafficPolicy: from outside, Local keeps the client address and uses local endpoints; Cluster uses
    /// all and SNATs (the reply must come back through this node). From a pod, kube-proxy sends Local traffic to
    /// the cluster-wide endpoints without SNAT (it never left the cluster), and Cluster traffic with SNAT.
    /// </summary>
    private static (BackendSet Set, bool Masquerade) ExternalClass(ServicePort port, bool external)
    {
        var cluster = port.ExternalPolicy == TrafficPolicy.Cluster;
        return external ? (port.External, cluster) : (port.ExternalFromPods, cluster);
    }

    /// <summary>
    /// ClientIP affinity first (valid for its timeout from the last new connection, while the backend is still in
    /// the set), then Maglev. With affinity the hash leaves the client port out (as Cilium does), so every worker
    /// and node picks the same backend for a client even before it has an affinity entry.
    /// </summary>
    private ServiceBackend Choose(ServicePort port, BackendSet set, in FlowKey key, AffinityTable affinity)
    {
        var members = set.Members;
        if (port.Affinity && affinity.TryGet(port.Id, key.Source, ctx.Now, port.AffinityTicks, out var ip, out var backendPort))
        {
            foreach (var m in members)
            {
                if (m.Ip != ip || m.Port != backendPort) continue;
                affinity.Set(port.Id, key.Source, ip, backendPort, ctx.Now);
                return m;
            }
        }
        var hash = MaglevTable.FlowHash(key.Source, port.Affinity ? (ushort)0 : key.SourcePort, key.Protocol);
        var chosen = members[set.Table!.Lookup(hash)];
        if (port.Affinity) affinity.Set(port.Id, key.Source, chosen.Ip, chosen.Port, ctx.Now);
        return chosen;
    }

    /// <summary>
    /// A source port for SNAT whose reply tuple no live flow uses, from this worker's share of the ports (port mod
    /// workers = worker) so workers never collide. The client's own port first (netfilter keeps it when it can),
    /// then a bounded walk from a hash of the flow. 0 when the walk finds nothing (counted as table pressure).
    /// </summary>
    private ushort AllocatePort(ConntrackTable table, int workers, ServiceBackend backend, in FlowKey key, uint address)
    {
        // Ports base + m*workers + worker, m in [0, count): this worker's share of 1024..65535.
        var first = (1024 + workers - 1) / workers * workers;
        var count = (65535 - first - ctx.Worker) / workers + 1;
        var start = key.SourcePort >= first && key.SourcePort % workers == ctx.Worker
            ? (key.SourcePort - first) / workers
            : (int)(MaglevTable.FlowHash(key.Source, key.SourcePort, key.Protocol) % (ulong)count);
        for (var k = 0; k < 64; k++)
        {
            var candidate = (ushort)(first + (int)((start + (long)k * 7919) % count) * workers + ctx.Worker);
            if (!table.TryFind(new FlowKey(backend.Ip, address, backend.Port, candidate, key.Protocol), ctx.Now, out _, out _, out _)) return candidate;
        }
        return 0;
    }
}
