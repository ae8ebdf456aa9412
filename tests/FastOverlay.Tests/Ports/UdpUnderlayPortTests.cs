using System.Net;
using System.Net.Sockets;
using FastOverlay.Pipeline;
using FastOverlay.Pipeline.Stages;
using FastOverlay.Ports;
using FastOverlay.Ports.Native;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// UdpUnderlayPort on loopback (no root needed): two "nodes" at 127.0.0.1 and 127.0.0.2 on the same free port,
/// as two flannel nodes share port 8472 on different public IPs.
/// </summary>
public sealed class UdpUnderlayPortTests
{
    private static readonly Ipv4Address Local = Ipv4Address.Parse("127.0.0.1");
    private static readonly Ipv4Address Remote = Ipv4Address.Parse("127.0.0.2");
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    private static NodeOptions Node(ushort port, Ipv4Address publicIp) => new()
    {
        Name = "node1",
        PublicIp = publicIp,
        Subnet = Ipv4Prefix.Parse("10.244.1.0/24"),
        VtepMac = MacAddress.Parse("0e:fd:00:00:01:00"),
        GatewayMac = MacAddress.Parse("0a:58:0a:f4:01:01"),
        VxlanPort = port,
    };

    private static Peer RemotePeer => new("node2", Remote, Ipv4Prefix.Parse("10.244.2.0/24"), MacAddress.Parse("0e:fd:00:00:02:00"));

    /// <summary>A port number free on both loopback addresses right now.</summary>
    private static ushort FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return (ushort)((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    /// <summary>
    /// VXLAN header (I flag, VNI 1) then an inner Ethernet/IPv4/UDP frame to the local VTEP MAC, or, with
    /// <paramref name="toRemote"/>, from it to the remote's (what encap's template writes since main's 64-byte template).
    /// </summary>
    private static byte[] VxlanPayload(int sequence, int innerPayload = 32, bool toRemote = false)
    {
        var inner = new byte[Ethernet.HeaderLength + Ipv4Header.MinLength + UdpHeader.Length + innerPayload];
        var local = MacAddress.Parse("0e:fd:00:00:01:00");
        var remote = MacAddress.Parse("0e:fd:00:00:02:00");
        Ethernet.Write(inner, toRemote ? remote : local, toRemote ? local : remote, Ethernet.TypeIpv4);
        Ipv4Header.Write(inner.AsSpan(14), (ushort)(inner.Length - 14), (ushort)sequence, 0, 63, Ipv4Header.ProtocolUdp, 0x0AF40202, 0x0AF40102);
        UdpHeader.Write(inner.AsSpan(34), 1000, 2000, (ushort)(UdpHeader.Length + innerPayload));
        var datagram = new byte[VxlanHeader.Length + inner.Length];
        VxlanHeader.Write(datagram, 1);
        inner.CopyTo(datagram, VxlanHeader.Length);
        return datagram;
    }

    private static Socket Peer(ushort port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Parse(Remote.ToString()), port));
        return socket;
    }

    [Fact]
    public void A_datagram_becomes_an_outer_frame_that_VxlanDecap_accepts()
    {
        var port = FreePort();
        var pool = new PacketPool(1024);
        var node = Node(port, Local);
        using var underlay = new UdpUnderlayPort(Local, port, pool);
        using var peer = Peer(port);

        var datagrams = Enumerable.Range(0, 100).Select(i => VxlanPayload(i, i % 50)).ToList();
        foreach (var d in datagrams) peer.SendTo(d, new IPEndPoint(IPAddress.Loopback, port));
        var batches = new List<int>();
        var frames = PortDriver.Receive(underlay, pool, datagrams.Count, Timeout, batches);

        Assert.Equal(datagrams.Count, frames.Count);
        Assert.True(batches.Max() > 1, $"recvmmsg batches {string.Join(",", batches)}");
        for (var i = 0; i < frames.Count; i++)
        {
            var frame = frames[i];
            Assert.Equal(DropReason.None, VxlanDecap.Decapsulate(node, frame, out var outerLength, out var innerLength, out var source, out var vni));
            Assert.Equal(VxlanHeader.OverheadIpv4, outerLength);
            Assert.Equal(frame.Length - outerLength, innerLength);
            Assert.Equal(Remote.Value, source);
            Assert.Equal(1u, vni);
            Assert.Equal(datagrams[i][VxlanHeader.Length..], frame[outerLength..]);
            var ip = frame.AsSpan(Ethernet.HeaderLength);
            Assert.True(Ipv4Header.DontFragment(ip));
            Assert.Equal(port, UdpHeader.SourcePort(ip[Ipv4Header.MinLength..]));
        }
        Assert.Equal(0, pool.InUse);
        Assert.Equal(100, underlay.Counters.RxFrames);
    }

