using FastOverlay.Pipeline.Stages;
using FastOverlay.Ports;
using FastOverlay.Tables;

namespace FastOverlay.Pipeline;

/// <summary>
/// One node's data plane, run to completion on one thread (DPDK l3fwd's main loop): for each port, receive a
/// burst, pass it through the stages, queue the results per output port; then flush every port once.
/// <code>
///  pod port ─► EthernetInput ─┬─► ArpInput ─────────────────────────────────────────────┐
///                             └─► ServiceNat ─► Ip4Input ─┬─► Ip4Rewrite (ARP) ─────────┼─► Transmit ─► pod port
///  underlay ─► VxlanDecap ───────►    │                    └─► VxlanEncap ───────────────┤            ├► underlay
///  external ─► ExternalInput ────►    └─ replies to outside ─────────────────────────────┘            └► external
/// </code>
/// The forwarding state is read once per poll and swapped by <see cref="Publish"/> from any thread.
/// </summary>
public sealed class NodeForwarder
{
    private readonly NodeContext _ctx;
    private readonly PacketBurst _rx;
    private readonly PacketBurst _resumeWork;
    private readonly EthernetInput _ethernetInput;
    private readonly VxlanDecap _decap;
    private readonly ArpInput _arpInput;
    private readonly ServiceNat _serviceNat;
    private readonly ExternalInput _externalInput;
    private readonly Ip4Input _ip4Input;
    private readonly Ip4Rewrite _ip4Rewrite;
    private readonly VxlanEncap _encap;
    private readonly Transmit _transmit;
    private readonly NodeClock _clock;
    private readonly ReceiveBackoff _backoff = new();
    private readonly (uint Address, int Port)[] _probes = new (uint, int)[16];
    private readonly NeighbourUpdate[] _neighbours;
    private readonly int[] _expired;
    private ForwardingState _state;
    private ForwardingState? _attached;
    private long _nextTimer;
    private readonly long _timerInterval;

    public NodeForwarder(PacketPool pool, ForwardingState state, NodeClock? clock = null, int burstSize = PacketBurst.DefaultCapacity, NeighbourExchange? exchange = null, int worker = 0)
    {
        _state = state;
        _clock = clock ?? NodeClock.System;
        _ctx = new NodeContext(state.Node.Name, pool, state.Node) { Exchange = exchange, Worker = worker };
        _neighbours = exchange is null ? [] : new NeighbourUpdate[256];
        _rx = new PacketBurst(burstSize);
        _resumeWork = new PacketBurst(_ctx.Resume.Capacity);
        var icmp = new IcmpResponder(_ctx);
        _ethernetInput = new EthernetInput(_ctx);
        _decap = new VxlanDecap(_ctx);
        _arpInput = new ArpInput(_ctx);
        _serviceNat = new ServiceNat(_ctx, icmp);
        _externalInput = new ExternalInput(_ctx);
        _ip4Input = new Ip4Input(_ctx, icmp);
        _ip4Rewrite = new Ip4Rewrite(_ctx);
        _encap = new VxlanEncap(_ctx, icmp);
        _transmit = new Transmit(_ctx);
        _expired = new int[_ctx.Pending.AddressCapacity * _ctx.Pending.PacketsPerAddress];
        _timerInterval = NodeOptions.Ticks(TimeSpan.FromMilliseconds(100));
    }

    public string Name => _ctx.Name;
    /// <summary>This forwarder's index among the node's workers (0 with one).</summary>
    public int Worker => _ctx.Worker;
    public NodeCounters Counters { get; } = new();
    public ForwardingState State => Volatile.Read(ref _state);
    public ArpCache Arp => _ctx.Arp;
    public ArpPendingQueue PendingArp => _ctx.Pending;
    public PacketPool Pool => _ctx.Pool;

    /// <summary>When set, every stage records what it does to every packet (off on the fast path).</summary>
    public PacketTracer? Tracer
    {
        get => _ctx.Tracer;
        set => _ctx.Tracer = value;
    }

    /// <summary>Makes a new forwarding state current. Safe from any thread; the next poll uses it.</summary>
    public void Publish(ForwardingState state)
    {
        if (state.Node.Name != _ctx.Name) throw new ArgumentException($"state is for node {state.Node.Name}, this forwarder is {_ctx.Name}");
        Volatile.Write(ref _state, state);
    }

    /// <summary>
    /// The loop woke from poll(2): ask every port on the next pass, whatever its back-off (see <see cref="ReceiveBackoff"/>).
    /// Forwarder thread only.
    /// </summary>
    public void Woke() => _backoff.Reset();

