using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using FastOverlay.Offload;
using FastOverlay.Pipeline;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;

namespace FastOverlay.Ports;

/// <summary>
/// Receive: frames from the ring are copied into pool buffers. With the vnet header on, each carries the pod's
/// offload state: a NEEDS_CSUM frame keeps its partial checksum (flagged, finished only if it leaves for the
/// underlay), and a TSO/USO super-frame is cut into MTU-sized segments here, each its own packet, so every stage
/// behind the port sees ordinary frames. A super-frame too big for its 2 KiB ring slot is read whole from the
/// socket queue, where PACKET_COPY_THRESH put a copy.
/// </summary>
public sealed unsafe partial class AfPacketPort
{
    private const byte PacketOutgoing = 4;
    /// <summary>GSO_MAX_SIZE (64 KiB) plus headers and the vnet header, rounded up: the largest frame a veth passes.</summary>
    private const int ScratchSize = 72 * 1024;

    public int Receive(Span<int> handles)
    {
        if (_fd < 0) return 0;
        var pool = _pool;
        var v2 = _ringV2;
        var v3 = _ringV3;
        var n = 0;
        long bytes = 0;
        long tooLong = 0;
        long superFrames = 0;
        long segments = 0;
        while (n < handles.Length)
        {
            // One predictable branch per frame rather than an interface call: the port's ring never changes.
            RxFrame f;
            if (!(v2 is not null ? v2.TryPeek(out f) : v3!.TryPeek(out f))) break;
            if (_filterOutgoing && f.PacketType == PacketOutgoing)
            {
                Advance(v2, v3);
                continue;
            }
            var snap = f.Snap;
            // The kernel never hands over an Ethernet frame shorter than its header (eth_type_trans pulls 14 bytes).
            var vlan = (f.Status & Linux.TpStatusVlanValid) != 0 && snap >= Ethernet.HeaderLength;
            if (_vnet)
            {
                var header = *(VirtioNetHeader*)(f.Mac - VirtioNetHeader.Length);
                if (header.GsoKind != VirtioNetHeader.GsoNone || (f.Status & Linux.TpStatusCopy) != 0)
                {
                    // Room for every segment first: a super-frame is taken whole or left in the ring for the next poll.
                    var need = header.GsoSize == 0 ? 1 : (int)(f.Length / header.GsoSize) + 1;
                    if (need > handles.Length - n && n > 0) break;
                    if (need > pool.Available)
                    {
                        Counters.RxNoBufferOnce();
                        break;
                    }
                    var made = ReceiveLarge(f, header, vlan, handles[n..]);
                    if (made > 0)
                    {
                        for (var i = 0; i < made; i++) bytes += pool.Meta(handles[n + i]).Length;
                        if (made > 1 || header.GsoKind != VirtioNetHeader.GsoNone)
                        {
                            superFrames++;
                            segments += made;
                        }
                        n += made;
                    }
                    Advance(v2, v3);
                    continue;
                }
            }
            var length = vlan ? snap + Ethernet.VlanTagLength : snap;
            // A snapshot shorter than the wire length means the frame did not fit its ring slot; a frame longer
            // than a buffer cannot be forwarded either.
            if (snap < f.Length || length > PacketPool.MaxFrameLength)
            {
                if (snap < f.Length) Counters.AddDrop(DropReason.RxTruncated);
                else tooLong++;
                Advance(v2, v3);
                continue;
            }
            var h = pool.Allocate();
            if (h < 0)
            {
                // Leave the frame in the ring: it is still there on the next poll, when buffers are back.
                Counters.RxNoBufferOnce();
                break;
            }
            var source = new ReadOnlySpan<byte>(f.Mac, snap);
            var frame = pool.WritableFrame(h)[..length];
            if (vlan) CopyWithVlanTag(source, frame, f);
            else source.CopyTo(frame);
            pool.SetLength(h, length);
            if ((f.Status & Linux.TpStatusCsumNotReady) != 0)
            {
                if (_vnet) MarkPartial(pool, h, *(VirtioNetHeader*)(f.Mac - VirtioNetHeader.Length), vlan);
                else L4Checksum.Complete(frame);
            }
            handles[n++] = h;
            bytes += length;
            Advance(v2, v3);
        }
        Counters.AddReceive(n, bytes, tooLong);
        Counters.AddSegmentation(superFrames, segments);
        return n;
    }

