using FastOverlay.Tables.Services;

namespace FastOverlay.Tests.Tables.Services;

public class FragmentTableTests
{
    private const byte Udp = 17, Tcp = 6;

    [Fact]
    public void A_recorded_datagram_is_found_by_its_addresses_id_and_protocol_only()
    {
        var t = new FragmentTable(1000, lifetimeTicks: 100);
        Assert.Equal(1024, t.Capacity);
        t.Record(0x0A000001, 0x0A000002, 77, Udp, 40000, 53, now: 10);

        Assert.True(t.TryFind(0x0A000001, 0x0A000002, 77, Udp, 20, out var sp, out var dp));
        Assert.Equal((40000, 53), (sp, dp));
        Assert.False(t.TryFind(0x0A000001, 0x0A000002, 78, Udp, 20, out _, out _));
        Assert.False(t.TryFind(0x0A000001, 0x0A000002, 77, Tcp, 20, out _, out _));
        Assert.False(t.TryFind(0x0A000002, 0x0A000001, 77, Udp, 20, out _, out _));
        Assert.False(t.TryFind(0x0A000001, 0x0A000003, 77, Udp, 20, out _, out _));
    }

    [Fact]
    public void An_entry_expires_after_its_lifetime_and_a_new_datagram_on_its_slot_replaces_it()
    {
        var t = new FragmentTable(1, lifetimeTicks: 100);
        t.Record(1, 2, 5, Udp, 1000, 2000, now: 10);
        Assert.True(t.TryFind(1, 2, 5, Udp, 109, out _, out _));
        Assert.False(t.TryFind(1, 2, 5, Udp, 110, out _, out _));

        // One slot: the next datagram takes it, the older one is no longer matched.
        t.Record(1, 2, 5, Udp, 1000, 2000, now: 200);
        t.Record(3, 4, 6, Udp, 3000, 4000, now: 201);
        Assert.False(t.TryFind(1, 2, 5, Udp, 202, out _, out _));
        Assert.True(t.TryFind(3, 4, 6, Udp, 202, out var sp, out var dp));
        Assert.Equal((3000, 4000), (sp, dp));
    }

    [Fact]
    public void An_empty_table_matches_nothing_even_an_all_zero_key()
    {
        var t = new FragmentTable(16, lifetimeTicks: 100);
        Assert.False(t.TryFind(0, 0, 0, 0, 0, out _, out _));
    }
}
