using FastOverlay.Tables;
using FastOverlay.Wire;
using Xunit;

namespace FastOverlay.Tests.Tables;

public class RouteTableTests
{
    private static uint Ip(string text) => Ipv4Address.Parse(text).Value;
    private static Ipv4Prefix P(string text) => Ipv4Prefix.Parse(text);

    private static RouteTable Table(params (string Prefix, uint Value)[] routes)
    {
        var builder = new RouteTableBuilder(RouteTable.Empty);
        foreach (var (prefix, value) in routes) builder.Add(P(prefix), value);
        return builder.Build();
    }

    [Fact]
    public void EmptyTableHasNoRoutes()
    {
        var t = RouteTable.Empty;
        Assert.Equal(0, t.Count);
        Assert.Equal(RouteTable.NoRoute, t.Lookup(0));
        Assert.Equal(RouteTable.NoRoute, t.Lookup(Ip("10.244.1.2")));
        Assert.Equal(RouteTable.NoRoute, t.Lookup(uint.MaxValue));
    }

    [Fact]
    public void DefaultRouteCoversEverything()
    {
        var t = Table(("0.0.0.0/0", 7));
        Assert.Equal(1, t.Count);
        foreach (var a in new[] { 0u, 1u, Ip("10.0.0.1"), Ip("127.255.255.255"), Ip("128.0.0.0"), uint.MaxValue })
            Assert.Equal(7u, t.Lookup(a));
    }

    [Fact]
    public void DefaultRouteLosesToLongerPrefixes()
    {
        var t = Table(("0.0.0.0/0", 1), ("10.0.0.0/8", 2), ("10.244.0.0/16", 3), ("10.244.1.0/24", 4), ("10.244.1.128/25", 5));
        Assert.Equal(1u, t.Lookup(Ip("11.0.0.1")));
        Assert.Equal(2u, t.Lookup(Ip("10.1.0.1")));
        Assert.Equal(3u, t.Lookup(Ip("10.244.2.1")));
        Assert.Equal(4u, t.Lookup(Ip("10.244.1.127")));
        Assert.Equal(5u, t.Lookup(Ip("10.244.1.128")));
        Assert.Equal(5u, t.Lookup(Ip("10.244.1.255")));
        Assert.Equal(3u, t.Lookup(Ip("10.244.2.0")));
    }

    [Fact]
    public void HostRouteMatchesOnlyItsAddress()
    {
        var t = Table(("10.244.1.7/32", 42));
        Assert.Equal(42u, t.Lookup(Ip("10.244.1.7")));
        Assert.Equal(RouteTable.NoRoute, t.Lookup(Ip("10.244.1.6")));
        Assert.Equal(RouteTable.NoRoute, t.Lookup(Ip("10.244.1.8")));
        Assert.Equal(RouteTable.NoRoute, t.Lookup(Ip("10.244.0.7")));
    }

    [Fact]
    public void HostRouteInsideShorterRoutes()
    {
        var t = Table(("10.244.1.0/24", 1), ("10.244.1.7/32", 2), ("0.0.0.0/0", 3));
        Assert.Equal(2u, t.Lookup(Ip("10.244.1.7")));
        Assert.Equal(1u, t.Lookup(Ip("10.244.1.6")));
        Assert.Equal(3u, t.Lookup(Ip("10.244.2.7")));
    }

    [Fact]
    public void HostRoutesAtTheEndsOfTheAddressSpace()
    {
        var t = Table(("0.0.0.0/32", 1), ("255.255.255.255/32", 2));
        Assert.Equal(1u, t.Lookup(0));
        Assert.Equal(2u, t.Lookup(uint.MaxValue));
        Assert.Equal(RouteTable.NoRoute, t.Lookup(1));
        Assert.Equal(RouteTable.NoRoute, t.Lookup(uint.MaxValue - 1));
    }

    [Fact]
    public void ValueZeroIsARouteNotAMiss()
    {
        var t = Table(("10.0.0.0/8", 0), ("10.1.1.1/32", 0));
        Assert.Equal(0u, t.Lookup(Ip("10.9.9.9")));
        Assert.Equal(0u, t.Lookup(Ip("10.1.1.1")));
        Assert.Equal(RouteTable.NoRoute, t.Lookup(Ip("11.0.0.0")));
    }

