using System.Buffers.Binary;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using FastOverlay.Wire;

namespace FastOverlay.Benchmarks.Wire;

/// <summary>
/// The Internet checksum's kernels over payload sizes from a small packet to a 64 KiB GSO segment: the scalar
/// 8-bytes-at-a-time loop (baseline), each vector width called directly, and <see cref="InternetChecksum.Add"/>,
/// which dispatches to the widest accelerated one. A width this machine does not accelerate returns 0 at once
/// rather than timing a software fallback. The GB/s column is Size / median.
/// <para>
/// The bytes start 34 bytes past a 64-byte boundary, where a UDP datagram starts in an untagged frame in the packet
/// pool's slab: the loads are unaligned, as in the forwarder, and the wide ones split cache lines.
/// </para>
/// </summary>
[Config(typeof(ThroughputConfig))]
public class ChecksumBenchmarks
{
    private const int StartOffset = 34;
    private byte[] _buffer = [];
    private int _start;

    [Params(64, 1500, 9000, 65536)]
    public int Size { get; set; }

    private ReadOnlySpan<byte> Data => _buffer.AsSpan(_start, Size);

    [GlobalSetup]
    public unsafe void Setup()
    {
        _buffer = GC.AllocateArray<byte>(Size + 128, pinned: true);
        new Random(1).NextBytes(_buffer);
        fixed (byte* p = _buffer)
            _start = (int)((64 - (nuint)p % 64) % 64) + StartOffset;
    }

    [Benchmark(Baseline = true)]
    public ulong Scalar() => InternetChecksum.AddScalar(Data, 0);

    [Benchmark]
    public ulong Vector128() => System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated ? InternetChecksum.AddVector128(Data, 0) : 0;

    [Benchmark]
    public ulong Vector256() => System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? InternetChecksum.AddVector256(Data, 0) : 0;

    [Benchmark]
    public ulong Vector512() => System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? InternetChecksum.AddVector512(Data, 0) : 0;

    [Benchmark]
    public ulong Add() => InternetChecksum.Add(Data);

    /// <summary>Adds the GB/s column to this class's summary.</summary>
    private sealed class ThroughputConfig : ManualConfig
    {
        public ThroughputConfig() => AddColumn(new ThroughputColumn());
    }

    /// <summary>Bytes per nanosecond of the median time, which is GB/s; the Size parameter gives the bytes.</summary>
    private sealed class ThroughputColumn : IColumn
    {
        public string Id => nameof(ThroughputColumn);
        public string ColumnName => "GB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "Size / median time: decimal gigabytes checksummed per second";

        public bool IsAvailable(Summary summary) => true;

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var median = summary[benchmarkCase]?.ResultStatistics?.Median;
            if (median is not > 0 || benchmarkCase.Parameters["Size"] is not int size) return "NA";
            return (size / median.Value).ToString("F1", CultureInfo.InvariantCulture);
        }
    }
}

/// <summary>
/// The 20-byte IPv4 header and a 1500-byte packet through the textbook 16-bit big-endian loop and through
/// <see cref="InternetChecksum.Compute"/> (the README's comparison); and the incremental TTL update (RFC 1624).
/// </summary>
public class ChecksumHeaderBenchmarks
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
