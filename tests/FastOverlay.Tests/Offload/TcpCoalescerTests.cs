using FastOverlay.Offload;

namespace FastOverlay.Tests.Offload;

public class TcpCoalescerTests
{
    private static byte[] P(int n) => Enumerable.Range(0, n).Select(i => (byte)i).ToArray();

    private static int Merge(params byte[][] segments)
    {
        Assert.True(TcpCoalescer.TryStart(segments[0], out var run));
        var merged = 1;
        while (merged < segments.Length && TcpCoalescer.TryAppend(ref run, segments[0], segments[merged], out _)) merged++;
        return merged;
    }

    [Fact]
    public void Adjacent_segments_of_one_flow_merge() =>
        Assert.Equal(3, Merge(TcpFrames.Tcp(P(100), 1), TcpFrames.Tcp(P(100), 101), TcpFrames.Tcp(P(50), 201)));

    [Fact]
    public void A_gap_in_sequence_numbers_ends_the_run() =>
        Assert.Equal(1, Merge(TcpFrames.Tcp(P(100), 1), TcpFrames.Tcp(P(100), 102)));

    [Fact]
    public void A_shorter_segment_must_be_the_last() =>
        Assert.Equal(2, Merge(TcpFrames.Tcp(P(100), 1), TcpFrames.Tcp(P(50), 101), TcpFrames.Tcp(P(50), 151)));

    [Fact]
    public void A_longer_segment_does_not_join() =>
        Assert.Equal(1, Merge(TcpFrames.Tcp(P(100), 1), TcpFrames.Tcp(P(200), 101)));

    [Fact]
    public void Psh_ends_the_run_after_its_segment() =>
        Assert.Equal(2, Merge(TcpFrames.Tcp(P(100), 1), TcpFrames.Tcp(P(100), 101, TcpFrames.Ack | TcpFrames.Psh), TcpFrames.Tcp(P(100), 201)));

    [Fact]
    public void A_different_ack_number_ttl_or_option_bytes_do_not_merge()
    {
        Assert.Equal(1, Merge(TcpFrames.Tcp(P(100), 1), TcpFrames.Tcp(P(100), 101, ack: 778)));
        Assert.Equal(1, Merge(TcpFrames.Tcp(P(100), 1), TcpFrames.Tcp(P(100), 101, ttl: 63)));
        Assert.Equal(1, Merge(TcpFrames.Tcp(P(100), 1, options: [1, 1, 1, 1]), TcpFrames.Tcp(P(100), 101, options: [1, 1, 1, 2])));
    }

    [Fact]
    public void Syn_fin_rst_and_pure_acks_never_lead_or_join()
    {
        Assert.False(TcpCoalescer.TryStart(TcpFrames.Tcp(P(100), 1, flags: 0x12), out _));
        Assert.False(TcpCoalescer.TryStart(TcpFrames.Tcp(P(100), 1, flags: 0x11), out _));
        Assert.False(TcpCoalescer.TryStart(TcpFrames.Tcp(P(100), 1, flags: 0x14), out _));
        Assert.False(TcpCoalescer.TryStart(TcpFrames.Tcp([], 1), out _));
        Assert.Equal(1, Merge(TcpFrames.Tcp(P(100), 1), TcpFrames.Tcp(P(100), 101, flags: 0x11)));
    }

    [Fact]
    public void A_run_stops_at_64_segments()
    {
        var segments = Enumerable.Range(0, 70).Select(i => TcpFrames.Tcp(P(10), (uint)(1 + i * 10))).ToArray();
        Assert.Equal(TcpCoalescer.MaxSegments, Merge(segments));
    }

    [Fact]
    public void A_run_stops_before_the_ipv4_length_limit()
    {
        var segments = Enumerable.Range(0, 50).Select(i => TcpFrames.Tcp(P(1460), (uint)(1 + i * 1460))).ToArray();
        // 44 × 1460 + 40 header bytes = 64,280 fits; a 45th would pass 65,535.
        Assert.Equal(44, Merge(segments));
    }
}
