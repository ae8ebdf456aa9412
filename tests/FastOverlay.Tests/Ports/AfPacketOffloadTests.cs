using FastOverlay.Offload;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Tests.Offload;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// Offloads through the kernel, between two vnet-header AF_PACKET ports on the two ends of a veth (offloads at
/// their defaults): segments that one port merges into a TSO super-frame cross the veth as one GSO skb, which the
/// other port reads (whole, through the socket queue: it does not fit a 2 KiB ring slot) and cuts again.
/// </summary>
[Collection("netns")]
public sealed class AfPacketOffloadTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    [SkippableTheory]
    [InlineData(PacketRingVersion.V2)]
    [InlineData(PacketRingVersion.V3)]
    public void Segments_merged_on_one_end_arrive_as_one_super_frame_and_are_cut_again(PacketRingVersion ring)
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var ns = new TestNamespace("ao");
        ns.AddVeth("node0", "pod0");
        var pool = new PacketPool(1024);
        using var sender = ns.Enter(() => new AfPacketPort("pod0", pool, new AfPacketOptions { Ring = ring }));
        using var receiver = ns.Enter(() => new AfPacketPort("node0", pool, new AfPacketOptions { Ring = ring }));
        Skip.IfNot(sender.VnetHeader && receiver.VnetHeader, "this kernel has no PACKET_VNET_HDR on rings");

        const int mss = 1400;
        var random = new Random(7);
        var segments = new List<byte[]>();
        for (var i = 0; i < 20; i++)
        {
            var payload = new byte[i == 19 ? 321 : mss];
            random.NextBytes(payload);
            segments.Add(TcpFrames.Tcp(payload, (uint)(1000 + i * mss), i == 19 ? (byte)(TcpFrames.Ack | TcpFrames.Psh) : TcpFrames.Ack, partial: true));
        }
        var handles = PortDriver.Load(pool, segments);
        foreach (var h in handles) pool.Meta(h).Flags = PacketFlags.ChecksumPartial;
        Assert.Equal(handles.Length, sender.Transmit(handles));
        Assert.Equal(1, sender.Counters.TxSuperFrames);
        Assert.Equal(20, sender.Counters.TxSegmentsMerged);

        var flags = new List<PacketFlags>();
        var received = PortDriver.Receive(receiver, pool, 20, Timeout, flags: flags);
        Assert.Equal(20, received.Count);
        Assert.Equal(1, receiver.Counters.RxSuperFrames);
        Assert.All(flags, f => Assert.True((f & PacketFlags.ChecksumPartial) != 0));
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(TcpFrames.Payload(segments[i]), TcpFrames.Payload(received[i]));
            Assert.Equal(TcpFrames.Sequence(segments[i]), TcpFrames.Sequence(received[i]));
            Assert.Equal(TcpFrames.Flags(segments[i]), TcpFrames.Flags(received[i]));
            L4Checksum.Complete(received[i]);
            Assert.True(TcpFrames.ChecksumValid(received[i]), $"segment {i}: checksum");
        }
        Assert.Equal(0, pool.InUse);
    }
}
