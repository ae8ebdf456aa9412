using FastOverlay.Offload;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Offload;

public class VxlanSuperDatagramTests
{
    private static byte[] Vxlan(byte[] inner)
    {
        var payload = new byte[VxlanHeader.Length + inner.Length];
        VxlanHeader.Write(payload, 1);
        inner.CopyTo(payload, VxlanHeader.Length);
        return payload;
    }

    [Fact]
    public void A_tunnel_gso_datagram_is_cut_into_inner_segments_within_the_inner_mtu()
    {
        var data = Enumerable.Range(0, 20000).Select(i => (byte)(i * 13)).ToArray();
        var inner = TcpFrames.Tcp(data, seq: 42, flags: TcpFrames.Ack | TcpFrames.Psh, options: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], partial: true);
        var payload = Vxlan(inner);
        Assert.True(VxlanSuperDatagram.IsSuperFrame(payload, 1400));
        Assert.True(VxlanSuperDatagram.IsSuperFrame(payload, 1864));

        Assert.Equal(DropReason.None, VxlanSuperDatagram.Plan(inner, 1450, 1856, out var layout));
        var all = new List<byte>();
        for (var i = 0; i < layout.Segments; i++)
        {
            var buffer = new byte[2048];
            var s = buffer[..GsoSegmenter.WriteSegment(inner, layout, i, buffer, completeChecksum: false)];
            Assert.True(s.Length - Ethernet.HeaderLength <= 1450);
            // Decap finds the partial form and completes it, as L4Checksum.Verify does.
            Assert.Equal(L4ChecksumVerdict.Completed, L4Checksum.Verify(s));
            Assert.True(TcpFrames.ChecksumValid(s));
            Assert.Equal(i == layout.Segments - 1, (TcpFrames.Flags(s) & TcpFrames.Psh) != 0);
            all.AddRange(TcpFrames.Payload(s));
        }
        Assert.Equal(data, all.ToArray());
    }

    [Fact]
    public void A_udp_gro_batch_of_ordinary_datagrams_is_not_a_super_frame()
    {
        var one = Vxlan(TcpFrames.Tcp(new byte[1000], seq: 1));
        var batch = one.Concat(one).Concat(one).ToArray();
        Assert.False(VxlanSuperDatagram.IsSuperFrame(batch, one.Length));
        Assert.False(VxlanSuperDatagram.IsSuperFrame(one, one.Length));
    }

    [Fact]
    public void Inner_protocols_that_cannot_be_cut_are_refused()
    {
        var inner = TcpFrames.Udp(new byte[3000]);
        inner[23] = 47; // GRE
        Assert.Equal(DropReason.GsoUnsupported, VxlanSuperDatagram.Plan(inner, 1450, 1856, out _));
    }
}
