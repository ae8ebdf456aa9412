using System.Reflection;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Fuzz;

/// <summary>A frame that left the node: the port it left on, a copy of its bytes, and its buffer handle.</summary>
public readonly record struct Emitted(int Port, byte[] Frame);

/// <summary>
/// The real data plane of one node, as the demo runs it: a <see cref="NodeForwarder"/> on in-memory ring ports,
/// two pods with configured addresses and pre-learned (permanent) MACs, two VXLAN peers, and a small pool whose
/// first bytes of every buffer are guard bytes. A target injects one input, then calls the checks here; every
/// check throws <see cref="InvariantViolation"/>.
///
/// The forwarding state, pool and rings live for the whole process (AFL's persistent loop); the forwarder is
/// made fresh for every input, so a crash replays from its input alone.
/// </summary>
public sealed class FuzzNode
{
    public const int PoolCapacity = 64;
    /// <summary>
    /// Encap steps at most 50 bytes back into the 128-byte headroom (after a stripped VLAN tag even less), so no
    /// legitimate write ever touches the first 78 bytes of a buffer. A write that runs past the end of a buffer
    /// lands in the next buffer's guard; the last buffer of the slab is held, never handed out, so nothing can
    /// run past the slab unseen.
    /// </summary>
    public const int GuardLength = PacketPool.Headroom - EncapTemplate.Length;
    public const byte GuardByte = 0xA5;
    public const int PodCount = 2;

    public static readonly NodeOptions Options = new()
    {
        Name = "node1",
        PublicIp = Ipv4Address.Parse("172.31.77.1"),
        Subnet = Ipv4Prefix.Parse("10.244.1.0/24"),
        VtepMac = MacAddress.Parse("0e:fd:00:00:01:00"),
        GatewayMac = MacAddress.Parse("0a:58:0a:f4:01:01"),
        UnderlayMac = MacAddress.Parse("52:54:00:00:00:01"),
    };

    public static readonly Peer[] Peers =
    [
        new("node2", Ipv4Address.Parse("172.31.77.2"), Ipv4Prefix.Parse("10.244.2.0/24"), MacAddress.Parse("0e:fd:00:00:02:00")) { UnderlayMac = MacAddress.Parse("52:54:00:00:00:02") },
        new("node3", Ipv4Address.Parse("172.31.77.3"), Ipv4Prefix.Parse("10.244.3.0/24"), MacAddress.Parse("0e:fd:00:00:03:00")) { UnderlayMac = MacAddress.Parse("52:54:00:00:00:03") },
    ];

    /// <summary>Pod i (0-based) has 10.244.1.(2+i) and MAC 0a:58 + its address, on port i + 1.</summary>
    public static uint PodIp(int i) => Options.Subnet.Address + 2 + (uint)i;
    public static MacAddress PodMac(int i) => new(0x0A58_0000_0000UL | PodIp(i));

    private readonly byte[] _slab;
    private readonly byte[] _guard = Enumerable.Repeat(GuardByte, GuardLength).ToArray();
    private readonly RingPort[] _far;
    private readonly int _held;
    private readonly int[] _handles = new int[256];
    private readonly KeyValuePair<Ipv4Prefix, uint>[] _routes;
    private readonly Canary _canary;
    private readonly byte[][] _arpHello = new byte[PodCount][];