    [Fact]
    public void Encapsulated_frames_leave_as_datagrams_to_the_peer_with_the_VXLAN_payload()
    {
        var port = FreePort();
        var pool = new PacketPool(1024);
        var node = Node(port, Local);
        var template = new EncapTemplate(node, RemotePeer);
        // One transmit socket: everything leaves from the VXLAN port, as before transmit sockets existed.
        using var underlay = new UdpUnderlayPort(Local, port, pool, options: new UdpUnderlayOptions { TransmitSockets = 1 });
        using var peer = Peer(port);

        var payloads = Enumerable.Range(0, 64).Select(i => VxlanPayload(i, 10 + i, toRemote: true)).ToList();
        var frames = payloads.Select(p =>
        {
            var inner = p[VxlanHeader.Length..];
            var frame = new byte[EncapTemplate.Length + inner.Length];
            inner.CopyTo(frame, EncapTemplate.Length);
            VxlanEncap.WriteOuter(frame, template, 50000);
            return frame;
        }).ToList();
        // The encap writes the inner Ethernet header from the template too: what leaves is the frame from the
        // VXLAN header on.
        payloads = frames.Select(f => f[(EncapTemplate.OffsetVxlan)..]).ToList();
        PortDriver.TransmitAll(underlay, pool, frames);

        var buffer = new byte[4096];
        peer.ReceiveTimeout = 3000;
        foreach (var expected in payloads)
        {
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            var n = peer.ReceiveFrom(buffer, ref from);
            Assert.Equal(expected, buffer[..n]);
            // With one socket the kernel sends from the bound address and port (see the port's notes on source-port entropy).
            Assert.Equal(new IPEndPoint(IPAddress.Loopback, port), from);
        }
        Assert.Equal(0, pool.InUse);
        Assert.Equal(64, underlay.Counters.TxFrames);
    }

    [Fact]
    public void Two_underlay_ports_carry_frames_between_nodes()
    {
        var port = FreePort();
        var pool = new PacketPool(1024);
        var template = new EncapTemplate(Node(port, Local), RemotePeer);
        using var a = new UdpUnderlayPort(Local, port, pool);
        using var b = new UdpUnderlayPort(Remote, port, pool);

        var inner = VxlanPayload(7, toRemote: true)[VxlanHeader.Length..];
        var frame = new byte[EncapTemplate.Length + inner.Length];
        inner.CopyTo(frame, EncapTemplate.Length);
        VxlanEncap.WriteOuter(frame, template, 50000);
        inner = frame[EncapTemplate.Length..]; // the inner Ethernet header now comes from the template
        PortDriver.TransmitAll(a, pool, [frame]);
        var received = PortDriver.Receive(b, pool, 1, Timeout);

        Assert.Single(received);
        var remoteNode = Node(port, Remote);
        Assert.Equal(DropReason.None, VxlanDecap.Decapsulate(remoteNode, received[0], out var outer, out _, out var source, out _));
        Assert.Equal(Local.Value, source);
        Assert.Equal(inner, received[0][outer..]);
    }

    [Fact]
    public void A_datagram_too_big_for_a_buffer_is_counted_and_dropped()
    {
        var port = FreePort();
        var pool = new PacketPool(64);
        using var underlay = new UdpUnderlayPort(Local, port, pool);
        using var peer = Peer(port);

        peer.SendTo(new byte[PacketPool.MaxFrameLength - UdpUnderlayPort.PayloadOffset + 1], new IPEndPoint(IPAddress.Loopback, port));
        peer.SendTo(VxlanPayload(1), new IPEndPoint(IPAddress.Loopback, port));
        var frames = PortDriver.Receive(underlay, pool, 1, Timeout);

        Assert.Single(frames);
        Assert.Equal(1, underlay.Counters.RxTooLong);
        Assert.Equal(0, pool.InUse);
    }

    [Fact]
    public void A_frame_not_built_by_VxlanEncap_is_dropped_not_sent()
    {
        var port = FreePort();
        var pool = new PacketPool(64);
        using var underlay = new UdpUnderlayPort(Local, port, pool);
        var handles = PortDriver.Load(pool, [new byte[20]]);
        Assert.Equal(1, underlay.Transmit(handles));
        Assert.Equal(1, underlay.Counters.TxErrors);
        Assert.Equal(0, pool.InUse);
    }

    [Fact]
    public unsafe void The_socket_sets_DF_and_a_taken_address_is_a_clear_error()
    {
        var port = FreePort();
        var pool = new PacketPool(4);
        using var underlay = new UdpUnderlayPort(Local, port, pool);
        Assert.Equal(Linux.IpPmtuDiscDo, Fd.GetIntOption(underlay.FileDescriptor, Linux.IpProtoIp, Linux.IpMtuDiscover));
        Assert.True(underlay.ReceiveBufferBytes >= 256 * 1024);

        var error = Assert.Throws<NativeException>(() => new UdpUnderlayPort(Local, port, pool));
        Assert.StartsWith($"bind(UDP) on underlay 127.0.0.1:{port}: EADDRINUSE (Address already in use)", error.Message);
        var notOurs = Assert.Throws<NativeException>(() => new UdpUnderlayPort(Ipv4Address.Parse("192.0.2.77"), port, pool));
        Assert.Contains("EADDRNOTAVAIL", notOurs.Message);
    }
}
