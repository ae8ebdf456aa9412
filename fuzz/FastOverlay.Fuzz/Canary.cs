using System.Buffers.Binary;

namespace FastOverlay.Fuzz;

/// <summary>
/// Three good frames, one per path (pod to pod, pod to peer, peer to pod), built here byte by byte rather than
/// with the project's writers. Each must come out exactly once, on the right port, with the right bytes.
/// </summary>
internal sealed class Canary(FuzzNode node)
{
    private readonly byte[] _intra = Udp(FuzzNode.PodMac(0).Value, FuzzNode.Options.GatewayMac.Value, FuzzNode.PodIp(0), FuzzNode.PodIp(1));
    private readonly byte[] _toPeer = Udp(FuzzNode.PodMac(0).Value, FuzzNode.Options.GatewayMac.Value, FuzzNode.PodIp(0), FuzzNode.Ip("10.244.2.9"));
    private readonly byte[] _fromPeer = Vxlan(FuzzNode.Peers[0].PublicIp.Value, FuzzNode.Options.PublicIp.Value, 8472, 1,
        Udp(FuzzNode.Peers[0].VtepMac.Value, FuzzNode.Options.VtepMac.Value, FuzzNode.Ip("10.244.2.9"), FuzzNode.PodIp(1)));

    public void Run()
    {
        node.Inject(1, _intra);
        var delivered = Single(node.PollAndCollect(), 2, "pod0 -> pod1");
        ExpectForwarded(delivered, _intra.AsSpan(14), FuzzNode.PodMac(1).Value, "pod0 -> pod1");

        node.Inject(1, _toPeer);
        var encapsulated = Single(node.PollAndCollect(), 0, "pod0 -> node2");
        var inner = Oracle.VxlanInner(encapsulated, FuzzNode.Peers[0].PublicIp.Value, 8472, 1, out var source);
        if (inner.IsEmpty || source != FuzzNode.Options.PublicIp.Value) throw new InvariantViolation("canary pod0 -> node2: not valid VXLAN from this node");
        if (Oracle.Mac(inner) != FuzzNode.Peers[0].VtepMac.Value) throw new InvariantViolation("canary pod0 -> node2: inner MAC is not the peer's VTEP");
        ExpectSameDatagram(inner[14..], _toPeer.AsSpan(14), "pod0 -> node2");

        node.Inject(0, _fromPeer);
        var decapsulated = Single(node.PollAndCollect(), 2, "node2 -> pod1");
        ExpectForwarded(decapsulated, _fromPeer.AsSpan(50 + 14), FuzzNode.PodMac(1).Value, "node2 -> pod1");
    }

    private static byte[] Single(List<Emitted> emitted, int port, string what)
    {
        if (emitted.Count != 1 || emitted[0].Port != port)
            throw new InvariantViolation($"canary {what}: expected one frame on port {port}, got {emitted.Count}{(emitted.Count > 0 ? $" (first on port {emitted[0].Port})" : "")}");
        return emitted[0].Frame;
    }

    private static void ExpectForwarded(byte[] frame, ReadOnlySpan<byte> sentIp, ulong dstMac, string what)
    {
        if (Oracle.Mac(frame) != dstMac || Oracle.Mac(frame.AsSpan(6)) != FuzzNode.Options.GatewayMac.Value)
            throw new InvariantViolation($"canary {what}: wrong MACs");
        ExpectSameDatagram(frame.AsSpan(14), sentIp, what);
    }

    /// <summary>The same datagram with the TTL one lower and a checksum that is right again.</summary>
    public static void ExpectSameDatagram(ReadOnlySpan<byte> got, ReadOnlySpan<byte> sent, string what)
    {
        var sentIp = Oracle.Ipv4(sent);
        if (Oracle.Ipv4(got).Length != sentIp.Length || got.Length != sentIp.Length) throw new InvariantViolation($"{what}: datagram invalid or of the wrong length");
        if (got[8] != sentIp[8] - 1) throw new InvariantViolation($"{what}: TTL {got[8]}, sent {sentIp[8]}");
        if (!got[..8].SequenceEqual(sentIp[..8]) || got[9] != sentIp[9] || !got[12..].SequenceEqual(sentIp[12..]))
            throw new InvariantViolation($"{what}: datagram bytes changed in flight");
    }

    public static byte[] Udp(ulong srcMac, ulong dstMac, uint srcIp, uint dstIp, int payload = 18)
    {
        var frame = new byte[Math.Max(60, 14 + 20 + 8 + payload)];
        WriteMac(frame, dstMac);
        WriteMac(frame.AsSpan(6), srcMac);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), Oracle.TypeIpv4);
        var ip = frame.AsSpan(14, 20 + 8 + payload);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)ip.Length);
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], 0x4000);
        ip[8] = 64;
        ip[9] = 17;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], srcIp);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], dstIp);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], (ushort)~Oracle.OnesSum(ip[..20]));
        var udp = ip[20..];
        BinaryPrimitives.WriteUInt16BigEndian(udp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], 5201);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)udp.Length);
        udp[8..].Fill(0x78);
        return frame;
    }

    public static byte[] Vxlan(uint outerSrc, uint outerDst, ushort port, uint vni, ReadOnlySpan<byte> inner)
    {
        var frame = new byte[50 + inner.Length];
        var span = frame.AsSpan();
        WriteMac(span, FuzzNode.Options.UnderlayMac.Value);
        WriteMac(span[6..], FuzzNode.Peers[0].UnderlayMac.Value);
        BinaryPrimitives.WriteUInt16BigEndian(span[12..], Oracle.TypeIpv4);
        var ip = span.Slice(14, 36 + inner.Length);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)ip.Length);
        ip[8] = 64;
        ip[9] = 17;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], outerSrc);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], outerDst);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], (ushort)~Oracle.OnesSum(ip[..20]));
        var udp = ip[20..];
        BinaryPrimitives.WriteUInt16BigEndian(udp, 51000);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], port);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)udp.Length);
        udp[8] = 0x08;
        BinaryPrimitives.WriteUInt32BigEndian(udp[12..], vni << 8);
        inner.CopyTo(udp[16..]);
        return frame;
    }

    private static void WriteMac(Span<byte> b, ulong mac)
    {
        BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)(mac >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(b[2..], (uint)mac);
    }
}
