using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using FastOverlay.Pipeline;
using FastOverlay.Pipeline.Stages;
using FastOverlay.Ports;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// Two underlay "nodes" in two namespaces this test owns, joined by a veth pair: A (10.200.0.1 on ul0) and
/// B (10.200.0.2 and 10.200.0.3 on ul1). Sockets and ports are opened inside with <see cref="TestNamespace.Enter{T}"/>;
/// both namespaces (and so the veth pair) go away on dispose, also when the constructor fails half-way.
/// </summary>
internal sealed class UnderlayLink : IDisposable
{
    public const ushort VxlanPort = 8472;
    public static readonly Ipv4Address AddressA = Ipv4Address.Parse("10.200.0.1");
    public static readonly Ipv4Address AddressB = Ipv4Address.Parse("10.200.0.2");
    public static readonly Ipv4Address AddressB2 = Ipv4Address.Parse("10.200.0.3");
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    private readonly List<IDisposable> _owned = [];

    /// <param name="queues">Transmit and receive queues per veth end (veth_xmit hands a frame to the peer's receive queue of the transmit queue it went out on).</param>
    public UnderlayLink(int mtu = 1500, int queues = 1)
    {
        A = new TestNamespace("ula");
        try
        {
            B = new TestNamespace("ulb");
            A.Ip($"link add ul0 mtu {mtu} numtxqueues {queues} numrxqueues {queues} type veth peer name ul1 mtu {mtu} numtxqueues {queues} numrxqueues {queues}");
            A.Ip("link set ul0 up");
            A.Ip($"link set ul1 netns {B.Name}");
            B.Ip("link set ul1 up");
            A.Ip($"addr add {AddressA}/24 dev ul0");
            B.Ip($"addr add {AddressB}/24 dev ul1");
            B.Ip($"addr add {AddressB2}/24 dev ul1");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public TestNamespace A { get; }
    public TestNamespace? B { get; }

    public UdpUnderlayPort PortA(PacketPool pool, UdpUnderlayOptions? options = null) =>
        Own(A.Enter(() => new UdpUnderlayPort(AddressA, VxlanPort, pool, default, options)));

    public UdpUnderlayPort PortB(PacketPool pool, UdpUnderlayOptions? options = null) =>
        Own(B!.Enter(() => new UdpUnderlayPort(AddressB, VxlanPort, pool, default, options)));

    /// <summary>A plain UDP socket in B (no UDP_GRO: the kernel splits a GSO datagram for it), with a big receive buffer.</summary>
    public Socket PlainB(Ipv4Address address, ushort port = VxlanPort)
    {
        var socket = Own(B!.Enter(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp)));
        // SO_RCVBUFFORCE (root): whole test bursts wait in the buffer until the test reads them.
        socket.SetRawSocketOption(1, 33, BitConverter.GetBytes(16 << 20));
        socket.Bind(new IPEndPoint(IPAddress.Parse(address.ToString()), port));
        socket.ReceiveTimeout = (int)Timeout.TotalMilliseconds;
        return socket;
    }

    private T Own<T>(T item) where T : IDisposable
    {
        _owned.Add(item);
        return item;
    }

    public static NodeOptions Node(Ipv4Address publicIp) => new()
    {
        Name = publicIp.ToString(),
        PublicIp = publicIp,
        Subnet = Ipv4Prefix.Parse("10.244.1.0/24"),
        VtepMac = MacAddress.Parse("0e:fd:00:00:01:00"),
        GatewayMac = MacAddress.Parse("0a:58:0a:f4:01:01"),
        VxlanPort = VxlanPort,
    };

    /// <summary>Encapsulation from A to <paramref name="to"/>:<paramref name="port"/> (B's VTEP MAC), as VxlanEncap's template writes it.</summary>
    public static EncapTemplate Template(Ipv4Address to, ushort port = VxlanPort) =>
        new(Node(AddressA) with { VxlanPort = port }, new Peer("b", to, Ipv4Prefix.Parse("10.244.2.0/24"), MacAddress.Parse("0e:fd:00:00:02:00")));

    /// <summary>
    /// A frame as VxlanEncap builds it whose VXLAN payload (what leaves, bytes 42 on) is <paramref name="datagram"/>
    /// bytes long (at least 26), tagged with <paramref name="sequence"/> right after the inner Ethernet header.
    /// </summary>
    public static byte[] Frame(EncapTemplate template, ushort sourcePort, int sequence, int datagram)
    {
        var frame = new byte[UdpUnderlayPort.PayloadOffset + datagram];
        for (var i = EncapTemplate.LengthWithInnerEthernet; i < frame.Length; i++) frame[i] = (byte)(sequence * 7 + i);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(EncapTemplate.LengthWithInnerEthernet), sequence);
        VxlanEncap.WriteOuter(frame, template, sourcePort);
        return frame;
    }

    /// <summary>The tag <see cref="Frame"/> wrote, read from a received datagram (VXLAN payload).</summary>
    public static int Sequence(ReadOnlySpan<byte> datagram) =>
        BinaryPrimitives.ReadInt32BigEndian(datagram[(EncapTemplate.LengthWithInnerEthernet - UdpUnderlayPort.PayloadOffset)..]);

    /// <summary>
    /// Reads <paramref name="count"/> datagrams (or until the timeout) with their source endpoints, then whatever
    /// else arrives within 20 ms, so a test sees extra datagrams without waiting out the timeout.
    /// </summary>
    public static List<(byte[] Data, IPEndPoint From)> ReceiveAll(Socket socket, int count)
    {
        var list = new List<(byte[], IPEndPoint)>();
        var buffer = new byte[65536];
        var deadline = Stopwatch.GetTimestamp() + (long)(Timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (!socket.Poll(list.Count < count ? 100_000 : 20_000, SelectMode.SelectRead))
            {
                if (list.Count >= count) break;
                continue;
            }
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            var n = socket.ReceiveFrom(buffer, ref from);
            list.Add((buffer[..n], (IPEndPoint)from));
        }
        return list;
    }

    public void Dispose()
    {
        for (var i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        B?.Dispose();
        A?.Dispose();
    }
}
