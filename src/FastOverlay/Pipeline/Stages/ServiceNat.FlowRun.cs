using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastOverlay.Tables.Services;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

internal sealed partial class ServiceNat
{
    private FlowRun _run;
    private PortTally _tally;

    /// <summary>
    /// How the last flow this burst translated rewrites a packet, ready for the next packets of a run of it (a pod's
    /// TCP send arrives as a run of segments of one flow, cut from one GSO super-frame): the new tuple and the
    /// checksum adjustments (VPP's NAT keeps such deltas per session) are computed once per flow hit, and a packet
    /// of the run is recognised from its raw header bytes with no lookup. Valid within one burst: within it the
    /// flow can only change by another worker removing it for a stale backend, and a packet translated a
    /// microsecond later as it would have been a microsecond earlier is the same outcome.
    /// </summary>
    private struct FlowRun
    {
        public bool Valid;
        public RunMatch Match;
        public int HeaderLength;
        public bool Reply;
        public bool External;
        public NatTranslation Translation;
        /// <summary>The flow's service port, by id: resolved only when its counts are flushed (no reference store per packet).</summary>
        public uint PortId;
        /// <summary>Packets and IPv4 bytes of the run so far, added to the tally when the run ends.</summary>
        public long Packets, Bytes;
    }

    /// <summary>
    /// Packets and bytes translated, kept per service port until the port changes or the burst ends: the per-port
    /// counters and the node tally are written once per stretch of one port, not per packet.
    /// </summary>
    private struct PortTally
    {
        /// <summary>The table the burst runs on (set once per burst), where <see cref="PortId"/> is looked up.</summary>
        public ServiceTable? Services;
        public uint PortId;
        public long Packets, Bytes, ReplyPackets, ReplyBytes;
        public long Translated, Replies;
    }

    /// <summary>
    /// Sets the run up from the flow a packet was just found (or created) by: the translated tuple and the sums.
    /// The flow is read where it lies; nothing of it is copied.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StartRun(in FlowKey key, in ConntrackFlow flow, bool reply, RunMatch match)
    {
        EndRun();
        ref var r = ref _run;
        r.Valid = true;
        r.Match = match;
        r.HeaderLength = match.VersionIhl << 2 & 0x3C;
        r.Reply = reply;
        r.External = reply && (flow.Flags & ConntrackFlags.External) != 0;
        r.Translation = TranslationOf(in key, in flow, reply);
        r.PortId = flow.ServicePortId;
    }

    /// <summary>How a packet with tuple <paramref name="key"/> of <paramref name="flow"/> is rewritten, in the given direction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static NatTranslation TranslationOf(in FlowKey key, in ConntrackFlow flow, bool reply)
    {
        var snat = (flow.Flags & ConntrackFlags.Snat) != 0;
        uint source, destination;
        ushort sourcePort, destinationPort;
        if (reply)
        {
            (source, sourcePort) = (flow.Original.Destination, flow.Original.DestinationPort);
            (destination, destinationPort) = snat ? (flow.Original.Source, flow.Original.SourcePort) : (key.Destination, key.DestinationPort);
        }
        else
        {
            (destination, destinationPort) = (flow.Reply.Source, flow.Reply.SourcePort);
            (source, sourcePort) = snat ? (flow.Reply.Destination, flow.Reply.DestinationPort) : (key.Source, key.SourcePort);
        }
        return new NatTranslation(key.Source, key.Destination, key.SourcePort, key.DestinationPort, source, destination, sourcePort, destinationPort);
    }

