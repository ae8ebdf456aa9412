using System.Buffers.Binary;
using FastOverlay.Config;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Wire;

namespace FastOverlay.Fuzz.Targets;

/// <summary>
/// The configuration file (flannel's net-conf.json plus Node and Peers). Checks: loading either succeeds or throws
/// <see cref="ConfigException"/> naming the problem, never anything else; loading is deterministic; and what
/// loads is sound all the way down: it maps to node options that validate, a forwarding state that builds, routes
/// to every pod and peer, and a node that, given one pod's packet for each peer, sends VXLAN with the configured
/// VNI and port to exactly that peer. "Nothing half-checked gets out" (ConfigLoader), checked by running it.
/// </summary>
public sealed class ConfigTarget : IFuzzTarget
{
    private readonly PacketPool _pool = new(256);
    private readonly FakeInterfaces _interfaces = new();

    public string Name => "config";
    public string Description => "the configuration file (JSON)";

    public void Run(ReadOnlySpan<byte> input)
    {
        var bytes = input.ToArray();
        OverlayConfig config;
        try
        {
            config = ConfigLoader.Load(bytes, _interfaces);
        }
        catch (ConfigException e)
        {
            if (string.IsNullOrWhiteSpace(e.Problem)) throw new InvariantViolation("a ConfigException without a problem");
            return;
        }

        var plan = NodePlan.From(config);
        var again = NodePlan.From(ConfigLoader.Load(bytes, _interfaces));
        if (plan.Options != again.Options || !plan.Peers.SequenceEqual(again.Peers) || !plan.Pods.SequenceEqual(again.Pods))
            throw new InvariantViolation("loading the same bytes twice gave two configurations");
        try
        {
            plan.Options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvariantViolation($"a loaded configuration gives node options that do not validate: {e.Message}", e);
        }
        RunNode(plan);
    }

    private void RunNode(NodePlan plan)
    {
        var (underlayNode, underlayFar) = RingPort.CreatePair("underlay", "fabric", 64);
        var pods = new List<PodAttachment>();
        var far = new List<RingPort>();
        foreach (var pod in plan.Pods)
        {
            var (nodeEnd, podEnd) = RingPort.CreatePair(pod.Interface, "pod", 64);
            pods.Add(new PodAttachment(nodeEnd, pod.Ip));
            far.Add(podEnd);
        }
        ForwardingState state;
        try
        {
            state = ForwardingState.Build(plan.Options, underlayNode, pods, plan.Peers);
        }
        catch (ArgumentException e)
        {
            throw new InvariantViolation($"a loaded configuration does not build a forwarding state: {e.Message}", e);
        }
        var options = plan.Options;
        for (var i = 0; i < plan.Pods.Count; i++)
        {
            if (plan.Pods[i].Ip is { } ip && RouteTarget.Kind(state.Routes.Lookup(ip.Value)) != RouteKind.LocalPod)
                throw new InvariantViolation($"no pod route for {ip}");
        }
        for (var p = 0; p < plan.Peers.Count; p++)
        {
            var value = state.Routes.Lookup(plan.Peers[p].Subnet.Address);
            if (RouteTarget.Kind(value) != RouteKind.Peer || RouteTarget.Index(value) != p) throw new InvariantViolation($"no route to peer {plan.Peers[p].Name}");
        }

        var sender = plan.Pods.ToList().FindIndex(p => p.Ip is not null);
        if (sender < 0 || plan.Peers.Count == 0) return;
        var node = new NodeForwarder(_pool, state, new ManualClock());
        var podIp = plan.Pods[sender].Ip!.Value.Value;
        var podMac = new MacAddress(0x0A58_0000_0000UL | podIp);
        var hello = new byte[Ethernet.MinFrameLength];
        ArpPacket.WriteFrame(hello, MacAddress.Broadcast, ArpPacket.OpRequest, podMac, podIp, MacAddress.Zero, options.GatewayIp);
        Send(far[sender], hello);
        node.Poll();
        if (Drain(far[sender]) != 1) throw new InvariantViolation("the gateway did not answer the pod's ARP");
        var handles = new int[64];
        foreach (var peer in plan.Peers)
        {
            var packet = Canary.Udp(podMac.Value, options.GatewayMac.Value, podIp, peer.Subnet.Address + (peer.Subnet.Length < 31 ? 2u : 0u));
            Send(far[sender], packet);
            node.Poll();
            var n = underlayFar.Receive(handles);
            try
            {
                if (n != 1) throw new InvariantViolation($"a packet for peer {peer.Name} came out {n} times");
                var frame = _pool.Frame(handles[0]);
                var inner = Oracle.VxlanInner(frame, peer.PublicIp.Value, options.VxlanPort, options.Vni, out var source);
                if (inner.IsEmpty || source != options.PublicIp.Value || BinaryPrimitives.ReadUInt32BigEndian(frame[30..]) != peer.PublicIp.Value)
                    throw new InvariantViolation($"the packet for peer {peer.Name} is not VXLAN to it with VNI {options.Vni} and port {options.VxlanPort}");
            }
            finally
            {
                _pool.Free(handles.AsSpan(0, n));
            }
        }
        node.Drain();
        foreach (var port in far) Drain(port);
        if (_pool.InUse != 0) throw new InvariantViolation($"{_pool.InUse} buffers held after the node stopped");
    }

    private void Send(RingPort port, byte[] frame)
    {
        var h = _pool.Allocate();
        frame.CopyTo(_pool.WritableFrame(h));
        _pool.SetLength(h, frame.Length);
        if (port.Transmit([h]) != 1) throw new InvariantViolation("ring full");
    }

    private int Drain(RingPort port)
    {
        Span<int> handles = stackalloc int[64];
        int n, total = 0;
        while ((n = port.Receive(handles)) > 0)
        {
            _pool.Free(handles[..n]);
            total += n;
        }
        return total;
    }

    /// <summary>The interfaces the node sees: an underlay and four veths, with MTUs and MACs.</summary>
    private sealed class FakeInterfaces : IInterfaceCatalog
    {
        private static readonly string[] s_names = ["eth0", "veth-pod1", "veth-pod2", "veth-pod3", "veth-pod4"];

        public bool Exists(string name) => Array.IndexOf(s_names, name) >= 0;

        public int? Mtu(string name) => name == "eth0" ? 1500 : Exists(name) ? 1450 : null;

        public MacAddress? Mac(string name) => Array.IndexOf(s_names, name) is var i and >= 0 ? new MacAddress(0x5254_0000_0000UL | (uint)i) : null;
    }
}