    public FuzzNode()
    {
        Pool = new PacketPool(PoolCapacity);
        _slab = (byte[])typeof(PacketPool).GetField("_slab", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(Pool)!;
        for (var b = 0; b < PoolCapacity; b++) _guard.CopyTo(_slab.AsSpan(b * PacketPool.BufferSize));

        // Hold the slab's last buffer: the free list is a stack, so allocate all, free all but the last.
        var all = new int[PoolCapacity];
        for (var i = 0; i < all.Length; i++) all[i] = Pool.Allocate();
        for (var i = all.Length - 2; i >= 0; i--) Pool.Free(all[i]);
        _held = all[^1];

        _far = new RingPort[PodCount + 1];
        var (underlayNode, underlayFar) = RingPort.CreatePair("underlay", "fabric", 1024);
        _far[0] = underlayFar;
        var pods = new List<PodAttachment>();
        for (var i = 0; i < PodCount; i++)
        {
            var (nodeEnd, podEnd) = RingPort.CreatePair($"veth{i}", $"pod{i}", 1024);
            _far[i + 1] = podEnd;
            pods.Add(new PodAttachment(nodeEnd, new Ipv4Address(PodIp(i))));
        }
        State = ForwardingState.Build(Options, underlayNode, pods, Peers);
        _routes = [.. State.Routes.Routes];
        _canary = new Canary(this);
        for (var i = 0; i < PodCount; i++)
        {
            _arpHello[i] = new byte[Ethernet.MinFrameLength];
            ArpPacket.WriteFrame(_arpHello[i], MacAddress.Broadcast, ArpPacket.OpRequest, PodMac(i), PodIp(i), MacAddress.Zero, Options.GatewayIp);
        }
        Node = null!;
        Reset();
        _canary.Run();
        Settle();
    }

    public PacketPool Pool { get; }
    public ForwardingState State { get; }
    public ManualClock Clock { get; private set; } = new();
    public NodeForwarder Node { get; private set; }
    /// <summary>Buffers the harness itself holds: the guard buffer at the end of the slab.</summary>
    public int BaselineInUse => 1;
    public int ArpBaseline { get; private set; }

    /// <summary>
    /// A fresh forwarder on the shared state. The pods' MACs are learned permanently (as PathBench does), and each
    /// pod then asks for the gateway once, as a pod's stack does first thing: that is what binds a pod port to its
    /// MAC for anti-spoofing, so the input cannot be the first to claim a pod's MAC.
    /// </summary>
    public void Reset()
    {
        Clock = new ManualClock();
        Node = new NodeForwarder(Pool, State, Clock);
        for (var i = 0; i < PodCount; i++)
        {
            Node.Arp.Learn(PodIp(i), PodMac(i), i + 1, 0, permanent: true);
            Inject(i + 1, _arpHello[i]);
            var replies = PollAndCollect();
            if (replies.Count != 1 || replies[0].Port != i + 1) throw new InvariantViolation($"pod {i}'s ARP for the gateway was not answered");
        }
        ArpBaseline = Node.Arp.Count;
        RxBaseline = Node.Counters[Counter.RxPackets];
    }

    /// <summary>Frames received since <see cref="Reset"/> (the input, and the canary once it ran).</summary>
    public long Received => Node.Counters[Counter.RxPackets] - RxBaseline;
    public long RxBaseline { get; private set; }

    /// <summary>Copies <paramref name="frame"/> into a pool buffer and hands it to the node on <paramref name="port"/> (0 = underlay).</summary>
    public void Inject(int port, ReadOnlySpan<byte> frame)
    {
        var h = Pool.Allocate();
        if (h < 0) throw new InvariantViolation("pool exhausted before injecting: a buffer leaked");
        frame.CopyTo(Pool.WritableFrame(h));
        Pool.SetLength(h, frame.Length);
        if (_far[port].Transmit([h]) != 1) throw new InvariantViolation("input ring full");
    }

    /// <summary>One poll, then every frame that came out, with its buffer checked and freed.</summary>
    public List<Emitted> PollAndCollect()
    {
        Node.Poll();
        return Collect();
    }

    public List<Emitted> Collect()
    {
        var result = new List<Emitted>();
        var seen = new HashSet<int>();
        for (var p = 0; p < _far.Length; p++)
        {
            int n;
            while ((n = _far[p].Receive(_handles)) > 0)
            {
                for (var k = 0; k < n; k++)
                {
                    var h = _handles[k];
                    if (!Pool.IsAllocated(h) || h == _held) throw new InvariantViolation($"port {p} emitted buffer {h}, which is not allocated");
                    if (!seen.Add(h)) throw new InvariantViolation($"buffer {h} emitted twice");
                    ref var meta = ref Pool.Meta(h);
                    if (meta.Offset < GuardLength || meta.Length < 14 || meta.Offset + meta.Length > PacketPool.BufferSize)
                        throw new InvariantViolation($"frame out of its buffer: offset {meta.Offset}, length {meta.Length}");
                    result.Add(new Emitted(p, Pool.Frame(h).ToArray()));
                }
                for (var k = 0; k < n; k++) Pool.Free(_handles[k]);
            }
        }
        CheckGuards();
        return result;
    }

    /// <summary>
    /// Lets time pass until every parked packet was either released or given up (three ARP probes a second
    /// apart, then one more interval), collecting what the node sends meanwhile.
    /// </summary>
    public List<Emitted> Settle()
    {
        var all = new List<Emitted>();
        for (var t = 0; t < 6; t++)
        {
            Clock.Advance(TimeSpan.FromSeconds(1.1));
            all.AddRange(PollAndCollect());
        }
        Node.Drain();
        all.AddRange(Collect());
        return all;
    }

    public void CheckGuards()
    {
        for (var b = 0; b < PoolCapacity; b++)
        {
            if (!_slab.AsSpan(b * PacketPool.BufferSize, GuardLength).SequenceEqual(_guard))
                throw new InvariantViolation($"guard bytes of buffer {b} overwritten: a write outside a packet buffer");
        }
    }

    /// <summary>
    /// After <see cref="Settle"/>: no buffer held, tables within their bounds, the forwarding state untouched,
    /// and every frame the node received or built accounted for exactly once.
    /// </summary>
    public void CheckQuiescent()
    {
        var node = Node;
        if (Pool.InUse != BaselineInUse) throw new InvariantViolation($"pool.InUse {Pool.InUse} after draining, baseline {BaselineInUse}: a buffer leaked");
        if (node.PendingArp.PendingPackets != 0 || node.PendingArp.PendingAddresses != 0)
            throw new InvariantViolation($"{node.PendingArp.PendingPackets} packets still parked after settling");
        if (node.Arp.Count > node.Arp.Capacity) throw new InvariantViolation($"ARP cache holds {node.Arp.Count} > capacity {node.Arp.Capacity}");
        if (!ReferenceEquals(node.State, State) || State.Routes.Count != _routes.Length) throw new InvariantViolation("forwarding state changed");
        foreach (var (prefix, value) in _routes)
        {
            if (!State.Routes.TryGetRoute(prefix, out var now) || now != value || State.Routes.Lookup(prefix.Address) != RouteFor(prefix.Address))
                throw new InvariantViolation($"route {prefix} changed");
        }
        if (State.Peers.Count != Peers.Length) throw new InvariantViolation("peer table changed");
        for (var i = 0; i < PodCount; i++)
        {
            if (node.Arp.Lookup(PodIp(i), Clock.Now, out var mac, out var port) == ArpState.Miss || port != i + 1)
                throw new InvariantViolation($"pod {i}'s permanent neighbour entry moved or vanished (port {port}, MAC {mac})");
        }
        CheckCounters();
    }

    private uint RouteFor(uint address)
    {
        var best = -1;
        var value = RouteTable.NoRoute;
        foreach (var (prefix, v) in _routes)
        {
            if (prefix.Contains(address) && prefix.Length > best)
            {
                best = prefix.Length;
                value = v;
            }
        }
        return value;
    }

    /// <summary>received + built = transmitted + dropped + taken in (ARP replies and announcements the node absorbs).</summary>
    public void CheckCounters()
    {
        var c = Node.Counters;
        if (c.Drops(DropReason.None) != 0) throw new InvariantViolation("a packet left a stage without a decision (dropped with reason None)");
        if (c.Drops(DropReason.PoolExhausted) != 0) throw new InvariantViolation("pool exhausted while handling one frame");
        var inbound = c[Counter.RxPackets] + c[Counter.ArpRequestsSent] + c[Counter.IcmpErrorsSent];
        var outbound = c[Counter.TxPackets] + c.TotalDrops + c[Counter.ArpConsumed];
        if (inbound != outbound)
        {
            var drops = string.Join(", ", c.NonZeroDrops().Select(d => $"{d.Reason}={d.Count}"));
            throw new InvariantViolation($"counters do not add up: rx {c[Counter.RxPackets]} + arp sent {c[Counter.ArpRequestsSent]} + icmp sent {c[Counter.IcmpErrorsSent]} != " +
                $"tx {c[Counter.TxPackets]} + drops {c.TotalDrops} ({drops}) + arp consumed {c[Counter.ArpConsumed]}");
        }
    }

    /// <summary>Good traffic after the input: it must still flow, byte for byte, on every path.</summary>
    public void CheckCanary()
    {
        _canary.Run();
        Settle();
        CheckQuiescent();
    }

    public static uint Ip(string text) => Ipv4Address.Parse(text).Value;
}
