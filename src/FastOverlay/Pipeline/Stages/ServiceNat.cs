using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using FastOverlay.Tables.Services;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

/// <summary>
/// kube-proxy's job in the burst pipeline, between input and the route lookup: a packet of a tracked flow is
/// translated as its flow says (DNAT toward the backend, SNAT when the flow needs it, the reverse on replies); the
/// first packet to a Service address picks a backend (session affinity, else Maglev over the ready endpoints) and
/// creates the flow. Packets that cannot concern a Service (neither to a service address, nor from an endpoint,
/// nor to the SNAT address) cost one or two hash probes and pass untouched.
/// </summary>
internal sealed partial class ServiceNat(NodeContext ctx, IcmpResponder icmp)
{
    private const byte IcmpPortUnreachable = 3;
    private const byte TcpControl = NatRewrite.TcpSyn | NatRewrite.TcpFin | NatRewrite.TcpRst;


    public void Run(PacketBurst burst)
    {
        var state = ctx.State;
        if (state.Conntrack is not { } conntrack) return;
        var services = state.Services;
        var pool = ctx.Pool;
        var own = conntrack.Tables[ctx.Worker];
        var now = ctx.Now;
        _run.Valid = false;
        _tally.Services = services;
        if (own.Count >= PrefetchAboveFlows) PrefetchBuckets(burst, own);
        for (var i = 0; i < burst.Count; i++)
        {
            if (burst.Next[i] != NextStage.Ip4Input) continue;
            var h = burst.Handles[i];
            var ip = pool.Frame(h)[Ethernet.HeaderLength..];
            if (_run.Valid && IsRunPacket(ip))
            {
                TranslateInRun(burst, i, h, ip, _run.HeaderLength);
                continue;
            }
            EndRun();
            var external = (pool.Meta(h).Flags & PacketFlags.External) != 0;
            var protocol = Ipv4Header.Protocol(ip);
            if (protocol == Ipv4Header.ProtocolIcmp)
            {
                if (external) burst.SetDrop(i, DropReason.ExternalNotService);
                else TranslateIcmp(burst, i, ip, services, conntrack);
                continue;
            }
            var destination = burst.Address[i];
            if (protocol is not (Ipv4Header.ProtocolTcp or Ipv4Header.ProtocolUdp))
            {
                if (external || services.IsServiceAddress(destination)) burst.SetDrop(i, DropReason.ServiceNotTranslatable);
                continue;
            }
            if (!Ipv4Header.HasL4Header(ip))
            {
                TranslateLaterFragment(burst, i, ip, protocol, destination, external, services, conntrack, own);
                continue;
            }
            var headerLength = Ipv4Header.HeaderLength(ip);
            var l4 = ip[headerLength..];
            if (l4.Length < (protocol == Ipv4Header.ProtocolTcp ? 20 : 8))
            {
                if (external || services.IsServiceAddress(destination)) burst.SetDrop(i, DropReason.ServiceNotTranslatable);
                continue;
            }
            var source = Ipv4Header.Source(ip);
            var sourcePort = BinaryPrimitives.ReadUInt16BigEndian(l4);
            var destinationPort = BinaryPrimitives.ReadUInt16BigEndian(l4[2..]);
            var tcpFlags = protocol == Ipv4Header.ProtocolTcp ? l4[NatRewrite.TcpFlagsOffset] : (byte)0;
            var key = new FlowKey(source, destination, sourcePort, destinationPort, protocol);
            if (!external && !MayConcernService(services, source, sourcePort, destination, protocol)) continue;

            // This worker's table first, read in place: a flow's first direction, and most replies, are here.
            if (own.TryFindOwned(key, now, out var index, out var reply))
            {
                ref readonly var flow = ref own.Flow(index);
                if (reply || IsCurrent(conntrack, ctx.Worker, index, in flow, services, tcpFlags))
                {
                    own.Touch(index, reply, tcpFlags, now);
                    Translate(burst, i, ip, headerLength, in key, in flow, reply);
                    continue;
                }
            }
            else if (TryFindElsewhere(conntrack, key, out var table, out index, out reply, out var copy))
            {
                if (reply || IsCurrent(conntrack, table, index, in copy, services, tcpFlags))
                {
                    conntrack.Tables[table].Observe(index, reply, tcpFlags, now);
                    Translate(burst, i, ip, headerLength, in key, in copy, reply);
                    continue;
                }
            }
            // No flow, or a stale one (backend gone, Service gone, or a SYN reusing a closed flow's ports): a new flow.
            NewFlow(burst, i, ip, in key, external, tcpFlags, services, conntrack);
        }
        EndRun();
        FlushTally();
    }

