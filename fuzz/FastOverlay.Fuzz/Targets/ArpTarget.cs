using FastOverlay.Pipeline;
using FastOverlay.Tables;

namespace FastOverlay.Fuzz.Targets;

/// <summary>
/// ARP on pod 0's port (the EtherType is forced to ARP, so every input reaches ARP input). Checks: at most one
/// reply, only to a request the node should answer (the gateway, or with proxy ARP another unicast address of
/// the subnet that is not the asker's own, never for a probe from 0.0.0.0), built correctly; at most one
/// neighbour entry changes and only the sender's, on the port it came from; another pod's pinned address never
/// moves; nothing is parked, nothing leaks, the counters add up and traffic still flows.
/// </summary>
public sealed class ArpTarget : IFuzzTarget
{
    private readonly FuzzNode _node = new();
    private readonly byte[] _frame = new byte[PacketPool.MaxFrameLength];

    public string Name => "arp";
    public string Description => "an ARP frame arriving on a pod port";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length > PacketPool.MaxFrameLength) input = input[..PacketPool.MaxFrameLength];
        var frame = _frame.AsSpan(0, input.Length);
        input.CopyTo(frame);
        if (frame.Length >= 14)
        {
            frame[12] = 0x08;
            frame[13] = 0x06;
        }
        var node = _node;
        var options = FuzzNode.Options;
        node.Reset();
        var before = node.Node.Arp.Snapshot();
        node.Inject(1, frame);
        var first = node.PollAndCollect();
        OutputChecks.All(node, first);
        if (first.Count > 1) throw new InvariantViolation($"one ARP frame made {first.Count} frames");

        var l3 = Oracle.L3(frame, out var type);
        var dst = frame.Length >= 6 ? Oracle.Mac(frame) : 0;
        var arp = l3 >= 0 && type == Oracle.TypeArp ? frame[l3..] : default;
        var valid = Oracle.IsArp(arp) && (dst == options.GatewayMac.Value || dst == 0xFFFF_FFFF_FFFFUL);
        if (!valid && (first.Count != 0 || node.Node.Counters.TotalDrops != 1)) throw new InvariantViolation("malformed or misaddressed ARP was not dropped exactly once");
        if (first.Count == 1)
        {
            var reply = first[0].Frame;
            var sender = Oracle.ArpSenderIp(arp);
            var target = Oracle.ArpTargetIp(arp);
            var subnet = options.Subnet;
            var shouldAnswer = target == options.GatewayIp ||
                (sender != 0 && target != sender && subnet.Contains(target) && target != subnet.First && target != subnet.Last);
            if (Oracle.ArpOp(arp) != 1 || !shouldAnswer) throw new InvariantViolation("answered ARP that must not be answered");
            if (!SpeaksAsPod0(frame, arp)) throw new InvariantViolation("answered ARP that speaks for someone other than pod 0");
            var r = reply.AsSpan(14);
            if (first[0].Port != 1 || Oracle.ArpOp(r) != 2 || Oracle.ArpSenderIp(r) != target || Oracle.ArpTargetIp(r) != sender ||
                Oracle.Mac(r[18..]) != Oracle.ArpSenderMac(arp) || Oracle.Mac(reply) != Oracle.ArpSenderMac(arp))
                throw new InvariantViolation("ARP reply does not answer the request it replies to");
        }

        var after = node.Node.Arp.Snapshot();
        var changed = after.Where(e => !before.Contains(e)).ToList();
        if (changed.Count > 1) throw new InvariantViolation("one ARP frame changed more than one neighbour");
        if (changed.Count == 1)
        {
            var e = changed[0];
            if (!valid || e.Address.Value != Oracle.ArpSenderIp(arp) || e.Mac.Value != Oracle.ArpSenderMac(arp) || e.Port != 1 || !options.Subnet.Contains(e.Address.Value))
                throw new InvariantViolation($"neighbour {e.Address} -> {e.Mac} on port {e.Port} learned from an ARP frame that does not say so");
            if (!SpeaksAsPod0(frame, arp)) throw new InvariantViolation($"learned {e.Address} -> {e.Mac} from ARP that speaks for someone other than pod 0");
            if (e.Address.Value == options.GatewayIp || e.Address.Value == options.VtepIp || (e.Mac.Value & 0x0100_0000_0000UL) != 0)
                throw new InvariantViolation($"learned a neighbour the node must never learn: {e.Address} -> {e.Mac}");
        }
        foreach (var e in before)
        {
            if (e.Port != 1 && !after.Contains(e)) throw new InvariantViolation($"ARP on port 1 moved the neighbour {e.Address} of port {e.Port}");
        }

        if (node.Settle().Count != 0) throw new InvariantViolation("ARP input left something to send later");
        node.CheckQuiescent();
        node.CheckCanary();
    }

    /// <summary>
    /// Anti-spoofing: pod 0's port may speak ARP only as pod 0: sender MAC = Ethernet source = the MAC the port
    /// bound, sender IP its configured address (or 0.0.0.0, a probe, which claims nothing).
    /// </summary>
    private static bool SpeaksAsPod0(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> arp)
    {
        var mac = FuzzNode.PodMac(0).Value;
        var sender = Oracle.ArpSenderIp(arp);
        return Oracle.ArpSenderMac(arp) == mac && Oracle.Mac(frame[6..]) == mac && (sender == 0 || sender == FuzzNode.PodIp(0));
    }
}
