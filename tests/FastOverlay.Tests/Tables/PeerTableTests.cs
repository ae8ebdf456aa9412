using FastOverlay.Tables;
using FastOverlay.Wire;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FastOverlay.Tests.Tables;

public class PeerTableTests
{
    private static Peer NewPeer(string name, uint publicIp, int index = 0) =>
        new(name, new Ipv4Address(publicIp), new Ipv4Prefix(0x0AF4_0000u | ((uint)index << 8), 24), new MacAddress(0x0A58_0000_0000UL | (uint)index));

    [Fact]
    public void EmptyTableFindsNothing()
    {
        Assert.Equal(0, PeerTable.Empty.Count);
        Assert.Equal(0, PeerTable.Empty.All.Length);
        Assert.Equal(-1, PeerTable.Empty.FindByPublicIp(0xC0A8_0001));
        Assert.Equal(-1, PeerTable.Empty.FindByPublicIp(0));
        Assert.Equal(-1, PeerTable.Empty.FindByPublicIp(uint.MaxValue));
    }

    [Fact]
    public void FindByPublicIpHitsAndMisses()
    {
        var peers = new[] { NewPeer("a", 0xC0A8_0001, 1), NewPeer("b", 0xC0A8_0002, 2), NewPeer("c", 0x0A00_0005, 3) };
        var table = new PeerTable(peers);
        Assert.Equal(3, table.Count);
        Assert.Equal(0, table.FindByPublicIp(0xC0A8_0001));
        Assert.Equal(1, table.FindByPublicIp(0xC0A8_0002));
        Assert.Equal(2, table.FindByPublicIp(0x0A00_0005));
        Assert.Equal(-1, table.FindByPublicIp(0xC0A8_0003));
        Assert.Equal(-1, table.FindByPublicIp(0));
        Assert.Equal(-1, table.FindByPublicIp(uint.MaxValue));
        Assert.Same(peers[1], table[1]);
        Assert.Equal("c", table.All[2].Name);
    }

    [Fact]
    public void DuplicatePublicIpThrows()
    {
        var peers = new[] { NewPeer("a", 0xC0A8_0001), NewPeer("b", 0xC0A8_0002), NewPeer("c", 0xC0A8_0001) };
        var ex = Assert.Throws<ArgumentException>(() => new PeerTable(peers));
        Assert.Contains("a", ex.Message);
        Assert.Contains("c", ex.Message);
        Assert.Contains("192.168.0.1", ex.Message);
    }

    [Fact]
    public void PublicIpZeroThrows() =>
        Assert.Throws<ArgumentException>(() => new PeerTable([NewPeer("a", 1), NewPeer("z", 0)]));

    [Fact]
    public void TableIsACopyOfTheInputList()
    {
        var list = new List<Peer> { NewPeer("a", 1), NewPeer("b", 2) };
        var table = new PeerTable(list);
        list[0] = NewPeer("x", 3);
        list.Add(NewPeer("y", 4));
        Assert.Equal(2, table.Count);
        Assert.Equal("a", table[0].Name);
        Assert.Equal(-1, table.FindByPublicIp(3));
        Assert.Equal(0, table.FindByPublicIp(1));
    }

    /// <summary>
    /// Any set of distinct public IPs: each is found at its index, and any other address is not found.
    /// Addresses are drawn from a narrow range too, so neighbours collide in the open-addressing probe.
    /// </summary>
    [Property(MaxTest = 200)]
    public Property FindsEveryPeerAndNothingElse() => Prop.ForAll(
        Arb.From(
            from narrow in Gen.Elements(true, false)
            from ips in Gen.ArrayOf(narrow ? Gen.Choose(1, 64).Select(i => (uint)i) : RouteGen.AnyUint.Where(a => a != 0))
            from others in Gen.ArrayOf(narrow ? Gen.Choose(0, 80).Select(i => (uint)i) : RouteGen.AnyUint)
            select (Ips: ips.Distinct().ToArray(), Others: others)),
        c =>
        {
            var table = new PeerTable([.. c.Ips.Select((ip, i) => NewPeer($"p{i}", ip, i))]);
            Assert.Equal(c.Ips.Length, table.Count);
            for (var i = 0; i < c.Ips.Length; i++)
            {
                Assert.Equal(i, table.FindByPublicIp(c.Ips[i]));
                Assert.Equal(c.Ips[i], table[i].PublicIp.Value);
            }
            var known = c.Ips.ToHashSet();
            foreach (var other in c.Others)
                Assert.Equal(known.Contains(other) ? Array.IndexOf(c.Ips, other) : -1, table.FindByPublicIp(other));
        });
}
