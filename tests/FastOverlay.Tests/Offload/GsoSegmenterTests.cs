using System.Buffers.Binary;
using FastOverlay.Offload;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Offload;

public class GsoSegmenterTests
{
    private static VirtioNetHeader Tso(int gsoSize) => new()
    {
        Flags = VirtioNetHeader.FlagNeedsChecksum,
        GsoType = VirtioNetHeader.GsoTcpV4,
        GsoSize = (ushort)gsoSize,
        ChecksumStart = 34,
        ChecksumOffset = 16,
        // What the kernel reports is skb_headlen, not the header length: it must not matter.
        HeaderLength = 9999,
    };

    private static byte[] Pattern(int length)
    {
        var data = new byte[length];
        for (var i = 0; i < length; i++) data[i] = (byte)(i * 7 + 3);
        return data;
    }

    [Fact]
    public void A_tso_frame_becomes_mss_sized_segments_with_their_own_headers()
    {
        var payload = Pattern(4000);
        var super = TcpFrames.Tcp(payload, seq: 1000, flags: TcpFrames.Ack | TcpFrames.Psh | 0x80 /* CWR */ | 0x01 /* FIN */, id: 65534, partial: true);
        Assert.Equal(DropReason.None, GsoSegmenter.Plan(super, Tso(1448), 1920, out var layout));
        Assert.Equal(3, layout.Segments);
        Assert.Equal(54, layout.HeaderLength);

        var segments = new List<byte[]>();
        for (var i = 0; i < layout.Segments; i++)
        {
            var buffer = new byte[2048];
            var n = GsoSegmenter.WriteSegment(super, layout, i, buffer, completeChecksum: true);
            segments.Add(buffer[..n]);
        }
        Assert.Equal([1448, 1448, 1104], segments.Select(s => TcpFrames.Payload(s).Length));
        Assert.Equal(payload, segments.SelectMany(TcpFrames.Payload).ToArray());
        Assert.Equal([1000u, 2448u, 3896u], segments.Select(TcpFrames.Sequence));
        // CWR only on the first, FIN and PSH only on the last (tcp_gso_segment).
        Assert.Equal([0x90, 0x10, 0x19], segments.Select(s => (int)TcpFrames.Flags(s)));
        // IPv4 ID counts up per segment and wraps.
        Assert.Equal([65534, 65535, 0], segments.Select(s => (int)BinaryPrimitives.ReadUInt16BigEndian(s.AsSpan(18))));
        foreach (var s in segments)
        {
            Assert.Equal(DropReason.None, Ipv4Header.Validate(s.AsSpan(14), out _, out var total));
            Assert.Equal(s.Length - 14, total);
            Assert.True(TcpFrames.ChecksumValid(s));
        }
    }

    [Fact]
    public void Partial_segments_carry_the_pseudo_header_sum_that_completes_to_a_valid_checksum()
    {
        var super = TcpFrames.Tcp(Pattern(3000), seq: 5, partial: true);
        Assert.Equal(DropReason.None, GsoSegmenter.Plan(super, Tso(1000), 1920, out var layout));
        for (var i = 0; i < layout.Segments; i++)
        {
            var buffer = new byte[2048];
            var s = buffer[..GsoSegmenter.WriteSegment(super, layout, i, buffer, completeChecksum: false)];
            Assert.False(TcpFrames.ChecksumValid(s));
            L4Checksum.Complete(s);
            Assert.True(TcpFrames.ChecksumValid(s));
        }
    }

    [Fact]
    public void A_uso_frame_becomes_datagrams_with_their_own_length_and_checksum()
    {
        var payload = Pattern(2500);
        var super = TcpFrames.Udp(payload, partial: true);
        var header = new VirtioNetHeader { Flags = 1, GsoType = VirtioNetHeader.GsoUdpL4, GsoSize = 1000, ChecksumStart = 34, ChecksumOffset = 6 };
        Assert.Equal(DropReason.None, GsoSegmenter.Plan(super, header, 1920, out var layout));
        Assert.Equal(3, layout.Segments);
        var all = new List<byte>();
        for (var i = 0; i < 3; i++)
        {
            var buffer = new byte[2048];
            var s = buffer[..GsoSegmenter.WriteSegment(super, layout, i, buffer, completeChecksum: true)];
            Assert.Equal(s.Length - 34, BinaryPrimitives.ReadUInt16BigEndian(s.AsSpan(38)));
            Assert.True(UdpHeader.ChecksumAcceptable(TcpFrames.SourceIp, TcpFrames.DestinationIp, s.AsSpan(34)));
            all.AddRange(TcpFrames.Payload(s));
        }
        Assert.Equal(payload, all.ToArray());
    }

    [Theory]
    [InlineData(VirtioNetHeader.GsoTcpV6, 1448, 34, DropReason.GsoUnsupported)]
    [InlineData(VirtioNetHeader.GsoUdp, 1448, 34, DropReason.GsoUnsupported)]
    [InlineData(VirtioNetHeader.GsoTcpV4, 0, 34, DropReason.GsoMalformed)]
    [InlineData(VirtioNetHeader.GsoTcpV4, 1900, 34, DropReason.GsoMalformed)]
    [InlineData(VirtioNetHeader.GsoTcpV4, 1448, 40, DropReason.GsoMalformed)]
    [InlineData(VirtioNetHeader.GsoUdpL4, 1448, 34, DropReason.GsoMalformed)]
    [InlineData(VirtioNetHeader.GsoTcpV4 | VirtioNetHeader.GsoEcn, 1448, 34, DropReason.None)]
    public void Headers_that_contradict_the_frame_are_refused_with_a_reason(byte gsoType, int gsoSize, int csumStart, DropReason expected)
    {
        var super = TcpFrames.Tcp(Pattern(3000), seq: 1, partial: true);
        var header = new VirtioNetHeader { Flags = 1, GsoType = gsoType, GsoSize = (ushort)gsoSize, ChecksumStart = (ushort)csumStart, ChecksumOffset = 16 };
        Assert.Equal(expected, GsoSegmenter.Plan(super, header, 1920, out _));
    }

    [Fact]
    public void A_total_length_that_disagrees_with_the_frame_is_refused()
    {
        var super = TcpFrames.Tcp(Pattern(3000), seq: 1, partial: true);
        BinaryPrimitives.WriteUInt16BigEndian(super.AsSpan(16), 100);
        Assert.Equal(DropReason.GsoMalformed, GsoSegmenter.Plan(super, Tso(1448), 1920, out _));
    }
}
