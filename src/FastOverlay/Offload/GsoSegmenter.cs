using System.Buffers.Binary;
using FastOverlay.Wire;

namespace FastOverlay.Offload;

/// <summary>Where the headers and payload of a GSO super-frame are, and how it splits.</summary>
public readonly struct GsoLayout
{
    public GsoLayout(int l3Offset, int ipHeaderLength, int l4HeaderLength, int payloadLength, int segmentSize, byte protocol)
    {
        L3Offset = l3Offset;
        IpHeaderLength = ipHeaderLength;
        L4HeaderLength = l4HeaderLength;
        PayloadLength = payloadLength;
        SegmentSize = segmentSize;
        Protocol = protocol;
    }

    public int L3Offset { get; }
    public int IpHeaderLength { get; }
    public int L4HeaderLength { get; }
    public int PayloadLength { get; }
    /// <summary>gso_size: payload bytes per segment (the MSS for TCP); the last segment may be shorter.</summary>
    public int SegmentSize { get; }
    public byte Protocol { get; }

    public int L4Offset => L3Offset + IpHeaderLength;
    /// <summary>Ethernet, IPv4 and TCP/UDP headers: what every segment repeats. Recomputed, never hdr_len (a hint, skb_headlen).</summary>
    public int HeaderLength => L4Offset + L4HeaderLength;
    public int Segments => PayloadLength == 0 ? 1 : (PayloadLength + SegmentSize - 1) / SegmentSize;
    public int SegmentPayload(int index) => Math.Min(SegmentSize, PayloadLength - index * SegmentSize);
    public int SegmentLength(int index) => HeaderLength + SegmentPayload(index);
}

/// <summary>
/// Software GSO for the super-frames a pod's TCP (TSO) or UDP (USO) stack hands a veth: one frame of up to 64 KiB
/// with one set of headers and a virtio_net_hdr saying how to cut it. Each segment gets the headers with its own
/// IPv4 total length, ID (+1 per segment, as tcp_gso_segment/inet_gso_segment do unless FIXEDID) and header
/// checksum; TCP segments get their sequence number, FIN and PSH only on the last and CWR only on the first
/// (tcp_gso_segment); UDP segments their own length. The L4 checksum is written either complete or in its
/// partial form (pseudo-header only) so a later stage can finish it or hand it to a pod as NEEDS_CSUM.
/// </summary>
public static class GsoSegmenter
{
    private const byte TcpFin = 0x01;
    private const byte TcpPsh = 0x08;
    private const byte TcpCwr = 0x80;

    /// <summary>
    /// Checks that the frame is what its header says (IPv4 without fragmenting, TCP for TCPV4, UDP for UDP_L4, a
    /// non-zero gso_size) and lays it out. csum_start, when given, must point at the L4 header: a header that
    /// contradicts the frame is refused rather than trusted.
    /// </summary>
    public static DropReason Plan(ReadOnlySpan<byte> frame, in VirtioNetHeader header, int maxSegmentLength, out GsoLayout layout)
    {
        layout = default;
        var kind = header.GsoKind;
        byte protocol;
        if (kind == VirtioNetHeader.GsoTcpV4) protocol = Ipv4Header.ProtocolTcp;
        else if (kind == VirtioNetHeader.GsoUdpL4) protocol = Ipv4Header.ProtocolUdp;
        else return DropReason.GsoUnsupported;
        if (Ethernet.Parse(frame, out var etherType, out var l3) != DropReason.None || etherType != Ethernet.TypeIpv4) return DropReason.GsoUnsupported;
        var ip = frame[l3..];
        if (ip.Length < Ipv4Header.MinLength || ip[0] >> 4 != 4) return DropReason.GsoMalformed;
        var ihl = Ipv4Header.HeaderLength(ip);
        // BIG TCP (tot_len 0 above 64 KiB) is off unless an operator raises gso_ipv4_max_size; it is refused here.
        if (ihl < Ipv4Header.MinLength || Ipv4Header.TotalLength(ip) != ip.Length || Ipv4Header.IsFragment(ip)) return DropReason.GsoMalformed;
        if (Ipv4Header.Protocol(ip) != protocol) return DropReason.GsoMalformed;
        var l4 = ip[ihl..];
        int l4HeaderLength;
        if (protocol == Ipv4Header.ProtocolTcp)
        {
            if (l4.Length < 20) return DropReason.GsoMalformed;
            l4HeaderLength = (l4[12] >> 4) * 4;
            if (l4HeaderLength < 20 || l4HeaderLength > l4.Length) return DropReason.GsoMalformed;
        }
        else
        {
            l4HeaderLength = UdpHeader.Length;
            if (l4.Length < l4HeaderLength) return DropReason.GsoMalformed;
        }
        if (header.NeedsChecksum && header.ChecksumStart != l3 + ihl) return DropReason.GsoMalformed;
        var headerLength = l3 + ihl + l4HeaderLength;
        var segmentSize = header.GsoSize;
        if (segmentSize == 0 || headerLength + segmentSize > maxSegmentLength) return DropReason.GsoMalformed;
        layout = new GsoLayout(l3, ihl, l4HeaderLength, frame.Length - headerLength, segmentSize, protocol);
        return DropReason.None;
    }

    /// <summary>Writes segment <paramref name="index"/> into <paramref name="destination"/>; returns its length.</summary>
    public static int WriteSegment(ReadOnlySpan<byte> frame, in GsoLayout layout, int index, Span<byte> destination, bool completeChecksum)
    {
        var headerLength = layout.HeaderLength;
        var payload = layout.SegmentPayload(index);
        var length = headerLength + payload;
        var segment = destination[..length];
        frame[..headerLength].CopyTo(segment);
        frame.Slice(headerLength + index * layout.SegmentSize, payload).CopyTo(segment[headerLength..]);

        var ip = segment[layout.L3Offset..];
        var ipLength = layout.IpHeaderLength + layout.L4HeaderLength + payload;
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Header.OffsetTotalLength..], (ushort)ipLength);
        var id = BinaryPrimitives.ReadUInt16BigEndian(ip[Ipv4Header.OffsetIdentification..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Header.OffsetIdentification..], (ushort)(id + index));
        Ipv4Header.UpdateChecksum(ip);

        var l4 = segment.Slice(layout.L4Offset, layout.L4HeaderLength + payload);
        var last = index == layout.Segments - 1;
        if (layout.Protocol == Ipv4Header.ProtocolTcp)
        {
            var seq = BinaryPrimitives.ReadUInt32BigEndian(l4[4..]);
            BinaryPrimitives.WriteUInt32BigEndian(l4[4..], seq + (uint)(index * layout.SegmentSize));
            if (!last) l4[13] &= unchecked((byte)~(TcpFin | TcpPsh));
            if (index != 0) l4[13] &= unchecked((byte)~TcpCwr);
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(l4[4..], (ushort)l4.Length);
        }
        var pseudo = L4Checksum.PseudoHeader(Ipv4Header.Source(ip), Ipv4Header.Destination(ip), layout.Protocol, l4.Length);
        L4Checksum.WritePartial(l4, layout.Protocol, pseudo);
        if (completeChecksum)
        {
            var checksum = InternetChecksum.Compute(l4);
            if (layout.Protocol == Ipv4Header.ProtocolUdp && checksum == 0) checksum = 0xFFFF;
            BinaryPrimitives.WriteUInt16BigEndian(l4[L4Checksum.FieldOffset(layout.Protocol)..], checksum);
        }
        return length;
    }
}
