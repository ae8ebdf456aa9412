using System.Buffers.Binary;
using FastOverlay.Wire;
using Xunit;

namespace FastOverlay.Tests.Wire;

public class InternetChecksumTests
{
    public static TheoryData<string> ChecksumNames
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var name in WireVectors.Names.Where(n => n.StartsWith("csum_", StringComparison.Ordinal) && n.EndsWith("_data", StringComparison.Ordinal)))
                data.Add(name[..^"_data".Length]);
            return data;
        }
    }

    public static TheoryData<string> Ipv4Names => WireVectors.Ipv4Names;

    internal delegate ulong Adder(ReadOnlySpan<byte> data, ulong sum);

    /// <summary>
    /// Every path besides the scalar reference: each kernel is called directly, whatever this machine accelerates
    /// (an unaccelerated width runs in software, still exactly), and the dispatcher behind Add.
    /// </summary>
    internal static readonly (string Name, Adder Add)[] Paths =
    [
        ("Vector128", InternetChecksum.AddVector128),
        ("Vector256", InternetChecksum.AddVector256),
        ("Vector512", InternetChecksum.AddVector512),
        ("Add", (data, sum) => InternetChecksum.Add(data, sum)),
    ];

    public static TheoryData<string> PathNames
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var (name, _) in Paths) data.Add(name);
            return data;
        }
    }

    private static Adder PathNamed(string name) => Array.Find(Paths, p => p.Name == name).Add;

    private static void AssertFoldsLikeScalar(string path, ReadOnlySpan<byte> data, ulong sum = 0)
    {
        var expected = InternetChecksum.FoldToNetworkOrder(InternetChecksum.AddScalar(data, sum));
        var actual = InternetChecksum.FoldToNetworkOrder(PathNamed(path)(data, sum));
        Assert.True(expected == actual, $"{path}, {data.Length} bytes, sum 0x{sum:X}: 0x{actual:X4}, scalar 0x{expected:X4}");
    }

    /// <summary>RFC 1071 done the obvious way: big-endian 16-bit words, odd byte padded with zero, carries folded.</summary>
    internal static ushort Reference(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (var i = 0; i < data.Length; i += 2)
        {
            sum += (uint)(data[i] << 8 | (i + 1 < data.Length ? data[i + 1] : 0));
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return (ushort)~sum;
    }

    [Fact]
    public void ThereAreChecksumVectors() => Assert.True(ChecksumNames.Count >= 8);

    [Theory]
    [MemberData(nameof(ChecksumNames))]
    public void ComputeEqualsScapys(string name)
    {
        var data = WireVectors.Get(name + "_data");
        var expected = BinaryPrimitives.ReadUInt16BigEndian(WireVectors.Get(name + "_value"));

        Assert.Equal(expected, InternetChecksum.Compute(data));
        Assert.Equal(expected, Reference(data));
    }

    [Fact]
    public void Rfc1071Example()
    {
        // RFC 1071 s3: the sum of 0001 f203 f4f5 f6f7 is ddf2, so the checksum is 220d.
        byte[] data = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7];

        Assert.Equal(0xDDF2, InternetChecksum.FoldToNetworkOrder(InternetChecksum.Add(data)));
        Assert.Equal(0x220D, InternetChecksum.Compute(data));
    }

    [Fact]
    public void EmptyDataChecksIsAllOnes()
    {
        Assert.Equal(0xFFFF, InternetChecksum.Compute([]));
        Assert.Equal(0, InternetChecksum.FoldToNetworkOrder(0));
    }

    [Fact]
    public void EveryLengthAndAlignmentMatchesTheReference()
    {
        // Covers the 8-, 4-, 2- and 1-byte tails of Add at every start alignment.
        var data = WireVectors.Get("csum_mixed1500_data");
        for (var start = 0; start < 8; start++)
        {
            for (var length = 0; length <= 80; length++)
            {
                var slice = data.AsSpan(start, length);
                Assert.Equal(Reference(slice), InternetChecksum.Compute(slice));
            }
        }
    }

    [Fact]
    public void AddChainsAtEvenSplitPoints()
    {
        var data = WireVectors.Get("csum_mixed1500_data");
        var whole = InternetChecksum.Compute(data);
        for (var split = 0; split <= data.Length; split += 2)
        {
            var sum = InternetChecksum.Add(data.AsSpan(split), InternetChecksum.Add(data.AsSpan(0, split)));
            Assert.Equal(whole, InternetChecksum.Finish(sum));
        }
    }

    [Fact]
    public void SumsOfManyAllOnesWordsFoldCorrectly()
    {
        // 64 KiB of 0xFF: a large unfolded sum whose every fold carries.
        var data = new byte[65536];
        Array.Fill(data, (byte)0xFF);

        Assert.Equal(0xFFFF, InternetChecksum.FoldToNetworkOrder(InternetChecksum.Add(data)));
        Assert.Equal(0, InternetChecksum.Compute(data));
        Assert.True(InternetChecksum.IsValid(data));
    }

    [Theory]
    [MemberData(nameof(PathNames))]
    public void AllOnesCarryOnEveryAdd(string path)
    {
        // 0xFF everywhere: every 32-bit half is 0xFFFFFFFF, so the high accumulators take their largest values and
        // every fold carries. 65535 bytes is the largest IPv4 datagram and odd: its last byte pads to 0xFF00.
        var data = new byte[65536 + 63];
        Array.Fill(data, (byte)0xFF);
        foreach (var length in (int[])[65535, 65536, 65536 + 63])
        {
            AssertFoldsLikeScalar(path, data.AsSpan(0, length));
            Assert.Equal(Reference(data.AsSpan(0, length)), InternetChecksum.Finish(PathNamed(path)(data.AsSpan(0, length), 0)));
        }
        Assert.Equal(0x00FF, InternetChecksum.Finish(PathNamed(path)(data.AsSpan(0, 65535), 0)));
    }

    [Theory]
    [MemberData(nameof(PathNames))]
    public void EdgeLengthsFoldLikeScalar(string path)
    {
        // Length 1 and other odd lengths (the padded last byte), exactly one vector of each width and one vector plus
        // one byte, the 4-vector unrolls and a byte either side, and a large running sum carried in.
        var data = WireVectors.Get("csum_mixed1500_data");
        foreach (var length in (int[])[0, 1, 3, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1499])
        {
            AssertFoldsLikeScalar(path, data.AsSpan(0, length));
            AssertFoldsLikeScalar(path, data.AsSpan(1, length), 0x3FFF_FFFF_FFFF_FFFF);
            Assert.Equal(Reference(data.AsSpan(0, length)), InternetChecksum.Finish(PathNamed(path)(data.AsSpan(0, length), 0)));
        }
    }

    [Theory]
    [MemberData(nameof(PathNames))]
    public void EveryLengthToTwoUnrollsAtEveryAlignmentFoldsLikeScalar(string path)
    {
        // Exhaustive where the kernels branch: every length through two 256-byte unrolls plus a vector and a tail,
        // at every start alignment mod 64.
        var data = WireVectors.Get("csum_mixed1500_data");
        for (var start = 0; start < 64; start++)
        {
            for (var length = 0; length <= 2 * 256 + 64 + 16; length++)
                AssertFoldsLikeScalar(path, data.AsSpan(start, length), (ulong)start * 0x1_0001);
        }
    }

    [Theory]
    [MemberData(nameof(Ipv4Names))]
    public void ScapysIpv4HeadersComputeAndValidate(string name)
    {
        var ip = WireVectors.Ipv4(name);
        var header = ip[..Ipv4Header.HeaderLength(ip)];
        var stored = Ipv4Header.Checksum(header);

        Assert.True(InternetChecksum.IsValid(header));
        header[Ipv4Header.OffsetChecksum] = 0;
        header[Ipv4Header.OffsetChecksum + 1] = 0;
        Assert.Equal(stored, InternetChecksum.Compute(header));
        Assert.False(InternetChecksum.IsValid(header));
    }

    [Fact]
    public void Rfc1624Example()
    {
        // RFC 1624 s4: HC 0xDD2F, a field changes from 0x5555 to 0x3285; eqn. 3 gives 0x0000 (eqn. 2 would give 0xFFFF).
        Assert.Equal(0x0000, InternetChecksum.Update(0xDD2F, (ushort)0x5555, (ushort)0x3285));
    }

    [Fact]
    public void UpdateOfTtlEqualsScapysChecksum()
    {
        var ttl64 = WireVectors.Ipv4("eth_ipv4_udp");
        var ttl63 = WireVectors.Ipv4("eth_ipv4_udp_ttl63");

        var updated = InternetChecksum.Update(Ipv4Header.Checksum(ttl64), (ushort)0x4011, (ushort)0x3F11);

        Assert.Equal(Ipv4Header.Checksum(ttl63), updated);
    }

    [Fact]
    public void UpdateOfAnAddressEqualsRecomputation()
    {
        // Scapy's header, re-addressed from 10.244.1.3 to 10.244.2.2: the 32-bit update against a full recompute.
        var ip = WireVectors.Ipv4("eth_ipv4_udp");
        var readdressed = (byte[])ip.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(readdressed.AsSpan(Ipv4Header.OffsetDestination), Addr.RemotePod);
        Ipv4Header.UpdateChecksum(readdressed);

        var updated = InternetChecksum.Update(Ipv4Header.Checksum(ip), Addr.Pod2, Addr.RemotePod);

        Assert.Equal(Ipv4Header.Checksum(readdressed), updated);
    }

    [Fact]
    public void PseudoHeaderIsTheSumOfItsTwelveBytes()
    {
        byte[] ph = [0x0A, 0xF4, 0x01, 0x02, 0x0A, 0xF4, 0x01, 0x03, 0x00, 0x11, 0x00, 0x1A];

        var sum = InternetChecksum.PseudoHeader(Addr.Pod1, Addr.Pod2, Ipv4Header.ProtocolUdp, 26);

        Assert.Equal(InternetChecksum.FoldToNetworkOrder(InternetChecksum.Add(ph)), InternetChecksum.FoldToNetworkOrder(sum));
    }
}
