using System.Buffers.Binary;
using FastOverlay.Pipeline;

namespace FastOverlay.Fuzz.Targets;

/// <summary>
/// Any frame arriving on the underlay port: the VXLAN decap path. The oracle decides independently whether the
/// input is VXLAN that RFC 7348 lets this node accept (to our address and port, our VNI, I flag, from a
/// configured peer, inner frame within the UDP datagram). Anything else must be dropped exactly once and
/// produce nothing, and never reach a pod. What is accepted may reach a pod only as the inner datagram itself.
/// </summary>
public sealed class UnderlayTarget : IFuzzTarget
{
    private readonly FuzzNode _node = new();

    public string Name => "underlay";
    public string Description => "a frame arriving on the underlay port (VXLAN decap)";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length > PacketPool.MaxFrameLength) input = input[..PacketPool.MaxFrameLength];
        var node = _node;
        var options = FuzzNode.Options;
        node.Reset();
        node.Inject(0, input);
        var first = node.PollAndCollect();
        OutputChecks.All(node, first);
        if (first.Count > 1 + FuzzNode.PodCount + 1) throw new InvariantViolation($"one frame made {first.Count} frames");

        var counters = node.Node.Counters;
        var inner = Oracle.VxlanInner(input, options.PublicIp.Value, options.VxlanPort, options.Vni, out var source);
        var fromPeer = !inner.IsEmpty && Array.Exists(FuzzNode.Peers, p => p.PublicIp.Value == source);
        if (!fromPeer)
        {
            if (first.Count != 0) throw new InvariantViolation("a frame that is not VXLAN from a peer for our VNI produced output");
            if (counters[Counter.Decapsulated] != 0) throw new InvariantViolation("decapsulated a frame that is not VXLAN from a peer for our VNI");
            if (counters.TotalDrops != 1) throw new InvariantViolation($"a rejected underlay frame counted {counters.TotalDrops} drops");
        }
        else
        {
            if (counters[Counter.Decapsulated] != 1) throw new InvariantViolation("valid VXLAN from a peer was not decapsulated");
            var l3 = Oracle.L3(inner, out var type);
            var innerOk = l3 >= 0 && type == Oracle.TypeIpv4 && Oracle.Mac(inner) == options.VtepMac.Value && !Oracle.Ipv4(inner[l3..]).IsEmpty;
            if (!innerOk && first.Count != 0) throw new InvariantViolation("an inner frame that is not IPv4 to our VTEP MAC produced output");
            if (innerOk) OutputChecks.ForwardedUnchanged(first, inner[l3..]);
            // Anti-spoofing: a peer speaks only for the pods of its own lease.
            var peer = Array.Find(FuzzNode.Peers, p => p.PublicIp.Value == source)!;
            if (innerOk && !peer.Subnet.Contains(Oracle.Src(inner[l3..])) && first.Count != 0)
                throw new InvariantViolation("an inner packet from outside the sending peer's subnet was let through");
        }

        var later = node.Settle();
        OutputChecks.All(node, later);
        foreach (var e in later)
        {
            if (!fromPeer || e.Port == 0 || BinaryPrimitives.ReadUInt16BigEndian(e.Frame.AsSpan(12)) != Oracle.TypeArp)
                throw new InvariantViolation("after the input, only ARP probes may leave while time passes");
        }
        node.CheckQuiescent();
        // Neighbours are learned from pods' ARP only, never from the underlay.
        if (node.Node.Arp.Count != node.ArpBaseline) throw new InvariantViolation("an underlay frame changed the neighbour table");
        node.CheckCanary();
    }
}
