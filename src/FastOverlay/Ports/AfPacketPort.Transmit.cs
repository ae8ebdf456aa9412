using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastOverlay.Offload;
using FastOverlay.Pipeline;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;

namespace FastOverlay.Ports;

/// <summary>
/// Transmit: one sendmmsg per burst. With the vnet header on, every message starts with a virtio_net_hdr, and
/// consecutive TCP segments of one flow whose checksums are known good (verified on decap, or partial from a
/// pod) go out as one super-frame: the head segment's headers rewritten for the whole, then the other segments'
/// payloads gathered by iovec, no copy. A lone partial frame goes with NEEDS_CSUM; everything else with an
/// all-zero header (GSO_NONE, checksum complete).
/// </summary>
public sealed unsafe partial class AfPacketPort
{
    private const PacketFlags KnownGood = PacketFlags.ChecksumPartial | PacketFlags.ChecksumVerified;

    public int Transmit(ReadOnlySpan<int> handles)
    {
        if (_fd < 0) return 0;
        if (!_vnet) return TransmitPlain(handles);
        var pool = _pool;
        var batch = _tx;
        var accepted = 0;
        long bytes = 0;
        long merged = 0;
        long mergedSegments = 0;
        while (accepted < handles.Length)
        {
            var messages = 0;
            var next = accepted;
            while (messages < batch.Capacity && next < handles.Length)
            {
                var taken = Build(messages, handles, next);
                _txFirst[messages] = next;
                _txCount[messages] = taken;
                next += taken;
                messages++;
            }
            var sent = LibC.SendMmsg(_fd, batch.Messages, (uint)messages, Linux.MsgDontWait);
            var done = sent > 0 ? sent : 0;
            for (var m = 0; m < done; m++)
            {
                var count = _txCount[m];
                if (count > 1)
                {
                    merged++;
                    mergedSegments += count;
                }
                for (var i = 0; i < count; i++)
                {
                    var h = handles[_txFirst[m] + i];
                    bytes += pool.Meta(h).Length;
                    pool.Free(h);
                }
                accepted += count;
            }
            // A short count means message `done` failed; errno is only set when none went out, so the retry that
            // starts at it (the loop rebuilds from `accepted`) reports why.
            if (sent > 0) continue;
            if (!SendFailed(handles, ref accepted, _txCount[0], 0)) break;
        }
        Counters.AddTransmit(accepted, bytes);
        Counters.AddCoalescing(merged, mergedSegments);
        return accepted;
    }

