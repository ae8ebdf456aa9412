using System.Buffers.Binary;
using FastOverlay.Pipeline;

namespace FastOverlay.Fuzz.Targets;

/// <summary>
/// Any frame a pod can send, on pod 0's port: Ethernet, VLAN, ARP, IPv4 with options, fragments, ICMP, to any
/// address. Checks: everything that leaves is well formed for its port (<see cref="OutputChecks"/>); a forwarded
/// datagram is the input with only TTL and checksum changed; a frame the node cannot take is dropped with nothing
/// sent; one frame never makes more than a handful of frames; then the node settles with no buffer held and the
/// counters adding up, and good traffic on every path still flows.
/// </summary>
public sealed class PodFrameTarget : IFuzzTarget
{
    private readonly FuzzNode _node = new();

    public string Name => "pod-frame";
    public string Description => "a frame arriving on a pod port (Ethernet/VLAN/IPv4/ARP)";

    public void Run(ReadOnlySpan<byte> input)
    {
        // A port never hands over more than a buffer holds (the AF_PACKET adapter truncates and counts).
        if (input.Length > PacketPool.MaxFrameLength) input = input[..PacketPool.MaxFrameLength];
        var node = _node;
        node.Reset();
        node.Inject(1, input);
        var first = node.PollAndCollect();
        OutputChecks.All(node, first);
        // The frame itself, an ARP request on each pod port, an ICMP error: no more.
        if (first.Count > 1 + FuzzNode.PodCount + 1) throw new InvariantViolation($"one frame made {first.Count} frames");

        var l3 = Oracle.L3(input, out var type);
        if (l3 >= 0 && type == Oracle.TypeIpv4)
        {
            var valid = !Oracle.Ipv4(input[l3..]).IsEmpty && Oracle.Mac(input) == FuzzNode.Options.GatewayMac.Value;
            if (!valid && first.Count != 0) throw new InvariantViolation("an invalid IPv4 frame (or one not for the gateway MAC) produced output");
            if (valid) OutputChecks.ForwardedUnchanged(first, input[l3..]);
            // Anti-spoofing: pod 0's port speaks only as pod 0 (its configured address, the MAC it bound by ARP).
            var spoofed = valid && (Oracle.Src(input[l3..]) != FuzzNode.PodIp(0) || Oracle.Mac(input[6..]) != FuzzNode.PodMac(0).Value);
            if (spoofed && first.Count != 0) throw new InvariantViolation("a datagram with another source address or MAC than pod 0's was let through");
        }
        else if (l3 < 0 || type != Oracle.TypeArp)
        {
            if (first.Count != 0 || node.Node.Counters.TotalDrops != 1) throw new InvariantViolation("a frame that is neither IPv4 nor ARP was not dropped exactly once");
        }

        var later = node.Settle();
        OutputChecks.All(node, later);
        foreach (var e in later)
        {
            if (e.Port == 0 || BinaryPrimitives.ReadUInt16BigEndian(e.Frame.AsSpan(12)) != Oracle.TypeArp)
                throw new InvariantViolation("after the input, only ARP probes may leave while time passes");
        }
        if (node.Received != 1) throw new InvariantViolation("rx counter did not count the input once");
        node.CheckQuiescent();
        if (node.Node.Arp.Count > node.ArpBaseline + 1) throw new InvariantViolation("one frame taught more than one neighbour");
        node.CheckCanary();
    }
}
