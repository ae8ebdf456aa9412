using System.Buffers.Binary;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Wire;

namespace FastOverlay.Cluster;

/// <summary>
/// A simulated pod: the far end of a pod port, behaving as a Linux pod with a /24 on eth0 and a default route via
/// the gateway. It resolves next hops with ARP, answers ARP for its address, answers ICMP echo, echoes UDP sent
/// to port 7 (RFC 862) and counts the rest. It is a test endpoint, not part of the data plane; its steady-state
/// send and receive paths allocate nothing either, so whole-cluster runs can be measured for allocations.
/// </summary>
public sealed class PodEndpoint
{
    public const ushort EchoPort = 7;
    public const ushort DiscardPort = 9;
    /// <summary>Where the demo's Service traffic lands (counted apart from plain pod-to-pod traffic).</summary>
    public const ushort ServiceTargetPort = 5353;

    private readonly PacketPool _pool;
    private readonly Dictionary<uint, MacAddress> _neighbours = [];
    private readonly int[] _rx = new int[PacketBurst.DefaultCapacity];
    private readonly int[] _tx = new int[PacketBurst.DefaultCapacity];
    private readonly byte[] _udpTemplate = new byte[PacketPool.MaxFrameLength];
    private uint _templateDestination;
    private int _templateLength = -1;
    private int _templatePayload = -1;
    private ushort _templatePort;
    private int _txCount;

    public PodEndpoint(string name, string nodeName, Ipv4Address ip, Ipv4Prefix subnet, RingPort port, PacketPool pool)
    {
        Name = name;
        NodeName = nodeName;
        Ip = ip;
        Subnet = subnet;
        Port = port;
        _pool = pool;
        // The MAC scheme of the CNI bridge plugin: 0a:58 followed by the IPv4 address.
        Mac = new MacAddress(0x0A58_0000_0000UL | ip.Value);
    }

    public string Name { get; }
    public string NodeName { get; }
    public Ipv4Address Ip { get; }
    public MacAddress Mac { get; }
    public Ipv4Prefix Subnet { get; }
    public RingPort Port { get; }
    public uint Gateway => Subnet.Address + 1;
    public PacketTracer? Tracer { get; set; }

    public long UdpReceivedSameNode { get; private set; }
    public long UdpReceivedOtherNode { get; private set; }
    public long EchoRepliesReceived { get; private set; }
    public long UdpEchoesReceived { get; private set; }
    public long UdpReceivedThroughService { get; private set; }
    public long TxRefused { get; private set; }

    public bool Knows(uint address) => _neighbours.ContainsKey(NextHop(address));

    private uint NextHop(uint destination) => Subnet.Contains(destination) ? destination : Gateway;

    /// <summary>Receives and answers everything waiting on the pod's interface. Returns frames handled.</summary>
    public int Poll()
    {
        var n = Port.Receive(_rx);
        for (var i = 0; i < n; i++) Handle(_rx[i]);
        Flush();
        return n;
    }

    private void Handle(int h)
    {
        var frame = _pool.Frame(h);
        Tracer?.RecordFrame(Name, TraceEvent.EndpointReceived, h, -1, frame);
        if (Ethernet.Parse(frame, out var type, out var l3) != DropReason.None)
        {
            _pool.Free(h);
            return;
        }
        if (type == Ethernet.TypeArp && ArpPacket.TryParse(frame[l3..], out var arp) == DropReason.None)
        {
            _neighbours[arp.SenderIp] = arp.SenderMac;
            if (arp.Operation == ArpPacket.OpRequest && arp.TargetIp == Ip.Value)
            {
                var senderMac = arp.SenderMac;
                var senderIp = arp.SenderIp;
                ArpPacket.WriteFrame(frame, senderMac, ArpPacket.OpReply, Mac, Ip.Value, senderMac, senderIp);
                Queue(h);
                return;
            }
            _pool.Free(h);
            return;
        }
        if (type != Ethernet.TypeIpv4 || Ipv4Header.Validate(frame[l3..], out var ihl, out _) != DropReason.None || Ipv4Header.Destination(frame[l3..]) != Ip.Value)
        {
            _pool.Free(h);
            return;
        }
        var ip = frame[l3..];
        var payload = ip[ihl..];
        var source = Ipv4Header.Source(ip);
        switch (Ipv4Header.Protocol(ip))
        {
            case Ipv4Header.ProtocolIcmp when Icmpv4.Type(payload) == Icmpv4.TypeEchoRequest:
                // Answer in place, as the kernel does: swap addresses and MACs, type 0, fresh TTL.
                Icmpv4.TurnEchoIntoReply(payload);
                TurnAround(frame, ip, source);
                Queue(h);
                return;
            case Ipv4Header.ProtocolIcmp when Icmpv4.Type(payload) == Icmpv4.TypeEchoReply:
                EchoRepliesReceived++;
                break;
            case Ipv4Header.ProtocolUdp when UdpHeader.Validate(payload) == DropReason.None:
                if (UdpHeader.DestinationPort(payload) == EchoPort)
                {
                    var sport = UdpHeader.SourcePort(payload);
                    BinaryPrimitives.WriteUInt16BigEndian(payload, EchoPort);
                    BinaryPrimitives.WriteUInt16BigEndian(payload[2..], sport);
                    TurnAround(frame, ip, source);
                    Queue(h);
                    return;
                }
                if (UdpHeader.DestinationPort(payload) == ServiceTargetPort) UdpReceivedThroughService++;
                else if (UdpHeader.SourcePort(payload) == EchoPort) UdpEchoesReceived++;
                else if (Subnet.Contains(source)) UdpReceivedSameNode++;
                else UdpReceivedOtherNode++;
                break;
        }
        _pool.Free(h);
    }

