using FastOverlay.Pipeline;
using FastOverlay.Tests.Pipeline;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Hostile;

/// <summary>What one injected frame did: the drops it caused by reason, and the frames that left, per port.</summary>
internal sealed record Outcome(long[] Drops, List<byte[]>[] Out, long Received, long Transmitted)
{
    public int OutCount => Out.Sum(o => o.Count);

    public long TotalDrops => Drops.Sum();

    public string Describe() =>
        $"drops [{string.Join(", ", Drops.Select((n, r) => (n, r)).Where(x => x.n != 0).Select(x => $"{(DropReason)x.r}={x.n}"))}], " +
        $"out [{string.Join(", ", Out.Select((o, p) => $"{p}:{o.Count}"))}]";
}

/// <summary>
/// Sends one frame at a node and reports exactly what it caused, by the difference of the node's counters, so one
/// harness can take hundreds of hostile frames in a row. Every probe also checks that no buffer is left behind.
/// </summary>
internal static class HostileProbe
{
    /// <summary>Port 0 is the underlay; pod i is port i + 1.</summary>
    public static Outcome Send(NodeHarness h, int port, ReadOnlySpan<byte> frame)
    {
        var c = h.Node.Counters;
        var before = new long[DropReasons.Count];
        for (var r = 0; r < before.Length; r++) before[r] = c.Drops((DropReason)r);
        var rx = c[Counter.RxPackets];
        var tx = c[Counter.TxPackets];
        if (port == 0) h.InjectUnderlay(frame);
        else h.Inject(port - 1, frame);
        h.Node.Poll();
        var outs = new List<byte[]>[h.PodPorts.Length + 1];
        outs[0] = h.Drain(h.Underlay);
        for (var p = 0; p < h.PodPorts.Length; p++) outs[p + 1] = h.Drain(p);
        for (var r = 0; r < before.Length; r++) before[r] = c.Drops((DropReason)r) - before[r];
        Assert.True(h.Node.PendingArp.PendingPackets > 0 || h.Pool.InUse == 0, $"{h.Pool.InUse} buffers leaked");
        return new Outcome(before, outs, c[Counter.RxPackets] - rx, c[Counter.TxPackets] - tx);
    }

    /// <summary>The frame was received, dropped exactly once for <paramref name="reason"/>, and nothing left the node.</summary>
    public static void AssertDropped(NodeHarness h, int port, ReadOnlySpan<byte> frame, DropReason reason, string what = "")
    {
        var o = Send(h, port, frame);
        Assert.True(o.Received == 1 && o.TotalDrops == 1 && o.Drops[(int)reason] == 1 && o.OutCount == 0,
            $"{what}: expected one {reason} drop and nothing sent, got {o.Describe()}");
        Assert.Equal(0, h.Pool.InUse);
    }

    /// <summary>The frame came out exactly once, on <paramref name="outPort"/>, and nothing was dropped.</summary>
    public static byte[] AssertForwarded(NodeHarness h, int port, ReadOnlySpan<byte> frame, int outPort, string what = "")
    {
        var o = Send(h, port, frame);
        Assert.True(o.TotalDrops == 0 && o.OutCount == 1 && o.Out[outPort].Count == 1, $"{what}: expected one frame out on port {outPort}, got {o.Describe()}");
        Assert.Equal(0, h.Pool.InUse);
        return o.Out[outPort][0];
    }

    /// <summary>Good traffic on all three paths still flows after whatever came before (pods' MACs must be learned).</summary>
    public static void AssertGoodTrafficFlows(NodeHarness h)
    {
        AssertForwarded(h, 1, GoodIntra(), 2, "pod0 -> pod1 after hostile input");
        AssertForwarded(h, 1, GoodToPeer(), 0, "pod0 -> node2 after hostile input");
        AssertForwarded(h, 0, GoodFromPeer(), 2, "node2 -> pod1 after hostile input");
    }

    public static byte[] GoodIntra(int payload = 18) =>
        NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, NodeHarness.PodIp(1).Value, payload);

    public static byte[] GoodToPeer(int payload = 18) =>
        NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, NodeHarness.PeerB.Subnet.Address + 9, payload);

    public static byte[] GoodInnerFromPeer(int payload = 18) =>
        NodeHarness.UdpFrame(NodeHarness.PeerB.VtepMac, NodeHarness.VtepMac, NodeHarness.PeerB.Subnet.Address + 9, NodeHarness.PodIp(1).Value, payload);

    public static byte[] GoodFromPeer(int payload = 18) =>
        NodeHarness.VxlanFrame(NodeHarness.PeerB.PublicIp.Value, NodeHarness.PublicIp.Value, 1, GoodInnerFromPeer(payload));

    /// <summary>Recomputes the IPv4 header checksum at <paramref name="offset"/> (after a test edits the header on purpose).</summary>
    public static void FixIpChecksum(Span<byte> frame, int offset)
    {
        var ip = frame[offset..];
        var ihl = (ip[0] & 0xF) * 4;
        ip[10] = 0;
        ip[11] = 0;
        var sum = InternetChecksum.Compute(ip[..ihl]);
        ip[10] = (byte)(sum >> 8);
        ip[11] = (byte)sum;
    }
}
