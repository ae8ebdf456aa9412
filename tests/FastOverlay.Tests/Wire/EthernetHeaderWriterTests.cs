using FastOverlay.Wire;
using FsCheck.Xunit;

namespace FastOverlay.Tests.Wire;

public class EthernetHeaderWriterTests
{
    [Property(MaxTest = 500)]
    public bool Two_store_writer_equals_the_plain_writer(ulong source, ulong destination, ushort etherType, byte filler)
    {
        var src = new MacAddress(source & 0xFFFF_FFFF_FFFF);
        var dst = new MacAddress(destination & 0xFFFF_FFFF_FFFF);
        var expected = Enumerable.Repeat(filler, 20).ToArray();
        var actual = Enumerable.Repeat(filler, 20).ToArray();
        Ethernet.Write(expected, dst, src, etherType);
        new EthernetHeaderWriter(src, etherType).Write(actual, dst);
        return expected.AsSpan().SequenceEqual(actual);
    }

    [Fact]
    public void Refuses_a_buffer_shorter_than_a_header() =>
        Assert.Throws<ArgumentException>(() => new EthernetHeaderWriter(MacAddress.Zero, Ethernet.TypeIpv4).Write(new byte[13], MacAddress.Broadcast));
}
