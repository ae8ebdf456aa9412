using System.Buffers.Binary;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline.Stages;

/// <summary>
/// What the node says itself in ICMP: echo replies for its own addresses (the gateway and the VTEP address,
/// as the kernel answers for cbr0 and flannel.1) and rate-limited errors (net unreachable, time exceeded,
/// fragmentation needed). Everything it builds re-enters the pipeline at IPv4 input, so a reply to a remote
/// pod is routed and encapsulated like any packet.
/// </summary>
internal sealed class IcmpResponder(NodeContext ctx)
{
    private const byte GeneratedTtl = 64;

    /// <summary>A packet addressed to the node: answer echo requests in their own buffer, drop the rest.</summary>
    public void DeliverLocal(PacketBurst burst, int i)
    {
        var h = burst.Handles[i];
        var frame = ctx.Pool.Frame(h);
        var ip = frame[Ethernet.HeaderLength..];
        var ihl = Ipv4Header.HeaderLength(ip);
        var icmp = ip[ihl..];
        if (Ipv4Header.Protocol(ip) != Ipv4Header.ProtocolIcmp || Ipv4Header.IsFragment(ip) || icmp.Length < Icmpv4.HeaderLength ||
            Icmpv4.Type(icmp) != Icmpv4.TypeEchoRequest || !Icmpv4.ChecksumValid(icmp))
        {
            burst.SetDrop(i, DropReason.LocalProtocolUnsupported);
            return;
        }
        Icmpv4.TurnEchoIntoReply(icmp);
        var requester = Ipv4Header.Source(ip);
        var local = Ipv4Header.Destination(ip);
        // Swapping the addresses leaves the header sum unchanged; the new TTL needs an incremental update.
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Header.OffsetSource..], local);
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Header.OffsetDestination..], requester);
        var oldWord = BinaryPrimitives.ReadUInt16BigEndian(ip[Ipv4Header.OffsetTtl..]);
        ip[Ipv4Header.OffsetTtl] = GeneratedTtl;
        var newWord = BinaryPrimitives.ReadUInt16BigEndian(ip[Ipv4Header.OffsetTtl..]);
        var checksum = Ipv4Header.Checksum(ip);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Header.OffsetChecksum..], InternetChecksum.Update(checksum, oldWord, newWord));
        ref var meta = ref ctx.Pool.Meta(h);
        meta.Flags |= PacketFlags.Generated;
        ctx.Tally.Add(Counter.IcmpEchoReplies);
        ctx.Tracer?.Record(ctx.Name, TraceEvent.IcmpEchoReply, h, meta.InPort, local, requester);
        burst.Next[i] = NextStage.Consumed;
        ctx.Reenter(h, NextStage.Ip4Input, requester);
    }

    /// <summary>
    /// Sends an ICMP error about the packet in <paramref name="original"/> (which the caller still owns and will
    /// drop). Never about an ICMP error, a non-first fragment, or a packet from a source that cannot answer
    /// (RFC 1122 s3.2.2), and never above the rate limit.
    /// </summary>
    public void SendError(int original, byte type, byte code, uint restOfHeader)
    {
        var ip = ctx.Pool.Frame(original)[Ethernet.HeaderLength..];
        var source = Ipv4Header.Source(ip);
        if (!Ipv4Header.HasL4Header(ip) || Ipv4Header.IsMartianSource(source) || IsIcmpError(ip)) return;
        if ((ctx.Pool.Meta(original).Flags & PacketFlags.Generated) != 0) return;
        if (!ctx.Icmp.TryTake(ctx.Now))
        {
            ctx.Tally.Add(Counter.IcmpErrorsSuppressed);
            return;
        }
        var h = ctx.Pool.Allocate();
        if (h < 0)
        {
            ctx.Tally.Drop(DropReason.PoolExhausted);
            return;
        }
        var frame = ctx.Pool.WritableFrame(h);
        var icmpLength = Icmpv4.WriteError(frame[(Ethernet.HeaderLength + Ipv4Header.MinLength)..], type, code, restOfHeader, ip);
        var total = (ushort)(Ipv4Header.MinLength + icmpLength);
        Ipv4Header.Write(frame[Ethernet.HeaderLength..], total, 0, 0, GeneratedTtl, Ipv4Header.ProtocolIcmp, ctx.Node.GatewayIp, source);
        ctx.Pool.SetLength(h, Ethernet.HeaderLength + total);
        ref var meta = ref ctx.Pool.Meta(h);
        meta.Flags = PacketFlags.Generated;
        meta.InPort = ctx.Pool.Meta(original).InPort;
        ctx.Tally.Add(Counter.IcmpErrorsSent);
        ctx.Tracer?.Record(ctx.Name, TraceEvent.IcmpError, h, meta.InPort, source, type, code);
        ctx.Reenter(h, NextStage.Ip4Input, source);
    }

    private static bool IsIcmpError(ReadOnlySpan<byte> ip)
    {
        if (Ipv4Header.Protocol(ip) != Ipv4Header.ProtocolIcmp) return false;
        var ihl = Ipv4Header.HeaderLength(ip);
        if (ip.Length <= ihl) return true;
        var type = ip[ihl];
        return type is not (Icmpv4.TypeEchoRequest or Icmpv4.TypeEchoReply or 13 or 14);
    }
}
