using System.Buffers.Binary;
using FastOverlay.Offload;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

/// <summary>
/// First stage for frames from the underlay: accept only VXLAN for this node (outer destination = our public IP,
/// UDP to our port, I flag, our VNI) from a known peer, strip the outer 50 bytes (more with outer IPv4 options)
/// and validate the inner frame as <see cref="EthernetInput"/> does for pod frames. The inner frame must be
/// addressed to our VTEP MAC, as the kernel's flannel.1 only takes frames for its own MAC.
/// </summary>
internal sealed class VxlanDecap(NodeContext ctx)
{
    public void Run(PacketBurst burst)
    {
        var pool = ctx.Pool;
        var node = ctx.Node;
        var peers = ctx.State.Peers;
        var tracer = ctx.Tracer;
        for (var i = 0; i < burst.Count; i++)
        {
            var h = burst.Handles[i];
            var frame = pool.Frame(h);
            tracer?.RecordFrame(ctx.Name, TraceEvent.Receive, h, 0, frame);
            var reason = Decapsulate(node, frame, out var outerLength, out var innerLength, out var source, out var vni);
            var peer = reason == DropReason.None ? peers.FindByPublicIp(source) : -1;
            if (reason == DropReason.None && peer < 0) reason = DropReason.UnknownPeer;
            if (reason != DropReason.None)
            {
                burst.SetDrop(i, reason);
                continue;
            }
            pool.Strip(h, outerLength);
            pool.Truncate(h, innerLength);
            pool.Meta(h).Flags |= PacketFlags.Decapsulated;
            ctx.Tally.Add(Counter.Decapsulated);
            tracer?.Record(ctx.Name, TraceEvent.Decapsulated, h, 0, source, node.PublicIp.Value, vni);

            var inner = pool.Frame(h);
            reason = Ethernet.Parse(inner, out var etherType, out var l3);
            if (reason == DropReason.None && etherType != Ethernet.TypeIpv4) reason = DropReason.UnsupportedEtherType;
            if (reason == DropReason.None && MacAddress.Read(inner) != node.VtepMac) reason = DropReason.InnerDstMacNotVtep;
            uint destination = 0;
            if (reason == DropReason.None) reason = EthernetInput.ClassifyIpv4(pool, h, inner, l3, out destination);
            // Plain VXLAN has no authentication: accept only inner sources the sending peer's lease covers, so
            // a peer (or anyone spoofing its public IP) cannot inject traffic as a pod of another node.
            if (reason == DropReason.None && !peers[peer].Subnet.Contains(Ipv4Header.Source(pool.Frame(h)[Ethernet.HeaderLength..])))
                reason = DropReason.SpoofedSource;
            if (reason == DropReason.None) reason = VerifyInnerChecksum(pool, h);
            if (reason != DropReason.None)
            {
                burst.SetDrop(i, reason);
                continue;
            }
            burst.Next[i] = NextStage.Ip4Input;
            burst.L3Offset[i] = Ethernet.HeaderLength;
            burst.Address[i] = destination;
            // Templates are built in the peer table's order: the peer's index is its template's.
            ctx.State.Templates[peer].Counters.AddRx(pool.Meta(h).Length);
        }
    }

    /// <summary>
    /// Every inner TCP/UDP checksum is checked once here, so a pod receives only checksums its kernel accepts and
    /// verified segments may be merged into a NEEDS_CSUM super-frame that the pod will not check again. A kernel
    /// VXLAN peer on a veth or virtio underlay sends the inner checksum partial (the skb stays CHECKSUM_PARTIAL up
    /// to our UDP socket): it is recognised (the field equals the pseudo-header sum) and finished, as the NIC
    /// would have. Integrity of those bytes then rests on the outer UDP checksum, which the kernel verified.
    /// </summary>
    private DropReason VerifyInnerChecksum(PacketPool pool, int h)
    {
        // ClassifyIpv4 validated the header, moved it to offset 14 (a VLAN tag is stripped) and trimmed the frame.
        switch (L4Checksum.VerifyValidated(pool.Frame(h)[Ethernet.HeaderLength..]))
        {
            case L4ChecksumVerdict.Valid:
                pool.Meta(h).Flags |= PacketFlags.ChecksumVerified;
                return DropReason.None;
            case L4ChecksumVerdict.Completed:
                pool.Meta(h).Flags |= PacketFlags.ChecksumVerified;
                ctx.Tally.Add(Counter.InnerChecksumsCompleted);
                return DropReason.None;
            case L4ChecksumVerdict.Bad:
                return DropReason.L4ChecksumBad;
            default:
                return DropReason.None;
        }
    }

    /// <summary>
    /// Checks the outer headers; returns the number of bytes in front of the inner frame and the inner frame's
    /// length. The inner frame ends where the UDP datagram ends (RFC 768 length): bytes after it, whether outer
    /// Ethernet padding or a forged UDP length shorter than the packet, are not part of the tunnel payload.
    /// </summary>
    internal static DropReason Decapsulate(NodeOptions node, ReadOnlySpan<byte> frame, out int outerLength, out int innerLength, out uint source, out uint vni)
    {
        outerLength = 0;
        innerLength = 0;
        source = 0;
        vni = 0;
        var reason = Ethernet.Parse(frame, out var etherType, out var l3);
        if (reason != DropReason.None) return reason;
        if (etherType != Ethernet.TypeIpv4) return DropReason.NotVxlan;
        var ip = frame[l3..];
        reason = Ipv4Header.Validate(ip, out var ihl, out var totalLength);
        if (reason != DropReason.None) return reason;
        ip = ip[..totalLength];
        if (Ipv4Header.Destination(ip) != node.PublicIp.Value || Ipv4Header.Protocol(ip) != Ipv4Header.ProtocolUdp) return DropReason.NotVxlan;
        if (Ipv4Header.IsFragment(ip)) return DropReason.VxlanFragment;
        var udp = ip[ihl..];
        reason = UdpHeader.Validate(udp);
        if (reason != DropReason.None) return reason;
        if (UdpHeader.DestinationPort(udp) != node.VxlanPort) return DropReason.NotVxlan;
        udp = udp[..UdpHeader.DatagramLength(udp)];
        source = Ipv4Header.Source(ip);
        // RFC 7348 s5: a zero checksum is accepted; a non-zero one that fails verification MUST be dropped.
        if (BinaryPrimitives.ReadUInt16BigEndian(udp[6..]) != 0 && !UdpHeader.ChecksumAcceptable(source, Ipv4Header.Destination(ip), udp))
            return DropReason.UdpMalformed;
        reason = VxlanHeader.Parse(udp[UdpHeader.Length..], out vni);
        if (reason != DropReason.None) return reason;
        if (vni != node.Vni) return DropReason.UnknownVni;
        outerLength = l3 + ihl + UdpHeader.Length + VxlanHeader.Length;
        innerLength = udp.Length - UdpHeader.Length - VxlanHeader.Length;
        if (innerLength < Ethernet.HeaderLength) return DropReason.FrameTooShort;
        return DropReason.None;
    }
}
