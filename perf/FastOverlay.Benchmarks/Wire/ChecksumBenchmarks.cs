using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using FastOverlay.Wire;

namespace FastOverlay.Benchmarks.Wire;

/// <summary>
/// The Internet checksum: our 8-bytes-at-a-time native-order sum against the textbook 16-bit big-endian loop, over
/// an IPv4 header and over a 1500-byte packet; and the incremental TTL update (RFC 1624) against a recompute.
/// </summary>
public class ChecksumBenchmarks
{
    private byte[] _data = [];

    [Params(20, 1500)]
    public int Length { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _data = new byte[Length];
        new Random(1).NextBytes(_data);
    }

    [Benchmark(Baseline = true)]
    public ushort Textbook16BitLoop()
    {
        uint sum = 0;
        var d = _data.AsSpan();
        for (var i = 0; i + 1 < d.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(d[i..]);
        if ((d.Length & 1) != 0) sum += (uint)d[^1] << 8;
        while (sum >> 16 != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    [Benchmark]
    public ushort FastOverlay_Compute() => InternetChecksum.Compute(_data);

    [Benchmark]
    public ushort FastOverlay_IncrementalTtlUpdate() => InternetChecksum.Update(0x1234, (ushort)0x4011, (ushort)0x3F11);
}