    /// <summary>
    /// With this many flows the buckets no longer stay in cache: each lookup would wait for DRAM in turn (about 220 ns
    /// at 1M flows, ConntrackBenchmarks). Starting every packet's bucket load first overlaps those waits (about 150
    /// ns). With fewer flows the extra parse pass costs more than it saves.
    /// </summary>
    private const int PrefetchAboveFlows = 16384;

    /// <summary>A first pass over the burst that only starts loading the bucket each TCP/UDP packet's lookup will read.</summary>
    private void PrefetchBuckets(PacketBurst burst, ConntrackTable table)
    {
        var pool = ctx.Pool;
        for (var i = 0; i < burst.Count; i++)
        {
            if (burst.Next[i] != NextStage.Ip4Input) continue;
            var ip = pool.Frame(burst.Handles[i])[Ethernet.HeaderLength..];
            var protocol = Ipv4Header.Protocol(ip);
            if (protocol is not (Ipv4Header.ProtocolTcp or Ipv4Header.ProtocolUdp) || !Ipv4Header.HasL4Header(ip)) continue;
            var l4 = ip[Ipv4Header.HeaderLength(ip)..];
            if (l4.Length < 4) continue;
            table.Prefetch(new FlowKey(Ipv4Header.Source(ip), burst.Address[i], BinaryPrimitives.ReadUInt16BigEndian(l4), BinaryPrimitives.ReadUInt16BigEndian(l4[2..]), protocol));
        }
    }

    /// <summary>The cheap filter that keeps plain pod traffic off the flow table.</summary>
    private static bool MayConcernService(ServiceTable services, uint source, ushort sourcePort, uint destination, byte protocol) =>
        services.IsServiceAddress(destination)
        || destination == services.NodeIp
        || destination == services.HairpinAddress
        || services.BackendSources.Find(ServiceKeyMap.Key(source, sourcePort, protocol)) >= 0;

    /// <summary>The other workers' tables (a reply that the kernel's fanout hashed to this worker), by seqlock copy.</summary>
    private bool TryFindElsewhere(ConntrackSet conntrack, in FlowKey key, out int table, out int index, out bool reply, out ConntrackFlow flow)
    {
        var tables = conntrack.Tables;
        for (var w = 0; w < tables.Length; w++)
        {
            if (w == ctx.Worker || !tables[w].TryFind(key, ctx.Now, out index, out reply, out flow)) continue;
            table = w;
            return true;
        }
        table = -1;
        index = -1;
        reply = false;
        flow = default;
        return false;
    }

    /// <summary>
    /// An existing flow keeps its backend while that endpoint is serving and the Service port exists (kube-proxy's
    /// conntrack reconciler keeps flows to serving endpoints, terminating ones included); otherwise it is re-selected
    /// (UDP then never blackholes on a removed endpoint; TCP gets the new backend's RST). A new SYN on a closed flow
    /// is a new connection (port reuse), as Cilium and VPP NAT44-ED treat it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsCurrent(ConntrackSet conntrack, int table, int index, in ConntrackFlow flow, ServiceTable services, byte tcpFlags) =>
        ((tcpFlags & (NatRewrite.TcpSyn | NatRewrite.TcpAck)) != NatRewrite.TcpSyn && flow.Epoch == services.Epoch)
        || IsCurrentAfterChange(conntrack, table, index, in flow, services, tcpFlags);

    /// <summary>The rest of <see cref="IsCurrent"/>: a bare SYN, or a flow validated under an older service table.</summary>
    private bool IsCurrentAfterChange(ConntrackSet conntrack, int table, int index, in ConntrackFlow flow, ServiceTable services, byte tcpFlags)
    {
        var owned = table == ctx.Worker;
        if ((tcpFlags & (NatRewrite.TcpSyn | NatRewrite.TcpAck)) == NatRewrite.TcpSyn
            && (flow.Flags & (ConntrackFlags.Rst | ConntrackFlags.OriginalFin | ConntrackFlags.ReplyFin)) != 0)
        {
            if (owned) conntrack.Tables[table].Remove(index);
            return false;
        }
        if (flow.Epoch == services.Epoch) return true;
        var backend = services.FindById(flow.ServicePortId)?.FindBackend(flow.Reply.Source, flow.Reply.SourcePort);
        if (backend is { Serving: true })
        {
            if (owned) conntrack.Tables[table].SetEpoch(index, services.Epoch);
            return true;
        }
        if (owned) conntrack.Tables[table].Remove(index);
        return false;
    }
}
