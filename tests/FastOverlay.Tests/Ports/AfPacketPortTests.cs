using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using FastOverlay.Control;
using FastOverlay.Offload;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// AfPacketPort on a veth pair inside a namespace this test creates: frames sent into one end arrive in batches
/// at the port on the other end, and what the port transmits comes out of the far end.
/// </summary>
[Collection("netns")]
public sealed class AfPacketPortTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    private static AfPacketOptions Options(PacketRingVersion ring) => new() { Ring = ring };

    [SkippableTheory]
    [InlineData(PacketRingVersion.V2)]
    [InlineData(PacketRingVersion.V3)]
    public void Frames_from_the_far_end_arrive_in_order_and_in_batches(PacketRingVersion ring)
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var ns = new TestNamespace("af");
        ns.AddVeth("node0", "pod0");
        var pool = new PacketPool(4096);
        using var port = ns.Enter(() => new AfPacketPort("node0", pool, Options(ring)));
        using var far = ns.Enter(() => new AfPacketPort("pod0", pool));

        var sent = Enumerable.Range(0, 300).Select(i => PortDriver.Frame(i, 60 + i % 200)).ToList();
        PortDriver.TransmitAll(far, pool, sent);
        var batches = new List<int>();
        var received = PortDriver.Receive(port, pool, sent.Count, Timeout, batches);

        Assert.Equal(sent.Count, received.Count);
        for (var i = 0; i < sent.Count; i++) Assert.Equal(sent[i], received[i]);
        // One ring pass hands over many frames: far fewer Receive calls than frames.
        Assert.True(batches.Max() > 1, $"batches {string.Join(",", batches)}");
        Assert.True(batches.Count < sent.Count / 4, $"{batches.Count} calls for {sent.Count} frames");
        Assert.Equal(300, port.Counters.RxFrames);
        Assert.Equal(300, far.Counters.TxFrames);
        Assert.Equal(0, pool.InUse);
    }

    [SkippableTheory]
    [InlineData(PacketRingVersion.V2)]
    [InlineData(PacketRingVersion.V3)]
    public void The_port_does_not_receive_what_it_transmits(PacketRingVersion ring)
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var ns = new TestNamespace("af");
        ns.AddVeth("node0", "pod0");
        var pool = new PacketPool(1024);
        using var port = ns.Enter(() => new AfPacketPort("node0", pool, Options(ring)));
        using var far = ns.Enter(() => new AfPacketPort("pod0", pool));

        PortDriver.TransmitAll(port, pool, Enumerable.Range(0, 50).Select(i => PortDriver.Frame(i)));
        Assert.Equal(50, PortDriver.Receive(far, pool, 50, Timeout).Count);
        // Long past the ring's 1 ms block timeout: had the port seen its own frames, they would be here.
        Thread.Sleep(50);
        Assert.Empty(PortDriver.Receive(port, pool, 1, TimeSpan.FromMilliseconds(100)));
        Assert.Equal(0, pool.InUse);
    }

    /// <summary>
    /// Worker sockets on a pod interface share one fanout group whose id the kernel hands out. A group id of our
    /// own choosing (the interface index, as before) could already name a group on another device, and joining it
    /// fails with EINVAL: here such a group exists and the pod's ports still open, share a group and receive.
    /// </summary>
    [SkippableFact]
    public void Worker_pod_ports_share_a_kernel_allocated_fanout_group_even_when_their_index_is_taken()
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var ns = new TestNamespace("af");
        ns.AddVeth("node0", "pod0");
        ns.AddVeth("node1", "pod1");
        var pool = new PacketPool(4096);
        var index = ns.Enter(() => (int)LibC.IfNameToIndex("node0"));
        using var squatter = ns.Enter(() => new AfPacketPort("node1", pool, new AfPacketOptions { Fanout = true, GroupId = index }));
        Assert.Equal(index, squatter.FanoutGroupId);

        var factory = new SocketPortFactory(workers: 2);
        using var a = (AfPacketPort)ns.Enter(() => factory.OpenPod("node0", pool));
        using var b = (AfPacketPort)ns.Enter(() => factory.OpenPod("node0", pool));
        using var far = ns.Enter(() => new AfPacketPort("pod0", pool));

        Assert.NotNull(a.FanoutGroupId);
        Assert.Equal(a.FanoutGroupId, b.FanoutGroupId);
        Assert.NotEqual(index, a.FanoutGroupId);
        var sent = Enumerable.Range(0, 64).Select(i => PortDriver.Frame(i)).ToList();
        PortDriver.TransmitAll(far, pool, sent);
        var received = PortDriver.Receive(a, pool, sent.Count, TimeSpan.FromMilliseconds(500)).Count
            + PortDriver.Receive(b, pool, sent.Count, TimeSpan.FromMilliseconds(500)).Count;
        Assert.Equal(sent.Count, received);
        Assert.Equal(0, pool.InUse);
    }

    [SkippableFact]
    public void The_interface_is_promiscuous_while_the_port_is_open()
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var ns = new TestNamespace("af");
        ns.AddVeth("node0", "pod0");
        var pool = new PacketPool(64);
        var port = ns.Enter(() => new AfPacketPort("node0", pool, Options(PacketRingVersion.V2)));
        Assert.Contains("promiscuity 1", ns.Ip("-d link show node0"));
        port.Dispose();
        Assert.Contains("promiscuity 0", ns.Ip("-d link show node0"));
        Assert.Equal(0, port.Receive(new int[4]));
    }

    [SkippableTheory]
    [InlineData(PacketRingVersion.V2)]
    [InlineData(PacketRingVersion.V3)]
    public void Frames_longer_than_a_buffer_are_counted_and_dropped_and_the_next_one_arrives(PacketRingVersion ring)
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var ns = new TestNamespace("af");
        ns.AddVeth("node0", "pod0", mtu: 4000);
        var pool = new PacketPool(64);
        using var port = ns.Enter(() => new AfPacketPort("node0", pool, Options(ring)));
        using var sender = ns.Enter(() => RawSender.Open("pod0"));

        sender.Send(PortDriver.Frame(1, PacketPool.MaxFrameLength + 1));
        sender.Send(PortDriver.Frame(2, 3000));
        sender.Send(PortDriver.Frame(3, PacketPool.MaxFrameLength));
        var received = PortDriver.Receive(port, pool, 1, Timeout);

        Assert.Single(received);
        Assert.Equal(3, PortDriver.Sequence(received[0]));
        Assert.Equal(PacketPool.MaxFrameLength, received[0].Length);
        Assert.Equal(2, port.Counters.RxTooLong);
        Assert.Equal(0, pool.InUse);
    }

    [SkippableTheory]
    [InlineData(PacketRingVersion.V2)]
    [InlineData(PacketRingVersion.V3)]
    public void A_vlan_tag_the_kernel_moved_into_metadata_is_put_back_in_the_frame(PacketRingVersion ring)
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var ns = new TestNamespace("af");
        ns.AddVeth("node0", "pod0");
        var pool = new PacketPool(64);
        using var port = ns.Enter(() => new AfPacketPort("node0", pool, Options(ring)));
        using var sender = ns.Enter(() => RawSender.Open("pod0"));

        var tagged = new byte[64];
        Ethernet.Write(tagged, PortDriver.GatewayMac, PortDriver.PodMac, Ethernet.TypeVlan);
        BinaryPrimitives.WriteUInt16BigEndian(tagged.AsSpan(14), 0x2064);
        BinaryPrimitives.WriteUInt16BigEndian(tagged.AsSpan(16), PortDriver.ExperimentalType);
        tagged[20] = 0x5A;
        sender.Send(tagged);
        var received = PortDriver.Receive(port, pool, 1, Timeout);

        Assert.Single(received);
        Assert.Equal(tagged, received[0]);
    }

    [SkippableTheory]
    [InlineData(PacketRingVersion.V2, true)]
    [InlineData(PacketRingVersion.V3, true)]
    [InlineData(PacketRingVersion.V2, false)]
    [InlineData(PacketRingVersion.V3, false)]
    public void Kernel_traffic_from_the_pod_arrives_with_its_checksum_state(PacketRingVersion ring, bool vnetHeader)
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        Skip.IfNot(Shell.Exists("ping"), "ping is not installed (apt-get install iputils-ping)");
        using var ns = new TestNamespace("af");
        ns.AddVeth("node0", "pod0");
        // The "pod" end gets an address and a static neighbour for its gateway with the gateway MAC, as a pod
        // whose ARP FastOverlay answered would have; veth tx checksumming stays on (the default).
        ns.Ip("addr add 10.99.0.2/24 dev pod0");
        ns.Ip($"neigh add 10.99.0.1 lladdr {PortDriver.GatewayMac} nud permanent dev pod0");
        var pool = new PacketPool(256);
        using var port = ns.Enter(() => new AfPacketPort("node0", pool, Options(ring) with { VnetHeader = vnetHeader }));
        Assert.Equal(vnetHeader, port.VnetHeader);

        using (var udp = ns.Enter(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp)))
        {
            udp.SendTo(new byte[100], new IPEndPoint(IPAddress.Parse("10.99.0.1"), 5555));
        }
        // Nobody answers: the port only receives. ping's exit status is 1 then.
        ns.ExecStatus("ping -c 2 -i 0.2 -W 1 10.99.0.1");
        var flags = new List<PacketFlags>();
        var received = PortDriver.Receive(port, pool, 3, Timeout, flags: flags);

        Assert.Equal(3, received.Count);
        for (var i = 0; i < received.Count; i++)
        {
            var frame = received[i];
            Assert.Equal(PortDriver.GatewayMac, Ethernet.Destination(frame));
            var ip = frame.AsSpan(14);
            Assert.Equal(DropReason.None, Ipv4Header.Validate(ip, out var ihl, out var total));
            var l4 = ip[ihl..total];
            if (Ipv4Header.Protocol(ip) == Ipv4Header.ProtocolUdp)
            {
                // With the vnet header the partial checksum travels on, flagged (NEEDS_CSUM); without it the port
                // finishes it on receive. Either way, finished it must verify.
                Assert.Equal(vnetHeader, (flags[i] & PacketFlags.ChecksumPartial) != 0);
                if (vnetHeader)
                {
                    Assert.Equal(L4Checksum.PartialValue(L4Checksum.PseudoHeader(Ipv4Header.Source(ip), Ipv4Header.Destination(ip), Ipv4Header.ProtocolUdp, l4.Length)), UdpHeader.Checksum(l4));
                    L4Checksum.Complete(frame);
                }
                Assert.NotEqual(0, UdpHeader.Checksum(l4));
                Assert.True(UdpHeader.ChecksumAcceptable(Ipv4Header.Source(ip), Ipv4Header.Destination(ip), l4), "UDP checksum left partial");
            }
            else
            {
                Assert.Equal(Ipv4Header.ProtocolIcmp, Ipv4Header.Protocol(ip));
                Assert.Equal(PacketFlags.None, flags[i] & PacketFlags.ChecksumPartial);
                Assert.True(InternetChecksum.IsValid(l4), "ICMP checksum wrong");
            }
        }
        Assert.Contains(received, f => f[23] == Ipv4Header.ProtocolUdp);
    }

    [SkippableFact]
    public void A_deleted_interface_does_not_make_the_idle_poll_spin()
    {
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        using var ns = new TestNamespace("af");
        ns.AddVeth("node0", "pod0");
        var pool = new PacketPool(64);
        using var port = ns.Enter(() => new AfPacketPort("node0", pool, Options(PacketRingVersion.V2)));
        using var poller = new PortPoller();
        poller.Set([port]);

        ns.Ip("link del node0");
        poller.Wait(100);
        var sleep = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(0, poller.Wait(100));
        Assert.True(sleep.ElapsedMilliseconds >= 80, $"poll returned after {sleep.ElapsedMilliseconds} ms");
        Assert.Equal(1, poller.Errors);
        Assert.Equal(Errno.ENetDown, poller.LastError);

        Assert.Equal(0, port.Receive(new int[8]));
        var handles = PortDriver.Load(pool, [PortDriver.Frame(1)]);
        Assert.Equal(1, port.Transmit(handles));
        Assert.Equal(1, port.Counters.TxErrors);
        Assert.Equal(0, pool.InUse);
    }

    [Fact]
    public void A_missing_interface_is_named_in_the_error()
    {
        var pool = new PacketPool(4);
        var error = Assert.Throws<NativeException>(() => new AfPacketPort("fo-missing0", pool));
        Assert.Equal("if_nametoindex on fo-missing0: ENODEV (No such device); the interface does not exist in this network namespace", error.Message);
    }

    /// <summary>A plain AF_PACKET socket with one send(2) per frame, for frames the port itself cannot build.</summary>
    private sealed unsafe class RawSender : IDisposable
    {
        private int _fd;

        private RawSender(int fd) => _fd = fd;

        public static RawSender Open(string name)
        {
            var index = (int)LibC.IfNameToIndex(name);
            var fd = LibC.Socket(Linux.AfPacket, Linux.SockRaw | Linux.SockCloExec, 0);
            Assert.True(index > 0 && fd >= 0);
            var address = new SockAddrLl { Family = Linux.AfPacket, ProtocolBigEndian = Fd.Htons(Linux.EthPAll), IfIndex = index };
            Assert.Equal(0, LibC.Bind(fd, &address, (uint)sizeof(SockAddrLl)));
            return new RawSender(fd);
        }

        public void Send(byte[] frame)
        {
            fixed (byte* p = frame) Assert.Equal(frame.Length, (int)LibC.Send(_fd, p, (nuint)frame.Length, 0));
        }

        public void Dispose() => Fd.Close(ref _fd);
    }
}
