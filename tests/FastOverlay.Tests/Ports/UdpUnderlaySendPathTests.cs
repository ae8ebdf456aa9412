using System.Runtime.InteropServices;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Ports.Native;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// The underlay port's transmit sockets, its fallbacks when the kernel refuses a GSO message, buffer ownership
/// when a socket is full, and zero allocation with the offloads on; between two namespaces (<see cref="UnderlayLink"/>).
/// </summary>
[Collection("netns")]
public sealed class UdpUnderlaySendPathTests
{
    private const int Payload = UdpUnderlayPort.PayloadOffset;

    [SkippableFact]
    public void Each_flow_leaves_from_the_source_port_of_its_transmit_socket()
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var link = new UnderlayLink();
        var pool = new PacketPool(512);
        var a = link.PortA(pool, new UdpUnderlayOptions { TransmitSockets = 4 });
        var receiver = link.PlainB(UnderlayLink.AddressB);
        Assert.EndsWith("4 transmit sockets", a.OffloadSummary);
        Assert.Equal(4, a.TransmitPorts.Distinct().Count());
        Assert.DoesNotContain(UnderlayLink.VxlanPort, a.TransmitPorts);

        var template = UnderlayLink.Template(UnderlayLink.AddressB);
        // 16 flows (outer source ports 50000..50015), 5 datagrams each, interleaved.
        var frames = Enumerable.Range(0, 80).Select(i => UnderlayLink.Frame(template, (ushort)(50000 + i % 16), i, 200)).ToList();
        PortDriver.TransmitAll(a, pool, frames);
        var got = UnderlayLink.ReceiveAll(receiver, 80);