    /// <summary>One pass over every port. Returns the number of packets received.</summary>
    public int Poll()
    {
        var state = Volatile.Read(ref _state);
        var ctx = _ctx;
        ctx.State = state;
        ctx.Now = _clock.Now;
        if (!ReferenceEquals(state, _attached)) Attach(state);
        if (ctx.Exchange is { } exchange)
        {
            var learned = exchange.Drain(ctx.Worker, _neighbours);
            for (var i = 0; i < learned; i++) _arpInput.LearnFromWorker(_neighbours[i]);
            if (learned > 0) DrainResume();
        }

        var received = 0;
        var ports = state.Ports;
        for (var p = 0; p < ports.Length; p++)
        {
            var port = ports[p];
            if (port is null || _backoff.Skip(p)) continue;
            var n = port.Receive(_rx.Handles);
            if (n == 0)
            {
                _backoff.Empty(p);
                continue;
            }
            _backoff.Delivered(p);
            received += n;
            _rx.Count = n;
            for (var i = 0; i < n; i++)
            {
                ref var meta = ref ctx.Pool.Meta(_rx.Handles[i]);
                meta.InPort = (ushort)p;
                meta.Flags &= PacketFlags.PortFlags;
            }
            if (p == ForwardingState.UnderlayPort) _decap.Run(_rx);
            else if (p == state.ExternalPort) _externalInput.Run(_rx);
            else _ethernetInput.Run(_rx);
            Process(_rx);
            DrainResume();
        }
        if (ctx.Now >= _nextTimer) Timers();
        DrainResume();
        ctx.Tx.FlushAll();
        ctx.Tally.Add(Counter.RxPackets, received);
        ctx.Tally.Add(Counter.Polls);
        Counters.Flush(ctx.Tally);
        return received;
    }

    private void Process(PacketBurst burst)
    {
        _arpInput.Run(burst);
        _serviceNat.Run(burst);
        _ip4Input.Run(burst);
        _ip4Rewrite.Run(burst);
        _encap.Run(burst);
        _transmit.Run(burst);
    }

    /// <summary>
    /// Packets released by ARP and replies the node built go through the stages once more. Whatever that pass
    /// generates again (an echo reply that needs ARP, say) waits for the next round, a bounded number per poll.
    /// </summary>
    private void DrainResume()
    {
        var resume = _ctx.Resume;
        for (var round = 0; round < 4 && resume.Count > 0; round++)
        {
            var work = _resumeWork;
            var n = resume.Count;
            Array.Copy(resume.Handles, work.Handles, n);
            Array.Copy(resume.Next, work.Next, n);
            Array.Copy(resume.L3Offset, work.L3Offset, n);
            Array.Copy(resume.Address, work.Address, n);
            Array.Copy(resume.OutPort, work.OutPort, n);
            work.Count = n;
            resume.Count = 0;
            Process(work);
        }
    }

    private void Timers()
    {
        var ctx = _ctx;
        _nextTimer = ctx.Now + _timerInterval;
        var expired = ctx.Pending.Tick(ctx.Now, _probes, out var probes, _expired);
        for (var i = 0; i < probes; i++) ctx.SendArpRequest(_probes[i].Address, _probes[i].Port);
        for (var i = 0; i < expired; i++) ctx.Drop(_expired[i], DropReason.ArpUnresolved);
        ctx.Arp.Expire(ctx.Now);
    }

    private void Attach(ForwardingState state)
    {
        var previous = _attached;
        if (previous is not null)
        {
            // A port id that now names another port (or none) must not keep the old port's neighbours.
            for (var p = 1; p < previous.Ports.Length; p++)
            {
                var now = p < state.Ports.Length ? state.Ports[p] : null;
                if (!ReferenceEquals(previous.Ports[p], now)) _ctx.Arp.RemovePort(p);
            }
        }
        _ctx.Tx.Attach(state);
        _ctx.Bindings.Attach(previous, state);
        _backoff.Attach(state.Ports);
        _attached = state;
    }

    /// <summary>Frees everything the forwarder still holds (parked and queued packets). Call after the last poll.</summary>
    public void Drain()
    {
        _ctx.State = Volatile.Read(ref _state);
        var n = _ctx.Pending.ReleaseAll(_expired);
        for (var i = 0; i < n; i++) _ctx.Drop(_expired[i], DropReason.ArpUnresolved);
        _ctx.Tx.FlushAll();
        Counters.Flush(_ctx.Tally);
    }
}