    private void TurnAround(Span<byte> frame, Span<byte> ip, uint source)
    {
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Header.OffsetSource..], Ip.Value);
        BinaryPrimitives.WriteUInt32BigEndian(ip[Ipv4Header.OffsetDestination..], source);
        ip[Ipv4Header.OffsetTtl] = 64;
        Ipv4Header.UpdateChecksum(ip);
        var mac = _neighbours.TryGetValue(NextHop(source), out var m) ? m : Ethernet.Source(frame);
        Ethernet.Write(frame, mac, Mac, Ethernet.TypeIpv4);
    }

    /// <summary>Sends an ICMP echo request. False (and an ARP request goes out) if the next hop is not resolved yet.</summary>
    public bool SendEcho(uint destination, ushort identifier, ushort sequence)
    {
        if (!Resolve(destination, out var mac)) return false;
        var h = _pool.Allocate();
        if (h < 0) return false;
        var frame = _pool.WritableFrame(h);
        Span<byte> payload = stackalloc byte[32];
        for (var i = 0; i < payload.Length; i++) payload[i] = (byte)('a' + i % 23);
        var total = (ushort)(Ipv4Header.MinLength + Icmpv4.HeaderLength + payload.Length);
        Ethernet.Write(frame, mac, Mac, Ethernet.TypeIpv4);
        Ipv4Header.Write(frame[Ethernet.HeaderLength..], total, sequence, Ipv4Header.FlagDontFragment, 64, Ipv4Header.ProtocolIcmp, Ip.Value, destination);
        Icmpv4.WriteEcho(frame[(Ethernet.HeaderLength + Ipv4Header.MinLength)..], Icmpv4.TypeEchoRequest, identifier, sequence, payload);
        _pool.SetLength(h, Ethernet.HeaderLength + total);
        Queue(h);
        Flush();
        return true;
    }

    /// <summary>
    /// Sends <paramref name="count"/> copies of one UDP datagram. Returns how many left the pod (0 while the next
    /// hop is unresolved; fewer when the pool or the port is full).
    /// </summary>
    public int SendUdp(uint destination, ushort destinationPort, int count, int payloadLength = 18)
    {
        if (!Resolve(destination, out var mac)) return 0;
        if (_templateDestination != destination || _templatePayload != payloadLength || _templatePort != destinationPort)
            BuildUdpTemplate(mac, destination, destinationPort, payloadLength);
        var length = _templateLength;
        var sent = 0;
        while (sent < count)
        {
            var h = _pool.Allocate();
            if (h < 0) break;
            _udpTemplate.AsSpan(0, length).CopyTo(_pool.WritableFrame(h));
            _pool.SetLength(h, length);
            Queue(h);
            sent++;
        }
        Flush();
        return sent;
    }

    private void BuildUdpTemplate(MacAddress mac, uint destination, ushort destinationPort, int payloadLength)
    {
        var frame = _udpTemplate.AsSpan();
        var udpLength = (ushort)(UdpHeader.Length + payloadLength);
        var total = (ushort)(Ipv4Header.MinLength + udpLength);
        Ethernet.Write(frame, mac, Mac, Ethernet.TypeIpv4);
        Ipv4Header.Write(frame[Ethernet.HeaderLength..], total, 0, Ipv4Header.FlagDontFragment, 64, Ipv4Header.ProtocolUdp, Ip.Value, destination);
        var udp = frame.Slice(Ethernet.HeaderLength + Ipv4Header.MinLength, udpLength);
        udp[UdpHeader.Length..].Fill((byte)'x');
        UdpHeader.Write(udp, 40000, destinationPort, udpLength);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], UdpHeader.ComputeChecksum(Ip.Value, destination, udp));
        _templateDestination = destination;
        _templatePayload = payloadLength;
        _templatePort = destinationPort;
        _templateLength = Math.Max(Ethernet.MinFrameLength, Ethernet.HeaderLength + total);
        frame[(Ethernet.HeaderLength + total).._templateLength].Clear();
    }

    private bool Resolve(uint destination, out MacAddress mac)
    {
        var nextHop = NextHop(destination);
        if (_neighbours.TryGetValue(nextHop, out mac)) return true;
        var h = _pool.Allocate();
        if (h < 0) return false;
        _pool.SetLength(h, ArpPacket.WriteFrame(_pool.WritableFrame(h), MacAddress.Broadcast, ArpPacket.OpRequest, Mac, Ip.Value, MacAddress.Zero, nextHop));
        Queue(h);
        Flush();
        return false;
    }

    private void Queue(int h)
    {
        if (_txCount == _tx.Length) Flush();
        Tracer?.RecordFrame(Name, TraceEvent.EndpointSent, h, -1, _pool.Frame(h));
        _tx[_txCount++] = h;
    }

    private int Flush()
    {
        if (_txCount == 0) return 0;
        var sent = Port.Transmit(_tx.AsSpan(0, _txCount));
        for (var i = sent; i < _txCount; i++)
        {
            _pool.Free(_tx[i]);
            TxRefused++;
        }
        var n = _txCount;
        _txCount = 0;
        return sent == n ? n : sent;
    }
}
