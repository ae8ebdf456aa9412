using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastOverlay.Wire;

namespace FastOverlay.Offload;

/// <summary>The first segment of a run of TCP segments being merged into one super-frame.</summary>
public struct TcpRun
{
    /// <summary>Ethernet + IPv4 + TCP header bytes of every segment of the run.</summary>
    public int HeaderLength;
    /// <summary>Payload of the first segment: the gso_size of the merged frame; later ones may not exceed it.</summary>
    public int SegmentSize;
    public int PayloadLength;
    public int Segments;
    /// <summary>The sequence number the next segment must carry.</summary>
    public uint NextSequence;
    /// <summary>A segment shorter than <see cref="SegmentSize"/>, or one with PSH, ends the run (it must be last).</summary>
    public bool Closed;
    public bool Push;
}

/// <summary>
/// Userspace GRO for frames on their way into a pod: consecutive TCP segments of one flow become one super-frame
/// written with a virtio_net_hdr (TCPV4, gso_size, NEEDS_CSUM), which the pod's stack takes whole, as the kernel's
/// tcp_gro_receive would have given it. Merge rules are those of tcp_gro_receive and wireguard-go's tcpGRO: same
/// addresses, ports and ACK number; IPv4 without options or fragments and with the same TOS, TTL and DF; the same
/// TCP header length and option bytes (timestamps included); only ACK or ACK|PSH with payload; each segment starts
/// where the previous ended; every segment the size of the first except a shorter last; PSH only on the last.
/// The frame is Ethernet II without a VLAN tag (pod ports are untagged).
/// </summary>
public static class TcpCoalescer
{
    /// <summary>Most segments in one super-frame: the iovec budget per message, and UDP_GRO_CNT_MAX's figure.</summary>
    public const int MaxSegments = 64;
    private const int L3 = Ethernet.HeaderLength;
    private const int L4 = L3 + Ipv4Header.MinLength;
    private const byte TcpAck = 0x10;
    private const byte TcpPsh = 0x08;
    private const int MaxIpLength = 65535;

    /// <summary>Starts a run with <paramref name="frame"/> if it can lead one.</summary>
    public static bool TryStart(ReadOnlySpan<byte> frame, out TcpRun run)
    {
        run = default;
        if (!Eligible(frame, out var headerLength, out var payload)) return false;
        run.HeaderLength = headerLength;
        run.SegmentSize = payload;
        run.PayloadLength = payload;
        run.Segments = 1;
        run.NextSequence = Sequence(frame) + (uint)payload;
        run.Push = (frame[L4 + 13] & TcpPsh) != 0;
        run.Closed = run.Push;
        return true;
    }

    /// <summary>Whether <paramref name="next"/> continues the run led by <paramref name="head"/>; if so the run takes it.</summary>
    public static bool TryAppend(ref TcpRun run, ReadOnlySpan<byte> head, ReadOnlySpan<byte> next, out int payload)
    {
        payload = 0;
        if (run.Closed || run.Segments == MaxSegments) return false;
        if (!Eligible(next, out var headerLength, out payload)) return false;
        if (headerLength != run.HeaderLength || payload > run.SegmentSize) return false;
        if (run.HeaderLength - L3 + run.PayloadLength + payload > MaxIpLength) return false;
        if (Sequence(next) != run.NextSequence) return false;
        if (!SameFlow(head, next, headerLength)) return false;
        run.PayloadLength += payload;
        run.Segments++;
        run.NextSequence += (uint)payload;
        run.Push = (next[L4 + 13] & TcpPsh) != 0;
        run.Closed = run.Push || payload < run.SegmentSize;
        return true;
    }

