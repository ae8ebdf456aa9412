using FastOverlay.Pipeline;
using FastOverlay.Pipeline.Stages;
using FastOverlay.Ports;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// UDP GSO and GRO on the underlay port, between two namespaces joined by a veth pair (<see cref="UnderlayLink"/>).
/// A UDP_SEGMENT send crosses a veth as one GSO skb: a plain socket gets it split by the kernel, a UDP_GRO socket
/// gets it whole with the segment size in a cmsg, which the port must split back.
/// </summary>
[Collection("netns")]
public sealed class UdpUnderlayOffloadTests
{
    private static readonly UdpUnderlayOptions OneSocket = new() { TransmitSockets = 1 };

    private static List<byte[]> Frames(EncapTemplate template, int first, int count, int datagram, ushort sourcePort = 50000) =>
        Enumerable.Range(first, count).Select(i => UnderlayLink.Frame(template, sourcePort, i, datagram)).ToList();

    [SkippableFact]
    public void Equal_datagrams_and_a_shorter_tail_leave_as_one_GSO_message_a_plain_socket_gets_split()
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var link = new UnderlayLink();
        var pool = new PacketPool(256);
        var a = link.PortA(pool, OneSocket);
        var receiver = link.PlainB(UnderlayLink.AddressB);
        Assert.StartsWith("udp gso on (64 segments)", a.OffloadSummary);

        var template = UnderlayLink.Template(UnderlayLink.AddressB);
        var frames = Frames(template, 0, 20, 1000);
        frames.Add(UnderlayLink.Frame(template, 50000, 20, 300));
        PortDriver.TransmitAll(a, pool, frames);
        var got = UnderlayLink.ReceiveAll(receiver, 21);

