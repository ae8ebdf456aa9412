using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

/// <summary>
/// First stage for frames from pod ports: L2 parse (one 802.1Q tag skipped), destination MAC check, IPv4 header
/// validation. Sets each packet's next stage to ARP input, IPv4 input or drop.
/// </summary>
internal sealed class EthernetInput(NodeContext ctx)
{
    public void Run(PacketBurst burst)
    {
        var pool = ctx.Pool;
        var gatewayMac = ctx.Node.GatewayMac;
        var tracer = ctx.Tracer;
        var bindings = ctx.Bindings;
        for (var i = 0; i < burst.Count; i++)
        {
            var h = burst.Handles[i];
            var frame = pool.Frame(h);
            int port = pool.Meta(h).InPort;
            tracer?.RecordFrame(ctx.Name, TraceEvent.Receive, h, port, frame);
            var next = NextStage.Ip4Input;
            var l3 = Ethernet.HeaderLength;
            if (!BitConverter.IsLittleEndian || !TryFastIpv4(pool, h, frame, gatewayMac, bindings, port, out var destination, out var reason))
                reason = Classify(pool, h, frame, gatewayMac, bindings, port, out destination, out next, out l3);
            if (reason != DropReason.None)
            {
                burst.SetDrop(i, reason);
                continue;
            }
            if (next == NextStage.ArpInput)
            {
                burst.Next[i] = NextStage.ArpInput;
                burst.L3Offset[i] = (ushort)l3;
                continue;
            }
            burst.Next[i] = NextStage.Ip4Input;
            burst.L3Offset[i] = Ethernet.HeaderLength;
            burst.Address[i] = destination;
        }
    }

    /// <summary>
    /// The common case with fixed offsets: an untagged IPv4 frame to the gateway with a 20-byte header. Returns
    /// false (and decides nothing) for anything else, which then takes <see cref="Classify"/>; where it returns
    /// true its verdict is the one <see cref="Classify"/> would give (a property test holds the two together).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool TryFastIpv4(PacketPool pool, int handle, Span<byte> frame, MacAddress gatewayMac, PortBindings bindings, int port, out uint destination, out DropReason reason)
    {
        destination = 0;
        reason = DropReason.None;
        if (frame.Length < Ethernet.HeaderLength + Ipv4Header.MinLength) return false;
        ref var p = ref MemoryMarshal.GetReference(frame);
        // Destination MAC (6 bytes), EtherType 0x0800 and version/IHL 0x45, read as stored (little-endian).
        if ((Unsafe.ReadUnaligned<ulong>(ref p) & 0xFFFF_FFFF_FFFF) != gatewayMac.WireBits ||
            Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, 12)) != 0x0008 ||
            Unsafe.Add(ref p, Ethernet.HeaderLength) != 0x45)
            return false;
        var totalLength = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, Ethernet.HeaderLength + Ipv4Header.OffsetTotalLength)));
        if (totalLength < Ipv4Header.MinLength || totalLength > frame.Length - Ethernet.HeaderLength) return false;
        if (!Ipv4Header.HeaderChecksumValid(frame[Ethernet.HeaderLength..], Ipv4Header.MinLength)) return false;
        var source = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, Ethernet.HeaderLength + Ipv4Header.OffsetSource)));
        var sourceMac = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, 6))) >> 16;
        if (!bindings.CheckIpv4(port, source, sourceMac))
        {
            reason = DropReason.SpoofedSource;
            return true;
        }
        destination = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, Ethernet.HeaderLength + Ipv4Header.OffsetDestination)));
        pool.Truncate(handle, Ethernet.HeaderLength + totalLength);
        return true;
    }

    /// <summary>
    /// Every frame from a pod port, the general way: L2 parse (one 802.1Q tag skipped), destination MAC check,
    /// ARP or IPv4, header validation, the port's source binding. For ARP, <paramref name="destination"/> is 0
    /// and <paramref name="l3"/> is where the ARP packet starts.
    /// </summary>
    internal static DropReason Classify(PacketPool pool, int handle, Span<byte> frame, MacAddress gatewayMac, PortBindings bindings, int port, out uint destination, out NextStage next, out int l3)
    {
        destination = 0;
        next = NextStage.Drop;
        var reason = Ethernet.Parse(frame, out var etherType, out l3);
        if (reason != DropReason.None) return reason;
        var dst = MacAddress.Read(frame);
        if (etherType == Ethernet.TypeArp)
        {
            // Requests are broadcast; replies to the gateway are unicast to its MAC.
            if (dst != gatewayMac && !dst.IsBroadcast) return DropReason.WrongDestinationMac;
            next = NextStage.ArpInput;
            return DropReason.None;
        }
        if (etherType != Ethernet.TypeIpv4) return DropReason.UnsupportedEtherType;
        if (dst != gatewayMac) return DropReason.WrongDestinationMac;
        reason = ClassifyIpv4(pool, handle, frame, l3, out destination);
        if (reason == DropReason.None && !bindings.CheckIpv4(port, Ipv4Header.Source(frame[l3..]), Ethernet.Source(frame).Value))
            reason = DropReason.SpoofedSource;
        next = NextStage.Ip4Input;
        return reason;
    }

    /// <summary>
    /// Validates the IPv4 header at <paramref name="l3"/> and normalises the frame so that the header sits right
    /// after a 14-byte Ethernet header: padding past the total length is cut and a VLAN tag is skipped (every
    /// later stage rewrites the L2 header whole, so the bytes before the IPv4 header are scratch from here on).
    /// </summary>
    internal static DropReason ClassifyIpv4(PacketPool pool, int handle, ReadOnlySpan<byte> frame, int l3, out uint destination)
    {
        destination = 0;
        var ip = frame[l3..];
        var reason = Ipv4Header.Validate(ip, out _, out var totalLength);
        if (reason != DropReason.None) return reason;
        destination = BinaryPrimitives.ReadUInt32BigEndian(ip[Ipv4Header.OffsetDestination..]);
        var extra = l3 - Ethernet.HeaderLength;
        if (extra > 0) pool.Strip(handle, extra);
        pool.Truncate(handle, Ethernet.HeaderLength + totalLength);
        return DropReason.None;
    }
}