        Assert.Equal(80, got.Count);
        var portOf = got.ToDictionary(g => UnderlayLink.Sequence(g.Data), g => g.From.Port);
        for (var flow = 0; flow < 16; flow++)
        {
            var ports = Enumerable.Range(0, 80).Where(i => i % 16 == flow).Select(i => portOf[i]).Distinct().ToList();
            Assert.Single(ports);
            // The socket is the outer source port modulo the socket count.
            Assert.Equal(a.TransmitPorts[(50000 + flow) % 4], ports[0]);
        }
        Assert.Equal(4, portOf.Values.Distinct().Count());
        Assert.Equal(0, pool.InUse);
    }

    /// <summary>
    /// sendmmsg as the kernel would answer it if it refused GSO with EIO: messages up to the first one carrying a
    /// UDP_SEGMENT cmsg go out for real, that one fails. (udp_send_skb says EIO for a device without checksum
    /// offload only before 6.11; since 10154dbded6d it checksums in software, so a test cannot provoke it here.)
    /// </summary>
    private static unsafe SendMmsgCall RefuseGso(Action onRefusal) => (fd, messages, count) =>
    {
        var plain = 0u;
        while (plain < count && messages[plain].Header.ControlLength == 0) plain++;
        if (plain > 0) return LibC.SendMmsg(fd, messages, plain, Linux.MsgDontWait);
        onRefusal();
        Marshal.SetLastPInvokeError(Errno.EIo);
        return -1;
    };

    [SkippableFact]
    public void EIO_on_a_GSO_message_switches_GSO_off_once_and_the_datagrams_go_one_by_one()
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var link = new UnderlayLink();
        var pool = new PacketPool(512);
        var a = link.PortA(pool, new UdpUnderlayOptions { TransmitSockets = 1 });
        var notes = new List<string>();
        a.Log = notes.Add;
        var refusals = 0;
        a.Sender.SendOverride = RefuseGso(() => refusals++);
        var receiver = link.PlainB(UnderlayLink.AddressB);
        var template = UnderlayLink.Template(UnderlayLink.AddressB);
        Assert.True(a.GsoEnabled);

        // A single, then groups: the first group fails, the rest of the window is already grouped, the next burst is not.
        var frames = Enumerable.Range(0, 150).Select(i => UnderlayLink.Frame(template, 50000, i, i == 0 ? 100 : i < 100 ? 800 : 300)).ToList();
        PortDriver.TransmitAll(a, pool, frames.Take(75));
        PortDriver.TransmitAll(a, pool, frames.Skip(75));
        var got = UnderlayLink.ReceiveAll(receiver, 150);

        Assert.Equal(frames.Select(f => f[Payload..]), got.Select(g => g.Data));
        Assert.Equal(1, refusals);
        Assert.False(a.GsoEnabled);
        Assert.Single(notes);
        Assert.Contains("EIO", a.OffloadNote);
        Assert.StartsWith("udp gso off (EIO at run time)", a.OffloadSummary);
        Assert.Equal(0, a.Counters.TxGsoMessages);
        Assert.Equal(150, a.Counters.TxFrames);
        Assert.Equal(0, a.Counters.TxErrors);
        Assert.Equal(0, pool.InUse);
    }

    [SkippableFact]
    public unsafe void When_one_of_several_sockets_is_full_its_frames_before_the_last_sent_one_are_dropped_and_the_rest_returned()
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var link = new UnderlayLink();
        var pool = new PacketPool(512);
        var a = link.PortA(pool, new UdpUnderlayOptions { TransmitSockets = 4 });
        var full = a.TransmitFileDescriptors[1];
        a.Sender.SendOverride = (fd, messages, count) =>
        {
            if (fd != full) return LibC.SendMmsg(fd, messages, count, Linux.MsgDontWait);
            Marshal.SetLastPInvokeError(Errno.EAgain);
            return -1;
        };
        var receiver = link.PlainB(UnderlayLink.AddressB);
        var template = UnderlayLink.Template(UnderlayLink.AddressB);

        // 8 flows in runs of 4; flows 50001 and 50005 use socket 1, whose buffer is full.
        var frames = Enumerable.Range(0, 64).Select(i => UnderlayLink.Frame(template, (ushort)(50000 + i / 4 % 8), i, i % 4 == 3 ? 200 : 600)).ToList();
        var handles = PortDriver.Load(pool, frames);
        var accepted = a.Transmit(handles);
        pool.Free(handles.AsSpan(accepted));
        Assert.Equal(0, pool.InUse);

        var c = a.Counters;
        var got = UnderlayLink.ReceiveAll(receiver, (int)c.TxFrames).Select(g => UnderlayLink.Sequence(g.Data)).ToList();
        Assert.Equal(c.TxFrames, got.Count);
        Assert.Equal(accepted, c.TxFrames + c.TxBusyDropped);
        Assert.True(c.TxBusyDropped > 0);
        Assert.True(accepted < 64);
        Assert.DoesNotContain(got, id => (50000 + id / 4 % 8) % 4 == 1);
        Assert.All(got, id => Assert.True(id < accepted));
        // Socket 0 went first and sent everything; the last frame it sent bounds what the port consumed.
        Assert.Equal(got.Where(id => id / 4 % 8 % 4 == 0).Max() + 1, accepted);
        Assert.Contains(0, got);
    }

    [SkippableFact]
    public void A_GSO_message_over_the_path_MTU_is_split_and_the_datagrams_the_kernel_refuses_are_dropped()
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var link = new UnderlayLink(mtu: 1000);
        var pool = new PacketPool(512);
        var a = link.PortA(pool, new UdpUnderlayOptions { TransmitSockets = 1 });
        var receiver = link.PlainB(UnderlayLink.AddressB);
        var template = UnderlayLink.Template(UnderlayLink.AddressB);

        // 10 datagrams of 1200 bytes (EINVAL as a group: gso_size over the MTU; EMSGSIZE each alone), then 10 that fit.
        var frames = Enumerable.Range(0, 20).Select(i => UnderlayLink.Frame(template, 50000, i, i < 10 ? 1200 : 900)).ToList();
        var handles = PortDriver.Load(pool, frames);
        Assert.Equal(20, a.Transmit(handles));
        var got = UnderlayLink.ReceiveAll(receiver, 10);

        Assert.Equal(frames.Skip(10).Select(f => f[Payload..]), got.Select(g => g.Data));
        Assert.Equal(10, a.Counters.TxErrors);
        Assert.Equal(90, a.Counters.LastErrno); // EMSGSIZE
        Assert.Equal(10, a.Counters.TxFrames);
        Assert.True(a.GsoEnabled);
        Assert.Equal(1, a.Counters.TxGsoMessages);
        Assert.Equal(0, pool.InUse);
    }

    [SkippableTheory]
    [InlineData(1)]
    [InlineData(4)]
    public void A_full_socket_buffer_ends_the_burst_and_every_buffer_is_freed_exactly_once(int transmitSockets)
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var link = new UnderlayLink();
        // A slow qdisc holds the datagrams, still charged to their sockets' send buffers, until those are full.
        link.A.Exec("tc qdisc add dev ul0 root tbf rate 50mbit burst 16kb limit 16mb");
        var pool = new PacketPool(1024);
        var a = link.PortA(pool, new UdpUnderlayOptions { TransmitSockets = transmitSockets, SendBufferBytes = 48 * 1024 });
        var receiver = link.PlainB(UnderlayLink.AddressB);
        var template = UnderlayLink.Template(UnderlayLink.AddressB);

        // 8 flows in runs of 4, so groups of one socket interleave with the others'.
        var frames = Enumerable.Range(0, 800).Select(i => UnderlayLink.Frame(template, (ushort)(50000 + i / 4 % 8), i, 1000)).ToList();
        var handles = PortDriver.Load(pool, frames);
        var accepted = a.Transmit(handles);
        // Ownership: the port freed what it took; the caller frees the rest (a double free would throw here).
        pool.Free(handles.AsSpan(accepted));
        Assert.Equal(0, pool.InUse);
        Assert.InRange(accepted, 1, 799);
        Assert.True(a.Counters.TxBusy >= 1);
        var c = a.Counters;
        Assert.Equal(accepted, c.TxFrames + c.TxErrors + c.TxBusyDropped);
        if (transmitSockets == 1) Assert.Equal(0, c.TxBusyDropped);

        var got = UnderlayLink.ReceiveAll(receiver, (int)c.TxFrames).Select(g => (Id: UnderlayLink.Sequence(g.Data), Data: g.Data)).ToList();
        Assert.Equal(c.TxFrames, got.Count);
        Assert.All(got, g => Assert.True(g.Id < accepted, $"frame {g.Id} went out but was left to the caller ({accepted} accepted)"));
        Assert.All(got, g => Assert.Equal(frames[g.Id][Payload..], g.Data));
        foreach (var flow in got.GroupBy(g => g.Id / 4 % 8)) Assert.Equal(flow.Select(g => g.Id).Order(), flow.Select(g => g.Id));
        if (transmitSockets == 1) Assert.Equal(Enumerable.Range(0, accepted), got.Select(g => g.Id));
    }

    [SkippableTheory]
    [InlineData(true, true, 1)]
    [InlineData(true, true, 8)]
    [InlineData(false, false, 8)]
    public void The_port_sends_and_receives_bursts_without_allocating(bool gso, bool gro, int transmitSockets)
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var link = new UnderlayLink();
        var pool = new PacketPool(2048);
        var options = new UdpUnderlayOptions { Gso = gso, Gro = gro, TransmitSockets = transmitSockets };
        var a = link.PortA(pool, options);
        var b = link.PortB(pool, options);
        var template = UnderlayLink.Template(UnderlayLink.AddressB);
        // Four flows in runs, two lengths: several sockets, groups and tails per burst.
        var frames = Enumerable.Range(0, 64).Select(i => UnderlayLink.Frame(template, (ushort)(50000 + i / 16), i, i % 16 == 15 ? 300 : 1200)).ToArray();

        Assert.True(Pump(a, b, pool, frames, 100) > 0); // warm-up: JIT and tiering
        Pump(a, b, pool, frames, 500);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var received = Pump(a, b, pool, frames, 500);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(received > 500 * frames.Length / 2, $"only {received} frames arrived");
        Assert.Equal(0, allocated);
        if (gso) Assert.True(a.Counters.TxGsoMessages > 0);
        if (gro) Assert.True(b.Counters.RxGroMessages > 0);

        var controlBefore = GC.GetAllocatedBytesForCurrentThread();
        Pump(a, b, pool, frames, 10, allocateOnPurpose: true);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - controlBefore >= 10 * 16, "the control run should have allocated");
        Drain(b, pool);
        Assert.Equal(0, pool.InUse);
    }

    /// <summary>Sends <paramref name="bursts"/> bursts of the frames and receives them in bursts of 64 and of 5 (the GRO path keeps the rest).</summary>
    private static long Pump(UdpUnderlayPort a, UdpUnderlayPort b, PacketPool pool, byte[][] frames, int bursts, bool allocateOnPurpose = false)
    {
        Span<int> handles = stackalloc int[64];
        long received = 0;
        object? sink = null;
        for (var r = 0; r < bursts; r++)
        {
            for (var i = 0; i < frames.Length; i++)
            {
                var h = pool.Allocate();
                frames[i].CopyTo(pool.WritableFrame(h));
                pool.SetLength(h, frames[i].Length);
                handles[i] = h;
            }
            var sent = a.Transmit(handles[..frames.Length]);
            pool.Free(handles[sent..frames.Length]);
            if (allocateOnPurpose) sink = new byte[16];
            var got = 0;
            for (var spins = 0; got < sent && spins < 1000; spins++)
            {
                var n = b.Receive(handles[..((r + spins) % 3 == 0 ? 5 : 64)]);
                if (n == 0)
                {
                    PortDriver.WaitReadable(b.FileDescriptor, 1);
                    continue;
                }
                got += n;
                pool.Free(handles[..n]);
            }
            received += got;
        }
        GC.KeepAlive(sink);
        return received;
    }

    private static void Drain(UdpUnderlayPort port, PacketPool pool)
    {
        var handles = new int[64];
        for (var n = port.Receive(handles); n > 0; n = port.Receive(handles)) pool.Free(handles.AsSpan(0, n));
    }
}
