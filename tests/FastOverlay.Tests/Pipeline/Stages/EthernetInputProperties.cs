using FastOverlay.Pipeline;
using FastOverlay.Pipeline.Stages;
using FastOverlay.Tests.Pipeline;
using FastOverlay.Wire;
using FsCheck.Xunit;

namespace FastOverlay.Tests.Pipeline.Stages;

/// <summary>
/// The fixed-offset fast path of EthernetInput and the general classifier agree on every frame the fast path
/// takes: same verdict, same destination, same trimmed length. Frames are a valid pod frame with random bytes
/// overwritten and a random length, so both accepting and refusing branches are exercised.
/// </summary>
public class EthernetInputProperties
{
    private static readonly NodeHarness Harness = new();

    private static PortBindings Bindings()
    {
        var bindings = new PortBindings();
        bindings.Attach(null, Harness.Node.State);
        return bindings;
    }

    [Property(MaxTest = 3000)]
    public bool Fast_path_agrees_with_the_general_classifier(byte[]? edits, byte lengthSeed, bool spoofSource, int port)
    {
        var frame = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, spoofSource ? NodeHarness.PodIp(1).Value : NodeHarness.PodIp(0).Value, NodeHarness.PeerB.Subnet.Address + 9, payload: 40);
        edits ??= [];
        // Each pair of bytes is (position, value); positions mostly in the headers.
        for (var k = 0; k + 1 < edits.Length && k < 8; k += 2) frame[edits[k] % 48] = edits[k + 1];
        var length = Math.Min(frame.Length, 20 + lengthSeed % 80);
        port = 1 + Math.Abs(port % 2);

        var pool = new PacketPool(4);
        var fastHandle = Load(pool, frame.AsSpan(0, length));
        var generalHandle = Load(pool, frame.AsSpan(0, length));
        var bindings = Bindings();
        var fastTook = EthernetInput.TryFastIpv4(pool, fastHandle, pool.Frame(fastHandle), NodeHarness.GatewayMac, bindings, port, out var fastDestination, out var fastReason);
        var generalReason = EthernetInput.Classify(pool, generalHandle, pool.Frame(generalHandle), NodeHarness.GatewayMac, bindings, port, out var generalDestination, out var next, out _);
        if (!fastTook) return pool.Meta(fastHandle).Length == length; // declined: touched nothing
        return fastReason == generalReason
            && (fastReason != DropReason.None || (fastDestination == generalDestination && next == NextStage.Ip4Input
                && pool.Meta(fastHandle).Length == pool.Meta(generalHandle).Length && pool.Meta(fastHandle).Offset == pool.Meta(generalHandle).Offset));
    }

    [Fact]
    public void Fast_path_takes_the_common_frame()
    {
        var pool = new PacketPool(2);
        var frame = NodeHarness.UdpFrame(NodeHarness.PodMac(0), NodeHarness.GatewayMac, NodeHarness.PodIp(0).Value, NodeHarness.PeerB.Subnet.Address + 9);
        var h = Load(pool, frame);
        Assert.True(EthernetInput.TryFastIpv4(pool, h, pool.Frame(h), NodeHarness.GatewayMac, Bindings(), 1, out var destination, out var reason));
        Assert.Equal(DropReason.None, reason);
        Assert.Equal(NodeHarness.PeerB.Subnet.Address + 9, destination);
        Assert.Equal(14 + 20 + 8 + 18, pool.Meta(h).Length); // the 60-byte frame's padding is cut
    }

    private static int Load(PacketPool pool, ReadOnlySpan<byte> bytes)
    {
        var h = pool.Allocate();
        bytes.CopyTo(pool.WritableFrame(h));
        pool.SetLength(h, bytes.Length);
        return h;
    }
}
