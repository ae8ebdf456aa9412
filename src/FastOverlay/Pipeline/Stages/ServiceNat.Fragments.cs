using FastOverlay.Tables.Services;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

internal sealed partial class ServiceNat
{
    /// <summary>Concurrent fragmented datagrams a worker tells apart; 24 bytes each.</summary>
    private const int FragmentSlots = 4096;

    /// <summary>The kernel's reassembly timeout (net.ipv4.ipfrag_time): a datagram is whole or abandoned by then.</summary>
    private static readonly TimeSpan FragmentLifetime = TimeSpan.FromSeconds(30);

    private readonly FragmentTable _fragments = new(FragmentSlots, NodeOptions.Ticks(FragmentLifetime));

    /// <summary>
    /// A fragment after the first (no L4 header): if its datagram's first fragment was translated for a flow, it gets
    /// the same address rewrite (the ports and the L4 checksum live in the first fragment only). Otherwise it is
    /// plain traffic and passes, unless it is addressed to a Service, where it cannot be translated.
    /// </summary>
    private void TranslateLaterFragment(PacketBurst burst, int i, Span<byte> ip, byte protocol, uint destination, bool external,
        ServiceTable services, ConntrackSet conntrack, ConntrackTable own)
    {
        var now = ctx.Now;
        var source = Ipv4Header.Source(ip);
        if (!_fragments.TryFind(source, destination, Ipv4Header.Identification(ip), protocol, now, out var sourcePort, out var destinationPort))
        {
            if (external || services.IsServiceAddress(destination)) burst.SetDrop(i, DropReason.ServiceFragmentUnmatched);
            return;
        }
        var key = new FlowKey(source, destination, sourcePort, destinationPort, protocol);
        ConntrackFlow flow;
        bool reply;
        // The first fragment validated the flow (or made a new one) an instant ago: no staleness check here.
        if (own.TryFindOwned(key, now, out var index, out reply))
        {
            flow = own.Flow(index);
            own.Touch(index, reply, 0, now);
        }
        else if (TryFindElsewhere(conntrack, key, out var table, out index, out reply, out flow))
        {
            conntrack.Tables[table].Observe(index, reply, 0, now);
        }
        else
        {
            burst.SetDrop(i, DropReason.ServiceFragmentUnmatched);
            return;
        }

        var translation = TranslationOf(in key, in flow, reply);
        translation.ApplyAddresses(ip);
        burst.Address[i] = translation.Destination;
        ref var t = ref _tally;
        if (flow.ServicePortId != t.PortId) SwitchTallyPort(flow.ServicePortId);
        if (reply)
        {
            t.ReplyPackets++;
            t.ReplyBytes += Ipv4Header.TotalLength(ip);
        }
        else
        {
            t.Packets++;
            t.Bytes += Ipv4Header.TotalLength(ip);
        }
        ctx.Tally.Add(Counter.ServiceFragmentsTranslated);
        if (reply && (flow.Flags & ConntrackFlags.External) != 0) SendExternal(burst, i, ip);
    }
}
