using FastOverlay.Offload;
using FastOverlay.Wire;
using FsCheck.Xunit;

namespace FastOverlay.Tests.Offload;

/// <summary>
/// Segmenting then coalescing, and coalescing then segmenting, keep every payload byte and yield checksums that
/// verify, for arbitrary MSS, payload sizes and TCP option lengths. The coalesced super-frame is checked the way a
/// pod's kernel would see it after GSO: its partial checksum completed over the whole frame must verify too.
/// </summary>
public class OffloadRoundTripProperties
{
    private static byte[] Options(byte seed)
    {
        // 0..40 bytes of options in whole words (NOPs and a timestamp-like filler), as TCP allows.
        var words = seed % 11;
        var options = new byte[words * 4];
        for (var i = 0; i < options.Length; i++) options[i] = (byte)(i % 4 == 0 ? 1 : seed + i);
        return options;
    }

    private static byte[] Payload(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    [Property(MaxTest = 300)]
    public bool Segment_then_coalesce_keeps_the_payload_and_checksums(int seed, uint seq, bool partial)
    {
        // FsCheck's sizes stay small; one seed drawn over the whole range covers 1-byte to 64 KiB frames.
        var random = new Random(seed);
        var options = Options((byte)random.Next(256));
        var mss = random.Next(64, 1464);
        var payload = Payload(random.Next(2) == 0 ? random.Next(1, 64000) : random.Next(1, 4 * mss), seed);
        if (54 + options.Length + payload.Length > 65535) return true;
        var super = TcpFrames.Tcp(payload, seq, TcpFrames.Ack | TcpFrames.Psh, options, partial: true);
        var header = new VirtioNetHeader { Flags = 1, GsoType = VirtioNetHeader.GsoTcpV4, GsoSize = (ushort)mss, ChecksumStart = 34, ChecksumOffset = 16 };
        if (GsoSegmenter.Plan(super, header, 1920, out var layout) != DropReason.None) return 54 + options.Length + mss > 1920;

        var segments = new List<byte[]>();
        for (var i = 0; i < layout.Segments; i++)
        {
            var buffer = new byte[2048];
            var s = buffer[..GsoSegmenter.WriteSegment(super, layout, i, buffer, completeChecksum: !partial)];
            var check = (byte[])s.Clone();
            if (partial) L4Checksum.Complete(check);
            if (!TcpFrames.ChecksumValid(check)) return false;
            segments.Add(s);
        }
        if (!segments.SelectMany(TcpFrames.Payload).SequenceEqual(payload)) return false;

        // Coalesce as the pod port would: runs of at most 64 segments, each run one super-frame.
        var rebuilt = new List<byte>();
        var index = 0;
        while (index < segments.Count)
        {
            var head = (byte[])segments[index].Clone();
            if (!TcpCoalescer.TryStart(head, out var run)) return false;
            var frame = new List<byte>(head[..(run.HeaderLength + run.SegmentSize)]);
            var next = index + 1;
            while (next < segments.Count && TcpCoalescer.TryAppend(ref run, head, segments[next], out var n))
            {
                frame.AddRange(segments[next].AsSpan(run.HeaderLength, n).ToArray());
                next++;
            }
            // Only a full run may stop before the end: 64 segments or 64 KiB.
            if (next < segments.Count && run.Segments != TcpCoalescer.MaxSegments && run.HeaderLength - 14 + run.PayloadLength + mss <= 65535) return false;
            var vnet = TcpCoalescer.FinishHead(head, run);
            var merged = frame.ToArray();
            head.AsSpan(0, run.HeaderLength).CopyTo(merged);
            // A run of one is sent as it is; a longer one's gso_size is the MSS every segment but the last has.
            if (run.Segments > 1 && (vnet.GsoSize != mss || vnet.ChecksumStart != 34 || vnet.HeaderLength != run.HeaderLength)) return false;
            if (Ipv4Header.TotalLength(merged.AsSpan(14)) != merged.Length - 14 || !Ipv4Header.HeaderChecksumValid(merged.AsSpan(14), 20)) return false;
            L4Checksum.Complete(merged);
            if (!TcpFrames.ChecksumValid(merged)) return false;
            // PSH survives only on the run that holds the last segment.
            if (((TcpFrames.Flags(merged) & TcpFrames.Psh) != 0) != (next == segments.Count)) return false;
            rebuilt.AddRange(TcpFrames.Payload(merged));
            index = next;
        }
        return rebuilt.SequenceEqual(payload);
    }

    [Property(MaxTest = 300)]
    public bool Coalesce_then_segment_gives_back_the_segments(int seed, uint seq)
    {
        var random = new Random(seed);
        var dataSeed = seed;
        var options = Options((byte)random.Next(256));
        var mss = random.Next(64, 1444);
        var count = random.Next(1, 41);
        var tail = random.Next(1, mss + 1);
        var sizes = Enumerable.Repeat(mss, count - 1).Append(tail).ToArray();
        if (54 + options.Length + sizes.Sum() > 65535) return true;
        var segments = new List<byte[]>();
        var s = seq;
        for (var i = 0; i < count; i++)
        {
            var flags = i == count - 1 ? (byte)(TcpFrames.Ack | TcpFrames.Psh) : TcpFrames.Ack;
            segments.Add(TcpFrames.Tcp(Payload(sizes[i], dataSeed + i), s, flags, options, id: (ushort)(100 + i)));
            s += (uint)sizes[i];
        }

        var head = (byte[])segments[0].Clone();
        if (!TcpCoalescer.TryStart(head, out var run)) return false;
        var frame = new List<byte>(head[..(run.HeaderLength + run.SegmentSize)]);
        for (var i = 1; i < count; i++)
        {
            if (!TcpCoalescer.TryAppend(ref run, head, segments[i], out var n)) return false;
            frame.AddRange(segments[i].AsSpan(run.HeaderLength, n).ToArray());
        }
        var vnet = TcpCoalescer.FinishHead(head, run);
        var merged = frame.ToArray();
        head.AsSpan(0, run.HeaderLength).CopyTo(merged);

        // The pod's kernel (or another hop) segments it again by the header we wrote.
        if (count == 1)
        {
            L4Checksum.Complete(merged);
            return merged.AsSpan().SequenceEqual(segments[0]) || TcpFrames.ChecksumValid(merged);
        }
        if (GsoSegmenter.Plan(merged, vnet, 1920, out var layout) != DropReason.None || layout.Segments != count) return false;
        for (var i = 0; i < count; i++)
        {
            var buffer = new byte[2048];
            var again = buffer[..GsoSegmenter.WriteSegment(merged, layout, i, buffer, completeChecksum: true)];
            if (!TcpFrames.ChecksumValid(again)) return false;
            if (!TcpFrames.Payload(again).AsSpan().SequenceEqual(TcpFrames.Payload(segments[i]))) return false;
            if (TcpFrames.Sequence(again) != TcpFrames.Sequence(segments[i])) return false;
            if (TcpFrames.Flags(again) != TcpFrames.Flags(segments[i])) return false;
        }
        return true;
    }
}
