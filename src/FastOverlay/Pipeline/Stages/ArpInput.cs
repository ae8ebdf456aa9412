using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

/// <summary>
/// ARP on pod ports: learn the sender (requests, replies and gratuitous ARP all teach a binding), release packets
/// parked for it, and answer requests for the gateway (and, with proxy ARP, for other addresses of the subnet)
/// by turning the request into the reply in its own buffer.
/// </summary>
internal sealed class ArpInput(NodeContext ctx)
{
    private readonly int[] _released = new int[ctx.Pending.PacketsPerAddress];

    public void Run(PacketBurst burst)
    {
        var pool = ctx.Pool;
        var node = ctx.Node;
        for (var i = 0; i < burst.Count; i++)
        {
            if (burst.Next[i] != NextStage.ArpInput) continue;
            var h = burst.Handles[i];
            var frame = pool.Frame(h);
            var reason = ArpPacket.TryParse(frame[burst.L3Offset[i]..], out var arp);
            if (reason != DropReason.None)
            {
                burst.SetDrop(i, reason);
                continue;
            }
            int port = pool.Meta(h).InPort;
            var senderIp = arp.SenderIp;
            var senderMac = arp.SenderMac;
            var targetIp = arp.TargetIp;
            var op = arp.Operation;

            // A pod may speak ARP only for its own address and MAC: refuse replies or announcements that claim
            // another pod's address (ARP spoofing, which a plain bridge lets through).
            // The node's stack asks for the gateway from whatever address the packet it routes has (arp_announce 0):
            // from the host port a sender outside the subnet is answered, but not learned. The subnet's first
            // address is the VTEP's without a host port, and the node stack's behind it.
            var fromHost = port == ctx.State.HostPort;
            var foreign = senderIp != 0 && (!node.Subnet.Contains(senderIp) || senderIp == node.GatewayIp || (senderIp == node.VtepIp && !fromHost));
            if (foreign ? !fromHost : !ctx.Bindings.CheckArp(port, senderIp, senderMac.Value, Ethernet.Source(frame).Value))
            {
                burst.SetDrop(i, DropReason.ArpSpoofed);
                continue;
            }

            // RFC 826 merge: learn the sender when it belongs to our subnet and is not one of our own addresses.
            // An ARP probe (sender 0.0.0.0, RFC 5227) teaches nothing.
            if (senderIp != 0 && !senderMac.IsMulticast && !foreign)
            {
                ctx.Arp.Learn(senderIp, senderMac, port, ctx.Now);
                ctx.Exchange?.Publish(ctx.Worker, new NeighbourUpdate(senderIp, senderMac.Value, port));
                ctx.Tally.Add(Counter.ArpLearned);
                ctx.Tracer?.Record(ctx.Name, TraceEvent.ArpLearned, h, port, senderIp, mac: senderMac.Value);
                Release(senderIp);
            }

            if (op == ArpPacket.OpRequest && Answers(node, targetIp, senderIp, ctx.State.HostPort >= 0))
            {
                var l3 = frame[burst.L3Offset[i]..];
                ArpPacket.Write(l3, ArpPacket.OpReply, node.GatewayMac, targetIp, senderMac, senderIp);
                Ethernet.Write(frame, senderMac, node.GatewayMac, Ethernet.TypeArp);
                burst.Next[i] = NextStage.Transmit;
                burst.OutPort[i] = (ushort)port;
                ctx.Tally.Add(Counter.ArpRequestsAnswered);
                ctx.Tracer?.Record(ctx.Name, TraceEvent.ArpAnswered, h, port, targetIp, senderIp, mac: node.GatewayMac.Value);
                continue;
            }
            // A reply to us, an announcement, or a request for someone else: learned above, nothing to send.
            if (op == ArpPacket.OpRequest && !arp.IsGratuitous)
            {
                burst.SetDrop(i, DropReason.ArpNotForUs);
                continue;
            }
            ctx.Tally.Add(Counter.ArpConsumed);
            pool.Free(h);
            burst.Next[i] = NextStage.Consumed;
        }
    }

    private static bool Answers(NodeOptions node, uint target, uint sender, bool host)
    {
        if (target == node.GatewayIp) return true;
        // The node's overlay address lives behind the host port: pods reach it through us, as any address off their port.
        if (host && target == node.Subnet.First && sender != 0 && target != sender) return true;
        // Proxy ARP for the rest of the subnet, but never for the asker's own address nor for an ARP probe
        // (sender 0.0.0.0, RFC 5227 duplicate address detection: answering it would make every address look
        // taken), nor for the subnet's network and broadcast addresses.
        return node.ProxyArp && sender != 0 && target != sender && node.Subnet.Contains(target) && target != node.Subnet.First && target != node.Subnet.Last;
    }

    /// <summary>A binding another worker learned (see <see cref="NeighbourExchange"/>): learn it and release what waited for it.</summary>
    public void LearnFromWorker(in NeighbourUpdate update)
    {
        var ports = ctx.State.Ports;
        if ((uint)update.Port >= (uint)ports.Length || ports[update.Port] is null) return;
        ctx.Arp.Learn(update.Address, new MacAddress(update.Mac), update.Port, ctx.Now);
        Release(update.Address);
    }

    private void Release(uint address)
    {
        var n = ctx.Pending.Release(address, _released);
        for (var k = 0; k < n; k++)
        {
            ctx.Tally.Add(Counter.ArpReleased);
            ctx.Tracer?.Record(ctx.Name, TraceEvent.ArpReleased, _released[k], -1, address);
            ctx.Reenter(_released[k], NextStage.Ip4Rewrite, address);
        }
    }
}
