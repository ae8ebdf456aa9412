using System.Globalization;
using FastOverlay.Wire;
using FsCheck.Xunit;
using Xunit;

namespace FastOverlay.Tests.Wire;

public class AddressProperties
{
    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 500)]
    public void MacAddressRoundTrips(ulong value)
    {
        var mac = new MacAddress(value & 0xFFFF_FFFF_FFFFUL);
        var text = mac.ToString();

        Assert.Equal(17, text.Length);
        Assert.Equal(mac, MacAddress.Parse(text));
        Assert.Equal(mac, MacAddress.Parse(text.ToUpperInvariant().Replace(':', '-')));
        var bytes = new byte[6];
        mac.Write(bytes);
        Assert.Equal(mac, MacAddress.Read(bytes));
        Assert.Equal(text, string.Join(':', bytes.Select(b => b.ToString("x2", CultureInfo.InvariantCulture))));
        Assert.Equal((bytes[0] & 1) != 0, mac.IsMulticast);
    }

    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 500)]
    public void Ipv4AddressRoundTrips(uint value)
    {
        var address = new Ipv4Address(value);
        var text = address.ToString();

        Assert.Equal(address, Ipv4Address.Parse(text));
        var bytes = new byte[4];
        address.Write(bytes);
        Assert.Equal(address, Ipv4Address.Read(bytes));
        Assert.Equal(text, string.Join('.', bytes.Select(b => b.ToString(CultureInfo.InvariantCulture))));
    }

    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 300)]
    public void Ipv4AddressWithAnythingAppendedIsRejected(uint value, byte extra)
    {
        var text = Ipv4Address.Format(value);

        Assert.False(Ipv4Address.TryParse(text + ".", out _));
        Assert.False(Ipv4Address.TryParse(text + "." + extra.ToString(CultureInfo.InvariantCulture), out _));
    }

    [Property(Arbitrary = [typeof(WireArbitraries)], MaxTest = 500)]
    public void Ipv4PrefixRoundTrips(uint address, byte lengthSeed)
    {
        var length = lengthSeed % 33;
        var prefix = new Ipv4Prefix(address, length);
        var text = prefix.ToString();

        Assert.Equal(prefix, Ipv4Prefix.Parse(text));
        Assert.True(prefix.Contains(address));
        Assert.True(prefix.Contains(prefix.First));
        Assert.True(prefix.Contains(prefix.Last));
        Assert.Equal(prefix.Address, prefix.Last & prefix.Mask);
        Assert.True(prefix.Contains(prefix));
        Assert.True(prefix.Overlaps(new Ipv4Prefix(address, 32)));
        // The same address with its host bits set is not a prefix (when there are host bits to set).
        if (length < 32)
            Assert.False(Ipv4Prefix.TryParse(Ipv4Address.Format(prefix.Last) + "/" + length.ToString(CultureInfo.InvariantCulture), out _));
    }
}