    [Fact]
    public void MaxValueRoundTrips()
    {
        var t = Table(("10.0.0.0/8", RouteTable.MaxValue), ("10.1.1.0/30", RouteTable.MaxValue - 1));
        Assert.Equal(RouteTable.MaxValue, t.Lookup(Ip("10.0.0.1")));
        Assert.Equal(RouteTable.MaxValue - 1, t.Lookup(Ip("10.1.1.3")));
    }

    [Fact]
    public void ValueAboveMaxThrows()
    {
        var builder = new RouteTableBuilder(RouteTable.Empty);
        Assert.Throws<ArgumentOutOfRangeException>(() => builder.Add(P("10.0.0.0/8"), RouteTable.MaxValue + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => builder.Add(P("10.0.0.0/32"), uint.MaxValue));
        // The failed adds left nothing behind.
        Assert.Equal(0, builder.Count);
        Assert.Equal(RouteTable.NoRoute, builder.Build().Lookup(Ip("10.0.0.0")));
    }

    [Theory]
    [InlineData("10.244.1.0/24", "10.244.1.7/32", "10.244.1.7")]
    [InlineData("10.244.0.0/16", "10.244.1.0/24", "10.244.1.9")]
    [InlineData("10.0.0.0/8", "10.244.0.0/16", "10.244.200.1")]
    [InlineData("0.0.0.0/0", "10.0.0.0/8", "10.3.2.1")]
    [InlineData("10.244.1.0/25", "10.244.1.64/26", "10.244.1.70")]
    [InlineData("0.0.0.0/0", "10.244.1.64/26", "10.244.1.70")]
    [InlineData("10.0.0.0/7", "10.0.0.0/9", "10.1.2.3")]
    public void DeleteRestoresTheNextShorterCoveringRoute(string shorter, string longer, string address)
    {
        var b = new RouteTableBuilder(RouteTable.Empty);
        b.Add(P(shorter), 1);
        b.Add(P(longer), 2);
        var with = b.Build();
        Assert.Equal(2u, with.Lookup(Ip(address)));
        Assert.True(b.Remove(P(longer)));
        var without = b.Build();
        Assert.Equal(1u, without.Lookup(Ip(address)));
        Assert.Equal(1, without.Count);
        Assert.False(without.TryGetRoute(P(longer), out _));
        // And removing the shorter one too leaves nothing.
        Assert.True(b.Remove(P(shorter)));
        Assert.Equal(RouteTable.NoRoute, b.Build().Lookup(Ip(address)));
    }

    [Fact]
    public void DeleteSkipsToTheLongestRemainingCover()
    {
        // /8, /16 and /24 cover the /32; with /24 gone, deleting /32 must fall back to /16, not /8.
        var b = new RouteTableBuilder(RouteTable.Empty);
        b.Add(P("10.0.0.0/8"), 8);
        b.Add(P("10.244.0.0/16"), 16);
        b.Add(P("10.244.1.0/24"), 24);
        b.Add(P("10.244.1.7/32"), 32);
        b.Remove(P("10.244.1.0/24"));
        var t = b.Build();
        Assert.Equal(32u, t.Lookup(Ip("10.244.1.7")));
        Assert.Equal(16u, t.Lookup(Ip("10.244.1.8")));
        b.Remove(P("10.244.1.7/32"));
        t = b.Build();
        Assert.Equal(16u, t.Lookup(Ip("10.244.1.7")));
    }

    [Fact]
    public void DeleteOfShorterRouteKeepsLongerOnes()
    {
        var b = new RouteTableBuilder(RouteTable.Empty);
        b.Add(P("10.244.1.0/24"), 1);
        b.Add(P("10.244.1.128/25"), 2);
        b.Add(P("10.244.1.7/32"), 3);
        b.Remove(P("10.244.1.0/24"));
        var t = b.Build();
        Assert.Equal(2u, t.Lookup(Ip("10.244.1.200")));
        Assert.Equal(3u, t.Lookup(Ip("10.244.1.7")));
        Assert.Equal(RouteTable.NoRoute, t.Lookup(Ip("10.244.1.8")));
    }

    [Fact]
    public void ReplacingAValueKeepsCountAndChangesLookups()
    {
        var b = new RouteTableBuilder(RouteTable.Empty);
        b.Add(P("10.244.0.0/16"), 1);
        b.Add(P("10.244.1.4/30"), 2);
        var v1 = b.Build();
        b.Add(P("10.244.0.0/16"), 10);
        b.Add(P("10.244.1.4/30"), 20);
        var v2 = b.Build();
        Assert.Equal(2, v2.Count);
        Assert.Equal(10u, v2.Lookup(Ip("10.244.9.9")));
        Assert.Equal(20u, v2.Lookup(Ip("10.244.1.5")));
        Assert.True(v2.TryGetRoute(P("10.244.1.4/30"), out var value));
        Assert.Equal(20u, value);
        // The published version keeps the old values.
        Assert.Equal(1u, v1.Lookup(Ip("10.244.9.9")));
        Assert.Equal(2u, v1.Lookup(Ip("10.244.1.5")));
    }

    [Fact]
    public void ReplacingAShortRouteDoesNotClobberLongerOnes()
    {
        var b = new RouteTableBuilder(RouteTable.Empty);
        b.Add(P("10.0.0.0/8"), 1);
        b.Add(P("10.1.0.0/16"), 2);
        b.Add(P("10.1.1.1/32"), 3);
        b.Add(P("10.0.0.0/8"), 4);
        var t = b.Build();
        Assert.Equal(4u, t.Lookup(Ip("10.2.0.0")));
        Assert.Equal(2u, t.Lookup(Ip("10.1.2.0")));
        Assert.Equal(3u, t.Lookup(Ip("10.1.1.1")));
    }

    [Fact]
    public void RemovingANonexistentPrefixReturnsFalse()
    {
        var b = new RouteTableBuilder(RouteTable.Empty);
        Assert.False(b.Remove(P("10.0.0.0/8")));
        b.Add(P("10.0.0.0/8"), 1);
        b.Add(P("10.1.1.0/25"), 2);
        Assert.False(b.Remove(P("10.0.0.0/9")));   // same address, other length
        Assert.False(b.Remove(P("10.0.0.0/7")));
        Assert.False(b.Remove(P("10.1.1.0/26")));
        Assert.False(b.Remove(P("10.1.1.128/25")));
        Assert.Equal(2, b.Count);
        var t = b.Build();
        Assert.Equal(1u, t.Lookup(Ip("10.0.0.1")));
        Assert.Equal(2u, t.Lookup(Ip("10.1.1.1")));
        Assert.True(b.Remove(P("10.0.0.0/8")));
        Assert.False(b.Remove(P("10.0.0.0/8")));   // twice
    }

    [Fact]
    public void CountTracksAddsReplacesAndRemoves()
    {
        var b = new RouteTableBuilder(RouteTable.Empty);
        Assert.Equal(0, b.Count);
        b.Add(P("10.0.0.0/8"), 1);
        b.Add(P("10.0.0.0/16"), 1);
        b.Add(P("10.0.0.0/32"), 1);
        Assert.Equal(3, b.Count);
        b.Add(P("10.0.0.0/16"), 2);
        Assert.Equal(3, b.Count);
        var t3 = b.Build();
        b.Remove(P("10.0.0.0/8"));
        Assert.Equal(2, b.Count);
        var t2 = b.Build();
        Assert.Equal(3, t3.Count);
        Assert.Equal(2, t2.Count);
        Assert.Equal(2, t2.Routes.Count);
        b.Clear();
        Assert.Equal(0, b.Count);
        var t0 = b.Build();
        Assert.Equal(0, t0.Count);
        Assert.Equal(RouteTable.NoRoute, t0.Lookup(0x0A00_0000));
        Assert.Equal(1u, t2.Lookup(0x0A00_0000));
    }

    [Fact]
    public void PrefixHostBitsAreIgnored()
    {
        // Ipv4Prefix clears host bits; the table must treat 10.1.2.3/8 as 10.0.0.0/8.
        var b = new RouteTableBuilder(RouteTable.Empty);
        b.Add(new Ipv4Prefix(Ip("10.1.2.3"), 8), 5);
        b.Add(new Ipv4Prefix(Ip("10.1.2.255"), 25), 6);
        var t = b.Build();
        Assert.Equal(5u, t.Lookup(Ip("10.200.0.0")));
        Assert.Equal(6u, t.Lookup(Ip("10.1.2.128")));
        Assert.True(b.Remove(P("10.0.0.0/8")));
        Assert.True(b.Remove(P("10.1.2.128/25")));
    }

    [Fact]
    public void SecondLevelGroupsFoldBackAndAreReused()
    {
        // Many /32s in different /24s, all removed, then re-added: lookups stay right and groups are recycled.
        var b = new RouteTableBuilder(RouteTable.Empty);
        b.Add(P("10.0.0.0/8"), 1);
        for (uint i = 0; i < 64; i++) b.Add(new Ipv4Prefix(0x0A00_0000u | (i << 8) | i, 32), 100 + i);
        var full = b.Build();
        var groups = full.Groups.Count(g => g is not null);
        Assert.Equal(64, groups);
        for (uint i = 0; i < 64; i++) Assert.True(b.Remove(new Ipv4Prefix(0x0A00_0000u | (i << 8) | i, 32)));
        var folded = b.Build();
        Assert.Equal(0, folded.Groups.Count(g => g is not null));
        for (uint i = 0; i < 64; i++) Assert.Equal(1u, folded.Lookup(0x0A00_0000u | (i << 8) | i));
        for (uint i = 0; i < 64; i++) b.Add(new Ipv4Prefix(0x0A00_0000u | (i << 8) | (255 - i), 32), 200 + i);
        var again = b.Build();
        Assert.Equal(64, again.Groups.Length);   // freed indices reused, not appended
        for (uint i = 0; i < 64; i++)
        {
            Assert.Equal(200 + i, again.Lookup(0x0A00_0000u | (i << 8) | (255 - i)));
            Assert.Equal(1u, again.Lookup(0x0A00_0000u | (i << 8) | i));
            Assert.Equal(100 + i, full.Lookup(0x0A00_0000u | (i << 8) | i));
            Assert.Equal(1u, full.Lookup(0x0A00_0000u | (i << 8) | (255 - i)));
        }
    }

    [Fact]
    public void UpdatesCopyOnlyTheChunksTheyTouch()
    {
        var b = new RouteTableBuilder(RouteTable.Empty);
        b.Add(P("0.0.0.0/0"), 1);
        b.Add(P("10.244.0.0/16"), 2);
        b.Add(P("192.168.1.0/24"), 3);
        var v1 = b.Build();
        var v1Chunks = (uint[][])v1.Chunks.Clone();
        var snapshot10 = (uint[])v1.Chunks[10].Clone();

        var b2 = new RouteTableBuilder(v1);
        b2.Add(P("10.244.1.0/25"), 4);
        var v2 = b2.Build();

        Assert.Equal(4u, v2.Lookup(Ip("10.244.1.1")));
        Assert.Equal(2u, v1.Lookup(Ip("10.244.1.1")));
        Assert.NotSame(v1.Chunks[10], v2.Chunks[10]);
        Assert.Equal(snapshot10, v1.Chunks[10]);
        for (var c = 0; c < RouteTable.ChunkCount; c++)
        {
            Assert.Same(v1Chunks[c], v1.Chunks[c]);
            if (c != 10) Assert.Same(v1.Chunks[c], v2.Chunks[c]);
        }
        // Chunks under the default route alone are one shared array.
        Assert.Same(v1.Chunks[11], v1.Chunks[200]);
    }

    [Fact]
    public void ShortPrefixSpanningManyChunks()
    {
        // /4 covers 16 chunks; /7 inside; a /24 inside the /7 makes one of them non-uniform.
        var b = new RouteTableBuilder(RouteTable.Empty);
        b.Add(P("10.10.10.0/24"), 3);
        b.Add(P("0.0.0.0/4"), 1);
        b.Add(P("10.0.0.0/7"), 2);
        var t = b.Build();
        Assert.Equal(1u, t.Lookup(Ip("0.0.0.0")));
        Assert.Equal(1u, t.Lookup(Ip("15.255.255.255")));
        Assert.Equal(RouteTable.NoRoute, t.Lookup(Ip("16.0.0.0")));
        Assert.Equal(2u, t.Lookup(Ip("11.255.255.255")));
        Assert.Equal(3u, t.Lookup(Ip("10.10.10.10")));
        Assert.Equal(2u, t.Lookup(Ip("10.10.11.10")));
        b.Remove(P("10.0.0.0/7"));
        t = b.Build();
        Assert.Equal(1u, t.Lookup(Ip("11.0.0.0")));
        Assert.Equal(1u, t.Lookup(Ip("10.10.11.10")));
        Assert.Equal(3u, t.Lookup(Ip("10.10.10.10")));
        b.Remove(P("0.0.0.0/4"));
        t = b.Build();
        Assert.Equal(RouteTable.NoRoute, t.Lookup(Ip("11.0.0.0")));
        Assert.Equal(3u, t.Lookup(Ip("10.10.10.10")));
    }

    [Fact]
    public void BatchLookupRejectsShortOutput()
    {
        var t = Table(("10.0.0.0/8", 1));
        var addresses = new uint[9];
        Assert.Throws<ArgumentException>(() => t.Lookup(addresses, new uint[8]));
        Assert.Throws<ArgumentException>(() => t.LookupScalar(addresses, new uint[8]));
    }

    [Fact]
    public void BatchLookupCoversBothGatherPathsAndGroupLanes()
    {
        var t = Table(("10.0.0.0/8", 1), ("10.244.1.0/24", 2), ("10.244.1.128/25", 3), ("10.244.1.7/32", 4), ("192.168.0.0/16", 5), ("0.0.0.0/1", 6));
        // Same first octet in all 8 lanes, two lanes through a second-level group.
        uint[] same = [Ip("10.0.0.1"), Ip("10.244.1.7"), Ip("10.244.1.200"), Ip("10.244.1.8"), Ip("10.9.9.9"), Ip("10.244.2.1"), Ip("10.255.255.255"), Ip("10.244.1.127")];
        uint[] sameExpected = [1, 4, 3, 2, 1, 1, 1, 2];
        // Mixed octets, a miss, a group lane and the first/last addresses.
        uint[] mixed = [Ip("192.168.3.4"), Ip("10.244.1.7"), Ip("200.0.0.1"), 0, uint.MaxValue, Ip("127.0.0.1"), Ip("10.244.1.129"), Ip("192.169.0.0")];
        uint[] mixedExpected = [5, 4, RouteTable.NoRoute, 6, RouteTable.NoRoute, 6, 3, RouteTable.NoRoute];
        // Lanes 0-3 share an octet, lanes 4-7 do not: the one-gather test must look at all eight lanes.
        uint[] half = [Ip("10.0.0.1"), Ip("10.244.1.7"), Ip("10.244.1.200"), Ip("10.9.9.9"), Ip("192.168.3.4"), Ip("200.0.0.1"), Ip("127.0.0.1"), Ip("10.244.1.8")];
        uint[] halfExpected = [1, 4, 3, 1, 5, RouteTable.NoRoute, 6, 2];
        foreach (var (addresses, expected) in new[] { (same, sameExpected), (mixed, mixedExpected), (half, halfExpected) })
        {
            var batch = new uint[8];
            var scalar = new uint[8];
            t.Lookup(addresses, batch);
            t.LookupScalar(addresses, scalar);
            Assert.Equal(expected, batch);
            Assert.Equal(expected, scalar);
            // And the vector body followed by a scalar tail (8 + 5 lanes).
            uint[] longer = [.. addresses, .. addresses[..5]];
            var tail = new uint[13];
            t.Lookup(longer, tail);
            Assert.Equal([.. expected, .. expected[..5]], tail);
        }
    }
}