    /// <summary>
    /// A frame that is a GSO super-frame, or did not fit its slot (TP_STATUS_COPY: the whole skb waits on the
    /// socket queue, in ring order). Returns the packets it became; 0 if it was dropped (counted).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ReceiveLarge(in RxFrame f, VirtioNetHeader header, bool vlan, Span<int> handles)
    {
        var data = f.Mac;
        var length = f.Snap;
        if ((f.Status & Linux.TpStatusCopy) != 0)
        {
            var batch = _scratchBatch!;
            batch.Set(0, _scratch, ScratchSize);
            var got = LibC.RecvMmsg(_fd, batch.Messages, 1, Linux.MsgDontWait, null);
            if (got != 1)
            {
                Counters.RxError(Errno.Last);
                Counters.AddDrop(DropReason.RxTruncated);
                return 0;
            }
            if ((batch.ReceivedFlags(0) & Linux.MsgTrunc) != 0 || batch.ReceivedLength(0) < VirtioNetHeader.Length)
            {
                Counters.AddDrop(DropReason.RxTruncated);
                return 0;
            }
            header = *(VirtioNetHeader*)_scratch;
            data = _scratch + VirtioNetHeader.Length;
            length = batch.ReceivedLength(0) - VirtioNetHeader.Length;
        }
        else if (f.Snap < f.Length)
        {
            // Truncated in the ring with no copy queued: the socket buffer was full, or V3's block was too small.
            Counters.AddDrop(DropReason.RxTruncated);
            return 0;
        }
        // A tag the driver moved into metadata would have to go back into every segment; pod veths never do it.
        if (vlan)
        {
            Counters.AddDrop(DropReason.GsoUnsupported);
            return 0;
        }
        var frame = new ReadOnlySpan<byte>(data, length);
        var pool = _pool;
        if (header.GsoKind == VirtioNetHeader.GsoNone)
        {
            // Not GSO, only bigger than a slot: a jumbo frame, forwarded if a buffer holds it.
            if (length > PacketPool.MaxFrameLength)
            {
                Counters.AddReceive(0, 0, 1);
                return 0;
            }
            var h = pool.Allocate();
            frame.CopyTo(pool.WritableFrame(h));
            pool.SetLength(h, length);
            if (header.NeedsChecksum) MarkPartial(pool, h, header, vlan: false);
            handles[0] = h;
            return 1;
        }
        var reason = GsoSegmenter.Plan(frame, header, PacketPool.MaxFrameLength, out var layout);
        if (reason == DropReason.None && layout.Segments > handles.Length) reason = DropReason.GsoMalformed;
        if (reason != DropReason.None)
        {
            Counters.AddDrop(reason);
            return 0;
        }
        var count = layout.Segments;
        for (var i = 0; i < count; i++)
        {
            var h = pool.Allocate();
            var written = GsoSegmenter.WriteSegment(frame, layout, i, pool.WritableFrame(h), completeChecksum: false);
            pool.SetLength(h, written);
            pool.Meta(h).Flags = PacketFlags.ChecksumPartial;
            handles[i] = h;
        }
        return count;
    }

    /// <summary>
    /// A NEEDS_CSUM frame that is plain IPv4 TCP/UDP with csum_start at its L4 header keeps its partial checksum,
    /// flagged, so it is finished only if it leaves for the underlay. Anything else (another protocol's offset,
    /// a VLAN tag in front) is finished now, at csum_start/csum_offset, as skb_checksum_help would.
    /// </summary>
    internal static void MarkPartial(PacketPool pool, int h, in VirtioNetHeader header, bool vlan)
    {
        var frame = pool.Frame(h);
        if (!vlan && L4Checksum.TryLocate(frame, out var l4Offset, out _, out var protocol, out _) &&
            header.ChecksumStart == l4Offset && header.ChecksumOffset == L4Checksum.FieldOffset(protocol))
        {
            pool.Meta(h).Flags |= PacketFlags.ChecksumPartial;
            return;
        }
        int start = header.ChecksumStart + (vlan ? Ethernet.VlanTagLength : 0);
        int field = start + header.ChecksumOffset;
        if (field + 2 > frame.Length) return;
        BinaryPrimitives.WriteUInt16BigEndian(frame[field..], InternetChecksum.Compute(frame[start..]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Advance(TpacketV2Ring? v2, TpacketV3Ring? v3)
    {
        if (v2 is not null) v2.Advance();
        else v3!.Advance();
    }

    /// <summary>
    /// A VLAN tag the driver took off into skb metadata (tp_vlan_tci) goes back in front of the EtherType, so the
    /// pipeline sees the frame as it was on the wire.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void CopyWithVlanTag(ReadOnlySpan<byte> source, Span<byte> frame, in RxFrame f)
    {
        source[..12].CopyTo(frame);
        var tpid = (f.Status & Linux.TpStatusVlanTpidValid) != 0 ? f.VlanTpid : Ethernet.TypeVlan;
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], tpid);
        BinaryPrimitives.WriteUInt16BigEndian(frame[14..], f.VlanTci);
        source[12..].CopyTo(frame[16..]);
    }
}
