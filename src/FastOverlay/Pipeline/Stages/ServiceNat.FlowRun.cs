using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastOverlay.Tables.Services;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

internal sealed partial class ServiceNat
{
    private FlowRun _run;

    /// <summary>
    /// The last flow this burst translated, ready to translate the next packets of a run of it (a pod's TCP send
    /// arrives as a run of segments of one flow, cut from one GSO super-frame): the translated tuple and the
    /// checksum adjustments are computed once per run (VPP's NAT keeps such deltas per session), and the counters
    /// are kept here and flushed once when the run ends. Valid within one burst: within it the flow can only change
    /// by another worker removing it for a stale backend, and a packet translated a microsecond later as it would
    /// have been a microsecond earlier is the same outcome.
    /// </summary>
    private struct FlowRun
    {
        public bool Valid;
        public bool Prepared;
        public RunMatch Match;
        public int HeaderLength;
        public FlowKey Key;
        public ConntrackFlow Flow;
        public bool Reply;
        public bool External;
        public uint Source, Destination;
        public ushort SourcePort, DestinationPort;
        /// <summary>One's complement sums of ~old + new over the changed words (RFC 1624): addresses; addresses and ports.</summary>
        public uint AddressSum, FullSum;
        public ServicePort? Port;
        public long Packets, Bytes;
    }

    /// <summary>
    /// Remembers the flow a packet was just translated by (the full path did that packet); the run's sums are
    /// computed only if a second packet of it follows, so interleaved flows pay a copy, not the preparation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StartRun(in FlowKey key, in ConntrackFlow flow, bool reply, RunMatch match)
    {
        ref var r = ref _run;
        r.Valid = true;
        r.Match = match;
        r.HeaderLength = match.VersionIhl << 2 & 0x3C;
        r.Prepared = false;
        r.Key = key;
        r.Reply = reply;
        r.Flow = flow;
    }

    private void PrepareRun(ServiceTable services)
    {
        ref var r = ref _run;
        ref readonly var flow = ref r.Flow;
        var key = r.Key;
        var reply = r.Reply;
        r.Prepared = true;
        r.External = reply && (flow.Flags & ConntrackFlags.External) != 0;
        var snat = (flow.Flags & ConntrackFlags.Snat) != 0;
        if (reply)
        {
            (r.Source, r.SourcePort) = (flow.Original.Destination, flow.Original.DestinationPort);
            (r.Destination, r.DestinationPort) = snat ? (flow.Original.Source, flow.Original.SourcePort) : (key.Destination, key.DestinationPort);
        }
        else
        {
            (r.Destination, r.DestinationPort) = (flow.Reply.Source, flow.Reply.SourcePort);
            (r.Source, r.SourcePort) = snat ? (flow.Reply.Destination, flow.Reply.DestinationPort) : (key.Source, key.SourcePort);
        }
        r.AddressSum = Delta(key.Source, r.Source) + Delta(key.Destination, r.Destination);
        r.FullSum = r.AddressSum + Delta16(key.SourcePort, r.SourcePort) + Delta16(key.DestinationPort, r.DestinationPort);
        r.Port = services.FindById(flow.ServicePortId);
        r.Packets = 0;
        r.Bytes = 0;
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

    /// <summary>A packet of the current run: four fields written, two checksums adjusted by the run's sums.</summary>
    private void TranslateInRun(PacketBurst burst, int i, Span<byte> ip, int headerLength, ServiceTable services)
    {
        ref var r = ref _run;
        if (!r.Prepared) PrepareRun(services);
        var h = burst.Handles[i];
        var partial = (ctx.Pool.Meta(h).Flags & PacketFlags.ChecksumPartial) != 0;
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Header.OffsetSource..], r.Source);
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Header.OffsetDestination..], r.Destination);
        var checksum = ip[Ipv4Header.OffsetChecksum..];
        BinaryPrimitives.WriteUInt16BigEndian(checksum, Adjust(BinaryPrimitives.ReadUInt16BigEndian(checksum), r.AddressSum));
        var l4 = ip[headerLength..];
        BinaryPrimitives.WriteUInt16BigEndian(l4, r.SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(l4[2..], r.DestinationPort);
        var udp = ip[Ipv4Header.OffsetProtocol] == Ipv4Header.ProtocolUdp;
        var field = l4[(udp ? 6 : 16)..];
        var value = BinaryPrimitives.ReadUInt16BigEndian(field);
        if (partial) BinaryPrimitives.WriteUInt16BigEndian(field, (ushort)~Adjust((ushort)~value, r.AddressSum));
        else if (!udp || value != 0)
        {
            value = Adjust(value, r.FullSum);
            BinaryPrimitives.WriteUInt16BigEndian(field, udp && value == 0 ? (ushort)0xFFFF : value);
        }
        burst.Address[i] = r.Destination;
        r.Packets++;
        r.Bytes += Ipv4Header.TotalLength(ip);
        if (r.External) SendExternal(burst, i, ip);
    }

    /// <summary>Adds the run's counts to the service port's and the tally (once per run, not per packet).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void EndRun()
    {
        if (_run.Packets > 0) FlushRun();
        _run.Valid = false;
    }

    private void FlushRun()
    {
        ref var r = ref _run;
        if (r.Valid)
        {
            ctx.Tally.Add(r.Reply ? Counter.ServiceReplies : Counter.ServiceTranslated, r.Packets);
            if (r.Port is { } port)
            {
                port.Counters.Add(ctx.Worker, r.Reply ? ServiceCounter.ReplyPackets : ServiceCounter.Packets, r.Packets);
                port.Counters.Add(ctx.Worker, r.Reply ? ServiceCounter.ReplyBytes : ServiceCounter.Bytes, r.Bytes);
            }
        }
        r.Packets = 0;
        r.Bytes = 0;
        r.Port = null;
    }

    private static uint Delta(uint before, uint after) => Delta16((ushort)(before >> 16), (ushort)(after >> 16)) + Delta16((ushort)before, (ushort)after);

    private static uint Delta16(ushort before, ushort after) => (uint)(ushort)~before + after;

    /// <summary>RFC 1624 eqn. 3 with the ~m + m' terms summed in advance: HC' = ~(~HC + Σ).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ushort Adjust(ushort checksum, uint sum)
    {
        var s = (uint)(ushort)~checksum + sum;
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        return (ushort)~s;
    }
}
