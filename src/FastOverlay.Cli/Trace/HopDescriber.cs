using System.Globalization;
using FastOverlay.Capture;
using FastOverlay.Pipeline;
using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Cli.Trace;

/// <summary>
/// One line per thing the pipeline did to a packet, from its trace records: the demo's walks and a live node's
/// `fastoverlay trace` print the same lines. <paramref name="stateOf"/> gives a node's forwarding state, which
/// the records' port, route and peer numbers refer to.
/// </summary>
internal sealed class HopDescriber(Func<string, ForwardingState?> stateOf, PacketTracer tracer)
{
    public string PortName(string node, int port)
    {
        if (port < 0) return "?";
        var ports = stateOf(node)?.Ports;
        return ports is not null && port < ports.Length && ports[port] is { } p ? p.Name : $"port {port}";
    }

    public string? Describe(in TraceRecord r)
    {
        var ip = static (uint a) => Ipv4Address.Format(a);
        switch (r.Event)
        {
            case TraceEvent.EndpointSent:
                return $"sends         {FrameSummary.Describe(tracer.Frame(r))}";
            case TraceEvent.EndpointReceived:
                return $"receives      {FrameSummary.Describe(tracer.Frame(r))}";
            case TraceEvent.Receive:
                return $"rx {PortName(r.Node, r.Port),-15} {FrameSummary.Describe(tracer.Frame(r))}";
            case TraceEvent.Transmit:
                return $"tx {PortName(r.Node, r.Port),-15} {FrameSummary.Describe(tracer.Frame(r))}";
            case TraceEvent.ArpLearned:
                return $"arp learn     {ip(r.A)} is-at {new MacAddress(r.Mac)} on {PortName(r.Node, r.Port)}";
            case TraceEvent.ArpAnswered:
                return $"arp reply     {ip(r.A)} is-at {new MacAddress(r.Mac)} (gateway{(r.A == NodeGateway(r.Node) ? "" : ", proxy ARP")}) to {ip(r.B)}";
            case TraceEvent.ArpRequestSent:
                return $"arp request   who-has {ip(r.A)} on {PortName(r.Node, r.Port)}";
            case TraceEvent.ArpParked:
                return $"arp miss      {ip(r.A)} unresolved: packet parked until the reply";
            case TraceEvent.ArpReleased:
                return $"arp resolved  {ip(r.A)}: parked packet released";
            case TraceEvent.RouteLookup:
                return $"route lookup  {ip(r.A)} -> {RouteText(r.Node, r.A, r.B)}";
            case TraceEvent.TtlDecremented:
                return $"ttl           decremented to {r.A}";
            case TraceEvent.NeighborResolved:
                return $"neighbour     {ip(r.A)} is {new MacAddress(r.Mac)} on {PortName(r.Node, r.Port)}: MACs rewritten";
            case TraceEvent.Encapsulated:
                return $"vxlan encap   outer {ip(r.A)}:{r.C >> 16} -> {ip(r.B)}:{r.C & 0xFFFF}, VNI {r.Mac}";
            case TraceEvent.Decapsulated:
                return $"vxlan decap   from peer {ip(r.A)}, VNI {r.C}: outer 50 bytes stripped";
            case TraceEvent.IcmpEchoReply:
                return $"icmp          echo reply from {ip(r.A)} to {ip(r.B)}";
            case TraceEvent.IcmpError:
                return $"icmp          error type {r.B} code {r.C} to {ip(r.A)}";
            case TraceEvent.ServiceFlowCreated:
                return $"service flow  new flow to {ip(r.B)}: backend {ip(r.A)}:{r.C} chosen (affinity or Maglev), connection tracked";
            case TraceEvent.ServiceDnat:
                return $"service dnat  {ip(r.A)}:{r.C >> 16} -> {ip(r.B)}:{r.C & 0xFFFF}";
            case TraceEvent.ServiceReverseNat:
                return $"service rnat  reply from {ip(r.A)}:{r.C >> 16} now from {ip(r.B)}:{r.C & 0xFFFF}";
            case TraceEvent.Drop:
                return $"drop          {r.Reason}: {DropReasons.Describe(r.Reason)}";
            default:
                return null;
        }
    }

    private uint NodeGateway(string node) => stateOf(node)?.Node.GatewayIp ?? 0;

    private string RouteText(string node, uint address, uint value)
    {
        if (value == RouteTable.NoRoute) return "no route";
        if (stateOf(node) is not { } state) return "?";
        var prefix = state.Routes.Routes.Where(kv => kv.Value == value && kv.Key.Contains(address)).OrderByDescending(kv => kv.Key.Length).Select(kv => kv.Key.ToString()).FirstOrDefault() ?? "?";
        var index = RouteTarget.Index(value);
        return RouteTarget.Kind(value) switch
        {
            RouteKind.LocalSubnet => $"{prefix} local pod subnet (resolve with ARP)",
            RouteKind.LocalPod => $"{prefix} pod on {PortName(node, index)}",
            RouteKind.Peer => $"{prefix} via {state.Peers[index].Name} (VXLAN to {state.Peers[index].PublicIp}, VTEP {state.Peers[index].VtepMac})",
            RouteKind.Local => $"{prefix} this node",
            var k => string.Create(CultureInfo.InvariantCulture, $"{prefix} {k}"),
        };
    }
}