    /// <summary>
    /// The bytes that identify a packet of the run as they sit in the header (no byte swaps, no parse): version and
    /// header length, protocol, both addresses, both ports.
    /// </summary>
    private readonly record struct RunMatch(byte VersionIhl, byte Protocol, ulong Addresses, uint Ports)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static RunMatch Of(ReadOnlySpan<byte> ip, int headerLength) => new(ip[0], ip[Ipv4Header.OffsetProtocol],
            MemoryMarshal.Read<ulong>(ip[Ipv4Header.OffsetSource..]), MemoryMarshal.Read<uint>(ip[headerLength..]));
    }

    /// <summary>
    /// A packet of the current run: same header length, protocol, addresses and ports, not a fragment, and no
    /// SYN/FIN/RST (those take the full path, which updates the flow's state). Read straight from the header.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsRunPacket(ReadOnlySpan<byte> ip)
    {
        ref readonly var m = ref _run.Match;
        var headerLength = _run.HeaderLength;
        if (ip.Length < headerLength + 20 || ip[0] != m.VersionIhl || ip[Ipv4Header.OffsetProtocol] != m.Protocol) return false;
        if (MemoryMarshal.Read<ulong>(ip[Ipv4Header.OffsetSource..]) != m.Addresses || Ipv4Header.IsFragment(ip)) return false;
        var l4 = ip[headerLength..];
        if (MemoryMarshal.Read<uint>(l4) != m.Ports) return false;
        return m.Protocol != Ipv4Header.ProtocolTcp || (l4[NatRewrite.TcpFlagsOffset] & TcpControl) == 0;
    }

    /// <summary>A packet of the current run: rewritten by the run's translation, counted in the run, and sent on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void TranslateInRun(PacketBurst burst, int i, int handle, Span<byte> ip, int headerLength)
    {
        ref var r = ref _run;
        r.Translation.Apply(ip, headerLength, (ctx.Pool.Meta(handle).Flags & PacketFlags.ChecksumPartial) != 0);
        burst.Address[i] = r.Translation.Destination;
        r.Packets++;
        r.Bytes += Ipv4Header.TotalLength(ip);
        if (r.External) SendExternal(burst, i, ip);
    }

    /// <summary>Ends the current run, if any: its counts go to the tally of its service port.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void EndRun()
    {
        ref var r = ref _run;
        r.Valid = false;
        if (r.Packets == 0) return;
        ref var t = ref _tally;
        if (r.PortId != t.PortId) SwitchTallyPort(r.PortId);
        if (r.Reply)
        {
            t.ReplyPackets += r.Packets;
            t.ReplyBytes += r.Bytes;
        }
        else
        {
            t.Packets += r.Packets;
            t.Bytes += r.Bytes;
        }
        r.Packets = 0;
        r.Bytes = 0;
    }

    private void SwitchTallyPort(uint portId)
    {
        FlushPortCounters();
        _tally.PortId = portId;
    }

    private void FlushPortCounters()
    {
        ref var t = ref _tally;
        t.Translated += t.Packets;
        t.Replies += t.ReplyPackets;
        if ((t.Packets | t.ReplyPackets) != 0 && t.Services?.FindById(t.PortId) is { } port)
        {
            var w = ctx.Worker;
            if (t.Packets > 0)
            {
                port.Counters.Add(w, ServiceCounter.Packets, t.Packets);
                port.Counters.Add(w, ServiceCounter.Bytes, t.Bytes);
            }
            if (t.ReplyPackets > 0)
            {
                port.Counters.Add(w, ServiceCounter.ReplyPackets, t.ReplyPackets);
                port.Counters.Add(w, ServiceCounter.ReplyBytes, t.ReplyBytes);
            }
        }
        t.Packets = t.Bytes = t.ReplyPackets = t.ReplyBytes = 0;
    }

    /// <summary>At the end of a burst: the last port's counts and the node tally.</summary>
    private void FlushTally()
    {
        FlushPortCounters();
        ref var t = ref _tally;
        if (t.Translated > 0) ctx.Tally.Add(Counter.ServiceTranslated, t.Translated);
        if (t.Replies > 0) ctx.Tally.Add(Counter.ServiceReplies, t.Replies);
        t.Translated = t.Replies = 0;
    }
}
