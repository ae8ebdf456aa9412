using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using FastOverlay.Offload;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

/// <summary>
/// VXLAN encapsulation toward a peer (RFC 7348 s5): TTL decrement, inner Ethernet from the local VTEP MAC to the
/// peer's VTEP MAC (what flannel's permanent neighbour entry makes the kernel write), then the 50-byte outer
/// header from the peer's template stepped into the buffer's headroom, so the inner frame is never moved.
/// Packets that would not fit the underlay are never fragmented (RFC 7348 s4.3): dropped, with an ICMP
/// "fragmentation needed" carrying the inner MTU when DF is set so that path MTU discovery works.
/// </summary>
internal sealed class VxlanEncap(NodeContext ctx, IcmpResponder icmp)
{
    public void Run(PacketBurst burst)
    {
        var pool = ctx.Pool;
        var node = ctx.Node;
        var templates = ctx.State.Templates;
        var innerMtu = node.InnerMtu;
        var udpChecksum = node.UdpChecksum;
        var portMin = node.SourcePortMin;
        var portSpan = (uint)(node.SourcePortMax - node.SourcePortMin + 1);
        var tracer = ctx.Tracer;
        for (var i = 0; i < burst.Count; i++)
        {
            if (burst.Next[i] != NextStage.VxlanEncap) continue;
            var h = burst.Handles[i];
            var frame = pool.Frame(h);
            var ip = frame[Ethernet.HeaderLength..];
            if (ip.Length > innerMtu)
            {
                if (Ipv4Header.DontFragment(ip))
                    icmp.SendError(h, Icmpv4.TypeDestinationUnreachable, Icmpv4.CodeFragmentationNeeded, (uint)innerMtu);
                burst.SetDrop(i, DropReason.TooBigForUnderlay);
                continue;
            }
            var template = templates[burst.Value[i]];
            ref var meta = ref pool.Meta(h);
            if ((meta.Flags & PacketFlags.ChecksumPartial) != 0)
            {
                // The pod left its TCP/UDP checksum to hardware; on the wire every inner frame carries a complete
                // one, as a NIC's checksum offload would have written (flannel's peers verify it).
                L4Checksum.Complete(frame);
                meta.Flags &= ~PacketFlags.ChecksumPartial;
                ctx.Tally.Add(Counter.ChecksumsCompleted);
            }
            if ((meta.Flags & PacketFlags.Generated) == 0) Ipv4Header.DecrementTtl(ip);
            var sourcePort = (ushort)(portMin + (ushort)(((ulong)FlowHash(ip) * portSpan) >> 32));
            if (!pool.Prepend(h, EncapTemplate.Length))
            {
                burst.SetDrop(i, DropReason.FrameTooLong);
                continue;
            }
            var outer = pool.Frame(h);
            WriteOuter(outer, template, sourcePort);
            if (udpChecksum)
            {
                var udp = outer[EncapTemplate.OffsetUdp..];
                BinaryPrimitives.WriteUInt16BigEndian(udp[6..], UdpHeader.ComputeChecksum(node.PublicIp.Value, template.Peer.PublicIp.Value, udp));
            }
            burst.Next[i] = NextStage.Transmit;
            burst.OutPort[i] = ForwardingState.UnderlayPort;
            ctx.Tally.Add(Counter.Encapsulated);
            template.Counters.AddTx(outer.Length);
            tracer?.Record(ctx.Name, TraceEvent.Encapsulated, h, 0, node.PublicIp.Value, template.Peer.PublicIp.Value, ((uint)sourcePort << 16) | node.VxlanPort, node.Vni);
        }
    }

    /// <summary>
    /// Writes the template's 64 bytes (outer headers and the inner Ethernet header) with two 32-byte vector
    /// stores, then patches the four per-packet fields. The IPv4 checksum is the template's partial sum plus the
    /// total length, never a re-read of the stored header.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void WriteOuter(Span<byte> outer, EncapTemplate template, ushort sourcePort)
    {
        if (outer.Length < EncapTemplate.LengthWithInnerEthernet) ThrowFrameTooShort();
        ref var dst = ref MemoryMarshal.GetReference(outer);
        ref var src = ref MemoryMarshal.GetArrayDataReference(template.Bytes);
        Vector256.LoadUnsafe(ref src).StoreUnsafe(ref dst);
        Vector256.LoadUnsafe(ref src, 32).StoreUnsafe(ref dst, 32);
        var totalLength = (ushort)(outer.Length - Ethernet.HeaderLength);
        var udpLength = (ushort)(totalLength - Ipv4Header.MinLength);
        WriteBigEndian(ref dst, EncapTemplate.OffsetIp + Ipv4Header.OffsetTotalLength, totalLength);
        WriteBigEndian(ref dst, EncapTemplate.OffsetIp + Ipv4Header.OffsetChecksum, template.IpChecksum(totalLength));
        WriteBigEndian(ref dst, EncapTemplate.OffsetUdp, sourcePort);
        WriteBigEndian(ref dst, EncapTemplate.OffsetUdp + 4, udpLength);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteBigEndian(ref byte frame, int offset, ushort value) =>
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref frame, offset), BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(value) : value);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowFrameTooShort() => throw new ArgumentException("an encapsulated frame holds at least the 64-byte template");

    /// <summary>
    /// Hash of the inner flow for the outer source port (RFC 7348 s5), so ECMP and RSS on the underlay spread
    /// flows over paths and cores (flannel #765). Addresses, protocol and, when present, the L4 ports: the same
    /// inputs as the kernel's flow dissector for UDP/TCP. CRC32C is a single instruction on x86 and ARM.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint FlowHash(ReadOnlySpan<byte> ip)
    {
        // The caller validated the header (20 bytes at least, IHL within the packet).
        ref var p = ref MemoryMarshal.GetReference(ip);
        var addresses = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, Ipv4Header.OffsetSource));
        var protocol = Unsafe.Add(ref p, Ipv4Header.OffsetProtocol);
        var ihl = (p & 0x0F) * 4;
        uint ports = 0;
        // Ports only for TCP/UDP datagrams that are whole (neither MF nor an offset): the kernel's flow dissector
        // stops before the ports of any fragment, the first included (no FLOW_DISSECTOR_F_PARSE_1ST_FRAG in
        // skb_get_hash), so every fragment of a datagram gets one outer source port and reaches one worker on the
        // receiving node, where the Service path matches later fragments to their first (FragmentTable).
        if ((protocol == Ipv4Header.ProtocolUdp || protocol == Ipv4Header.ProtocolTcp) &&
            (Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, Ipv4Header.OffsetFlagsFragment)) & (BitConverter.IsLittleEndian ? 0xFF3F : 0x3FFF)) == 0 &&
            ip.Length >= ihl + 4)
            ports = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, ihl));
        var h = BitOperations.Crc32C(0x5bd1e995u, addresses);
        h = BitOperations.Crc32C(h, ports ^ ((uint)protocol << 24));
        // CRC is linear; a final multiply spreads its low bits into the high bits the range mapping uses.
        return h * 0x9E3779B1u;
    }
}