        Assert.Equal(21, got.Count);
        for (var i = 0; i < frames.Count; i++) Assert.Equal(frames[i][UdpUnderlayPort.PayloadOffset..], got[i].Data);
        Assert.All(got, d => Assert.True(d.Data.Length <= 1000));
        Assert.Equal(1, a.Counters.TxGsoMessages);
        Assert.Equal(21, a.Counters.TxFrames);
        Assert.Equal(0, pool.InUse);
    }

    [SkippableFact]
    public void A_GRO_port_splits_coalesced_messages_back_into_the_original_datagrams()
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var link = new UnderlayLink();
        var pool = new PacketPool(1024);
        var a = link.PortA(pool, OneSocket);
        var b = link.PortB(pool);
        Assert.Contains("udp gro on", b.OffloadSummary);

        var template = UnderlayLink.Template(UnderlayLink.AddressB);
        // Three groups (64 full, 30 + tail, 5 small) and a lone datagram: each must come back as sent.
        var frames = Frames(template, 0, 64, 1400).Concat(Frames(template, 64, 30, 700)).Append(UnderlayLink.Frame(template, 50000, 94, 123))
            .Concat(Frames(template, 95, 5, 40)).Append(UnderlayLink.Frame(template, 50000, 100, 1472)).ToList();
        PortDriver.TransmitAll(a, pool, frames);
        var got = PortDriver.Receive(b, pool, frames.Count, UnderlayLink.Timeout);

        Assert.Equal(frames.Count, got.Count);
        var node = UnderlayLink.Node(UnderlayLink.AddressB);
        for (var i = 0; i < frames.Count; i++)
        {
            Assert.Equal(DropReason.None, VxlanDecap.Decapsulate(node, got[i], out var outer, out var inner, out var source, out _));
            Assert.Equal(UnderlayLink.AddressA.Value, source);
            Assert.Equal(frames[i][UdpUnderlayPort.PayloadOffset..], got[i][UdpUnderlayPort.PayloadOffset..]);
            Assert.Equal(frames[i].Length - outer, inner);
            Assert.Equal(UnderlayLink.VxlanPort, UdpHeader.SourcePort(got[i].AsSpan(Ethernet.HeaderLength + Ipv4Header.MinLength)));
        }
        Assert.Equal(4, a.Counters.TxGsoMessages);
        Assert.True(b.Counters.RxGroMessages >= 3, $"{b.Counters.RxGroMessages} coalesced messages");
        Assert.Equal(frames.Count, b.Counters.RxFrames);
        Assert.Equal(0, pool.InUse);
    }

    [SkippableTheory]
    [InlineData(1)]
    [InlineData(4)]
    public void Mixed_destinations_and_lengths_are_grouped_and_arrive_in_order(int transmitSockets)
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var link = new UnderlayLink();
        var pool = new PacketPool(2048);
        var a = link.PortA(pool, new UdpUnderlayOptions { TransmitSockets = transmitSockets });
        (Ipv4Address Ip, ushort Port)[] destinations = [(UnderlayLink.AddressB, 8472), (UnderlayLink.AddressB, 8473), (UnderlayLink.AddressB2, 8472), (UnderlayLink.AddressB2, 8473)];
        var receivers = destinations.Select(d => link.PlainB(d.Ip, d.Port)).ToArray();
        var templates = destinations.Select(d => UnderlayLink.Template(d.Ip, d.Port)).ToArray();
        int[] lengths = [26, 100, 700, 1400, 1472];

        var random = new Random(7348 + transmitSockets);
        var sequence = 0;
        for (var round = 0; round < 8; round++)
        {
            // Runs of one (destination, flow, length), so groups form, broken up at random places.
            var sent = new List<(int Destination, ushort Flow, byte[] Frame)>();
            while (sent.Count < 400)
            {
                var d = random.Next(destinations.Length);
                var flow = (ushort)(50000 + random.Next(6));
                var length = lengths[random.Next(lengths.Length)];
                var run = random.Next(1, 90);
                for (var i = 0; i < run; i++)
                {
                    var tail = i == run - 1 && random.Next(3) == 0;
                    sent.Add((d, flow, UnderlayLink.Frame(templates[d], flow, sequence++, tail ? random.Next(26, length + 1) : length)));
                }
            }
            PortDriver.TransmitAll(a, pool, sent.Select(s => s.Frame));
            for (var d = 0; d < destinations.Length; d++)
            {
                var expected = sent.Where(s => s.Destination == d).ToList();
                var got = UnderlayLink.ReceiveAll(receivers[d], expected.Count);
                Assert.Equal(expected.Count, got.Count);
                // The same datagrams, byte for byte; in order per destination with one socket, per flow with several
                // (a flow keeps its socket; sockets are sent one after the other).
                Assert.Equal(expected.Select(e => e.Frame[UdpUnderlayPort.PayloadOffset..]).OrderBy(x => UnderlayLink.Sequence(x)), got.Select(g => g.Data).OrderBy(x => UnderlayLink.Sequence(x)));
                var bytesById = got.ToDictionary(g => UnderlayLink.Sequence(g.Data), g => g.From.Port);
                foreach (var flow in expected.GroupBy(e => transmitSockets == 1 ? 0 : e.Flow))
                {
                    var order = flow.Select(e => UnderlayLink.Sequence(e.Frame.AsSpan(UdpUnderlayPort.PayloadOffset))).ToList();
                    Assert.Equal(order, got.Select(g => UnderlayLink.Sequence(g.Data)).Where(order.Contains).ToList());
                    Assert.Single(order.Select(id => bytesById[id]).Distinct());
                }
            }
        }
        Assert.True(a.Counters.TxGsoMessages > 8, $"{a.Counters.TxGsoMessages} GSO messages");
        Assert.Equal(sequence, a.Counters.TxFrames);
        Assert.Equal(0, a.Counters.TxErrors);
        Assert.Equal(0, pool.InUse);
    }

    [SkippableFact]
    public void With_both_kill_switches_datagrams_go_one_by_one_as_before()
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var link = new UnderlayLink();
        var pool = new PacketPool(1024);
        var off = new UdpUnderlayOptions { Gso = false, Gro = false, TransmitSockets = 1 };
        var a = link.PortA(pool, off);
        var b = link.PortB(pool, off);
        Assert.Equal("udp gso off (disabled by option), udp gro off (disabled by option), 1 transmit socket (the VXLAN port's)", a.OffloadSummary);
        Assert.False(a.GsoEnabled);
        Assert.False(b.GroEnabled);

        var frames = Frames(UnderlayLink.Template(UnderlayLink.AddressB), 0, 200, 1000);
        PortDriver.TransmitAll(a, pool, frames);
        var batches = new List<int>();
        var got = PortDriver.Receive(b, pool, frames.Count, UnderlayLink.Timeout, batches);

        Assert.Equal(frames.Count, got.Count);
        for (var i = 0; i < frames.Count; i++) Assert.Equal(frames[i][UdpUnderlayPort.PayloadOffset..], got[i][UdpUnderlayPort.PayloadOffset..]);
        Assert.True(batches.Max() > 16, $"recvmmsg straight into pool buffers, batches {string.Join(",", batches)}");
        Assert.Equal(0, a.Counters.TxGsoMessages);
        Assert.Equal(0, b.Counters.RxGroMessages);
        Assert.Equal(0, pool.InUse);
    }

    [SkippableFact]
    public void A_short_burst_or_an_empty_pool_keeps_the_rest_of_a_coalesced_message_for_the_next_call()
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var link = new UnderlayLink();
        var poolA = new PacketPool(256);
        var poolB = new PacketPool(8);
        var a = link.PortA(poolA, OneSocket);
        var b = link.PortB(poolB);
        var template = UnderlayLink.Template(UnderlayLink.AddressB);

        var frames = Frames(template, 0, 40, 500);
        PortDriver.TransmitAll(a, poolA, frames);
        Assert.True(PortDriver.WaitReadable(b.FileDescriptor, 3000));
        var handles = new int[3];
        var got = new List<byte[]>();
        // Each call after the first takes from what the port kept: no system call needed, nothing waits.
        while (got.Count < 40)
        {
            var n = b.Receive(handles);
            Assert.Equal(Math.Min(3, 40 - got.Count), n);
            foreach (var h in handles.AsSpan(0, n))
            {
                got.Add(poolB.Frame(h).ToArray());
                poolB.Free(h);
            }
        }
        Assert.Equal(1, b.Counters.RxGroMessages);
        Assert.Equal(0, b.Receive(handles));

        // The pool runs dry mid-message: 8 buffers for 40 datagrams, handed out 8 at a time, none lost.
        PortDriver.TransmitAll(a, poolA, Frames(template, 40, 40, 500));
        Assert.True(PortDriver.WaitReadable(b.FileDescriptor, 3000));
        var wide = new int[64];
        while (got.Count < 80)
        {
            var n = b.Receive(wide);
            Assert.Equal(Math.Min(8, 80 - got.Count), n);
            foreach (var h in wide.AsSpan(0, n)) got.Add(poolB.Frame(h).ToArray());
            poolB.Free(wide.AsSpan(0, n));
        }
        Assert.True(b.Counters.RxNoBuffer > 0);
        Assert.Equal(Enumerable.Range(0, 80), got.Select(f => UnderlayLink.Sequence(f.AsSpan(UdpUnderlayPort.PayloadOffset))));
        Assert.Equal(0, poolB.InUse);
    }
}
