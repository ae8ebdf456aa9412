using System.Buffers.Binary;
using FastOverlay.Wire;
using FsCheck.Xunit;
using Xunit;

namespace FastOverlay.Tests.Wire;

public class InternetChecksumProperties
{
    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 1000)]
    public void ComputeEqualsTheReference(byte[] data)
    {
        Assert.Equal(InternetChecksumTests.Reference(data), InternetChecksum.Compute(data));
    }

    /// <summary>
    /// Each vector kernel, run directly (not only the one the dispatcher picks here), and the dispatcher fold to the
    /// scalar loop's value for any bytes, start alignment and running sum; the scalar loop equals the textbook sum.
    /// </summary>
    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 1000)]
    public void EveryPathFoldsLikeTheScalarLoop(ChecksumCase c)
    {
        var buffer = new byte[c.Offset + c.Data.Length];
        c.Data.CopyTo(buffer, c.Offset);
        ReadOnlySpan<byte> data = buffer.AsSpan(c.Offset);

        var scalar = InternetChecksum.FoldToNetworkOrder(InternetChecksum.AddScalar(data, c.Sum));
        foreach (var (name, add) in InternetChecksumTests.Paths)
            Assert.True(scalar == InternetChecksum.FoldToNetworkOrder(add(data, c.Sum)), name);
        Assert.Equal(InternetChecksumTests.Reference(data), InternetChecksum.Finish(InternetChecksum.AddScalar(data, 0)));
    }

    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 500)]
    public void DataWithItsChecksumInsertedValidates(byte[] data, ushort position)
    {
        var buffer = new byte[Math.Max(2, data.Length + (data.Length & 1))];
        data.CopyTo(buffer, 0);
        var offset = position % (buffer.Length / 2) * 2; // checksum fields are 16-bit aligned
        buffer[offset] = 0;
        buffer[offset + 1] = 0;

        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(offset), InternetChecksum.Compute(buffer));

        Assert.True(InternetChecksum.IsValid(buffer));
    }

    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 500)]
    public void AddChainsAtAnyEvenSplit(byte[] data, ushort at)
    {
        var split = data.Length == 0 ? 0 : at % (data.Length + 1) & ~1;

        var sum = InternetChecksum.Add(data.AsSpan(split), InternetChecksum.Add(data.AsSpan(0, split)));

        Assert.Equal(InternetChecksum.Compute(data), InternetChecksum.Finish(sum));
    }

    /// <summary>
    /// RFC 1624 eqn. 3 on a real header (never all zero: the version nibble is 4) equals recomputing the checksum.
    /// (Only for all-zero data would eqn. 3 give 0x0000 where recomputation gives 0xFFFF; no IPv4 header is.)
    /// </summary>
    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 1000)]
    public void UpdateOfAWordEqualsRecomputation(Ipv4HeaderBytes header, ushort word, ushort newValue)
    {
        var ip = header.Bytes;
        var words = ip.Length / 2;
        // Any word but the version/IHL word (keeps the header an IPv4 header) and the checksum itself.
        var index = 1 + word % (words - 1);
        if (index == Ipv4Header.OffsetChecksum / 2) index++; // words - 1 >= 9, so index + 1 is in the header
        var offset = index * 2;
        var oldValue = BinaryPrimitives.ReadUInt16BigEndian(ip.AsSpan(offset));

        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(offset), newValue);
        var updated = InternetChecksum.Update(Ipv4Header.Checksum(ip), oldValue, newValue);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(Ipv4Header.OffsetChecksum), updated);

        var recomputed = (byte[])ip.Clone();
        Ipv4Header.UpdateChecksum(recomputed);
        Assert.Equal(Ipv4Header.Checksum(recomputed), updated);
        Assert.True(Ipv4Header.HeaderChecksumValid(ip, ip.Length));
    }

    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 1000)]
    public void UpdateOfAnAddressEqualsRecomputation(Ipv4HeaderBytes header, uint newAddress, bool destination)
    {
        var ip = header.Bytes;
        var offset = destination ? Ipv4Header.OffsetDestination : Ipv4Header.OffsetSource;
        var oldAddress = BinaryPrimitives.ReadUInt32BigEndian(ip.AsSpan(offset));

        BinaryPrimitives.WriteUInt32BigEndian(ip.AsSpan(offset), newAddress);
        var updated = InternetChecksum.Update(Ipv4Header.Checksum(ip), oldAddress, newAddress);

        var recomputed = (byte[])ip.Clone();
        Ipv4Header.UpdateChecksum(recomputed);
        Assert.Equal(Ipv4Header.Checksum(recomputed), updated);
    }

    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 500)]
    public void UdpChecksumOfAWrittenDatagramIsAcceptable(uint source, uint destination, ushort sourcePort, ushort destinationPort, byte[] payload)
    {
        var udp = new byte[Math.Min(UdpHeader.Length + payload.Length, ushort.MaxValue)];
        payload.AsSpan(0, udp.Length - UdpHeader.Length).CopyTo(udp.AsSpan(UdpHeader.Length));
        UdpHeader.Write(udp, sourcePort, destinationPort, (ushort)udp.Length);

        var checksum = UdpHeader.ComputeChecksum(source, destination, udp);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(6), checksum);

        Assert.NotEqual(0, checksum); // 0 is sent as 0xFFFF
        Assert.Equal(DropReason.None, UdpHeader.Validate(udp));
        Assert.True(UdpHeader.ChecksumAcceptable(source, destination, udp));
    }
}