    /// <summary>Lays out message <paramref name="m"/> from handles[<paramref name="first"/>..]; returns how many handles it took.</summary>
    private int Build(int m, ReadOnlySpan<int> handles, int first)
    {
        var pool = _pool;
        var batch = _tx;
        var head = handles[first];
        var frame = pool.Frame(head);
        var flags = pool.Meta(head).Flags;
        ref var header = ref _headers[m];
        header = default;
        batch.SetIovec(m, 0, (byte*)Unsafe.AsPointer(ref header), VirtioNetHeader.Length);
        batch.SetIovec(m, 1, Pointer(frame), frame.Length);
        _txHeadTotal[m] = 0;
        var taken = 1;
        if (_coalesce && (flags & KnownGood) != 0 && TcpCoalescer.TryStart(frame, out var run))
        {
            while (first + taken < handles.Length)
            {
                var h = handles[first + taken];
                if ((pool.Meta(h).Flags & KnownGood) == 0) break;
                var segment = pool.Frame(h);
                if (!TcpCoalescer.TryAppend(ref run, frame, segment, out var payload)) break;
                // By the IPv4 length, not the frame's: Ethernet padding after a short segment is not payload.
                batch.SetIovec(m, 1 + taken, Pointer(segment) + run.HeaderLength, payload);
                taken++;
            }
            if (taken > 1)
            {
                batch.SetIovec(m, 1, Pointer(frame), run.HeaderLength + run.SegmentSize);
                _txHeadTotal[m] = (ushort)(run.HeaderLength - Ethernet.HeaderLength + run.SegmentSize);
                header = TcpCoalescer.FinishHead(frame, run);
            }
        }
        if (taken == 1 && (flags & PacketFlags.ChecksumPartial) != 0 && L4Checksum.TryLocate(frame, out var l4Offset, out _, out var protocol, out _))
        {
            header.Flags = VirtioNetHeader.FlagNeedsChecksum;
            header.ChecksumStart = (ushort)l4Offset;
            header.ChecksumOffset = (ushort)L4Checksum.FieldOffset(protocol);
        }
        batch.SetIovecCount(m, 1 + taken);
        return taken;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte* Pointer(Span<byte> frame) =>
        // The pool's slab is on the pinned object heap: a frame's address is stable for the kernel.
        (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(frame));

    /// <summary>Without the vnet header: one frame per message, partial checksums finished in software first.</summary>
    private int TransmitPlain(ReadOnlySpan<int> handles)
    {
        var pool = _pool;
        var batch = _tx;
        var accepted = 0;
        long bytes = 0;
        while (accepted < handles.Length)
        {
            var count = Math.Min(handles.Length - accepted, batch.Capacity);
            for (var i = 0; i < count; i++)
            {
                var h = handles[accepted + i];
                var frame = pool.Frame(h);
                if ((pool.Meta(h).Flags & PacketFlags.ChecksumPartial) != 0)
                {
                    L4Checksum.Complete(frame);
                    pool.Meta(h).Flags &= ~PacketFlags.ChecksumPartial;
                }
                batch.Set(i, Pointer(frame), frame.Length);
            }
            // The socket is bound, so no per-message address: every frame leaves by the bound interface.
            var sent = LibC.SendMmsg(_fd, batch.Messages, (uint)count, Linux.MsgDontWait);
            if (sent > 0)
            {
                for (var i = 0; i < sent; i++)
                {
                    var h = handles[accepted + i];
                    bytes += pool.Meta(h).Length;
                    pool.Free(h);
                }
                accepted += sent;
                continue;
            }
            if (!SendFailed(handles, ref accepted, 1, 0)) break;
        }
        Counters.AddTransmit(accepted, bytes);
        return accepted;
    }

    /// <summary>
    /// sendmmsg stops at the first message that fails; the retry starting there reports why. A full socket buffer
    /// ends the burst (the caller keeps the rest); a merged super-frame the kernel refuses (EINVAL: the GSO
    /// validation regressions of 6.6.44/6.10.3, or an old kernel) turns merging off for good and its segments
    /// go again one by one; a frame the kernel refuses is dropped and the burst goes on; a vanished interface
    /// drops the rest of the burst. Returns whether to keep sending.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool SendFailed(ReadOnlySpan<int> handles, ref int accepted, int messageHandles, int message)
    {
        var errno = Errno.Last;
        if (errno is Errno.EAgain or Errno.ENoBufs or Errno.EIntr)
        {
            Counters.TxBusyOnce();
            return false;
        }
        if (messageHandles > 1 && errno == Errno.EInval)
        {
            UndoMerge(handles[accepted], _txHeadTotal[message]);
            _coalesce = false;
            Counters.TxError(errno, 0);
            return true;
        }
        var drop = errno is Errno.ENetDown or Errno.ENxio or Errno.ENoDev ? handles.Length - accepted : messageHandles;
        for (var i = 0; i < drop; i++) _pool.Free(handles[accepted + i]);
        accepted += drop;
        Counters.TxError(errno, drop);
        return true;
    }

    /// <summary>Gives a head segment back its own IPv4 total length, header checksum and (partial) TCP checksum.</summary>
    private void UndoMerge(int head, ushort totalLength)
    {
        var ip = _pool.Frame(head)[Ethernet.HeaderLength..];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Header.OffsetTotalLength..], totalLength);
        Ipv4Header.UpdateChecksum(ip);
        // PSH belongs to the run's last segment, which still carries its own.
        ip[Ipv4Header.MinLength + 13] &= unchecked((byte)~0x08);
        var l4Length = totalLength - Ipv4Header.MinLength;
        L4Checksum.WritePartial(ip[Ipv4Header.MinLength..], Ipv4Header.ProtocolTcp, L4Checksum.PseudoHeader(Ipv4Header.Source(ip), Ipv4Header.Destination(ip), Ipv4Header.ProtocolTcp, l4Length));
        _pool.Meta(head).Flags = (_pool.Meta(head).Flags & ~PacketFlags.ChecksumVerified) | PacketFlags.ChecksumPartial;
    }
}