    /// <summary>
    /// Turns the head segment's headers into the super-frame's: IPv4 total length and header checksum for the
    /// whole frame, PSH if the last segment had it, and the TCP checksum in its partial form over the whole
    /// length (the pod's kernel takes NEEDS_CSUM frames as CHECKSUM_PARTIAL and never re-verifies them). Returns
    /// the virtio_net_hdr to send in front of it.
    /// </summary>
    public static VirtioNetHeader FinishHead(Span<byte> head, in TcpRun run)
    {
        var ip = head[L3..];
        var l4Length = run.HeaderLength - L4 + run.PayloadLength;
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Header.OffsetTotalLength..], (ushort)(Ipv4Header.MinLength + l4Length));
        Ipv4Header.UpdateChecksum(ip);
        if (run.Push) head[L4 + 13] |= TcpPsh;
        var pseudo = L4Checksum.PseudoHeader(Ipv4Header.Source(ip), Ipv4Header.Destination(ip), Ipv4Header.ProtocolTcp, l4Length);
        L4Checksum.WritePartial(head[L4..], Ipv4Header.ProtocolTcp, pseudo);
        return new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsChecksum,
            GsoType = VirtioNetHeader.GsoTcpV4,
            HeaderLength = (ushort)run.HeaderLength,
            GsoSize = (ushort)run.SegmentSize,
            ChecksumStart = L4,
            ChecksumOffset = L4Checksum.TcpChecksumOffset,
        };
    }

    /// <summary>Untagged IPv4 without options or fragmentation, TCP with only ACK (and PSH) set, and payload.</summary>
    private static bool Eligible(ReadOnlySpan<byte> frame, out int headerLength, out int payload)
    {
        headerLength = 0;
        payload = 0;
        if (frame.Length < L4 + 20) return false;
        ref var p = ref MemoryMarshal.GetReference(frame);
        if (Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, 12)) != (BitConverter.IsLittleEndian ? (ushort)0x0008 : (ushort)0x0800)) return false;
        if (Unsafe.Add(ref p, L3) != 0x45 || Unsafe.Add(ref p, L3 + Ipv4Header.OffsetProtocol) != Ipv4Header.ProtocolTcp) return false;
        var ip = frame[L3..];
        if ((Ipv4Header.FlagsFragment(ip) & (Ipv4Header.FlagMoreFragments | Ipv4Header.FragmentOffsetMask)) != 0) return false;
        var total = Ipv4Header.TotalLength(ip);
        if (total > ip.Length) return false;
        var thl = (Unsafe.Add(ref p, L4 + 12) >> 4) * 4;
        var flags = Unsafe.Add(ref p, L4 + 13);
        if (thl < 20 || (flags & ~TcpPsh) != TcpAck) return false;
        headerLength = L4 + thl;
        payload = L3 + total - headerLength;
        return payload > 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Sequence(ReadOnlySpan<byte> frame) => BinaryPrimitives.ReadUInt32BigEndian(frame[(L4 + 4)..]);

    /// <summary>
    /// Same addresses, ports, ACK, window, TOS, TTL, DF and option bytes. Bytes that legitimately differ are
    /// skipped: IPv4 total length, ID and checksum; TCP sequence number, flags (PSH) and checksum.
    /// </summary>
    private static bool SameFlow(ReadOnlySpan<byte> head, ReadOnlySpan<byte> next, int headerLength)
    {
        if (head[L3 + 1] != next[L3 + 1]) return false;
        if (Ipv4Header.DontFragment(head[L3..]) != Ipv4Header.DontFragment(next[L3..])) return false;
        if (head[L3 + Ipv4Header.OffsetTtl] != next[L3 + Ipv4Header.OffsetTtl]) return false;
        // Addresses (8 bytes) and ports (4 bytes) are contiguous from the IPv4 source on.
        if (!head.Slice(L3 + Ipv4Header.OffsetSource, 12).SequenceEqual(next.Slice(L3 + Ipv4Header.OffsetSource, 12))) return false;
        // ACK number, data offset; window; urgent pointer and options.
        if (!head.Slice(L4 + 8, 5).SequenceEqual(next.Slice(L4 + 8, 5))) return false;
        if (!head.Slice(L4 + 14, 2).SequenceEqual(next.Slice(L4 + 14, 2))) return false;
        return head[(L4 + 18)..headerLength].SequenceEqual(next[(L4 + 18)..headerLength]);
    }
}
