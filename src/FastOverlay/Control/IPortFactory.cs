using FastOverlay.Config;
using FastOverlay.Pipeline;
using FastOverlay.Ports;

namespace FastOverlay.Control;

/// <summary>Opens the ports a node needs. Real sockets in production; ring ports in unit tests.</summary>
public interface IPortFactory
{
    IPacketPort OpenUnderlay(NodeOptions node, string? underlayInterface, PacketPool pool);

    IPacketPort OpenPod(string interfaceName, PacketPool pool);

    /// <summary>
    /// The port for traffic from outside the cluster to the node's Services (NodePorts, LoadBalancer and external
    /// IPs) on the underlay interface, one per worker; null where there is none (ring ports). It starts with a
    /// filter that passes nothing: give it the Services with <see cref="ExternalPort.UpdateFilter(ExternalTraffic)"/>.
    /// </summary>
    IPacketPort? OpenExternal(NodeOptions node, string? underlayInterface, PacketPool pool);
}

/// <summary>
/// The UDP underlay socket, one AF_PACKET socket per pod veth and the external port, per worker: with several
/// workers the underlay sockets share the VXLAN port (SO_REUSEPORT), each pod's sockets form one
/// PACKET_FANOUT_HASH group and the external ports another.
/// </summary>
public sealed class SocketPortFactory(AfPacketOptions? podOptions = null, UdpUnderlayOptions? underlayOptions = null, int workers = 1, ExternalPortOptions? externalOptions = null) : IPortFactory
{
    private readonly object _externalGate = new();
    private readonly object _podGate = new();
    private readonly Dictionary<string, AfPacketPort> _lastPod = new(StringComparer.Ordinal);
    private ExternalPort? _lastExternal;

    public IPacketPort OpenUnderlay(NodeOptions node, string? underlayInterface, PacketPool pool) =>
        new UdpUnderlayPort(node.PublicIp, node.VxlanPort, pool, node.UnderlayMac, Underlay(node));

    /// <summary>
    /// With several workers a peer's SO_REUSEPORT spreads our datagrams by 4-tuple, so they must not all leave from
    /// port 8472: each worker then sends from as many sockets as there are workers (unless set), one per flow hash.
    /// </summary>
    private UdpUnderlayOptions Underlay(NodeOptions node)
    {
        var options = (underlayOptions ?? new UdpUnderlayOptions()) with { InnerMtu = node.InnerMtu, ReusePort = workers > 1 };
        if (workers > 1 && underlayOptions is null) options = options with { TransmitSockets = workers };
        return options;
    }

    /// <summary>
    /// With several workers a pod has one socket and ring per worker; the ring blocks are divided among them (at
    /// least 8 each), so a node's ring memory per pod stays what one worker had, not workers times it. The first
    /// worker's socket on a pod interface gets a fanout group id from the kernel; the next ones join it while that
    /// socket is open (a pod re-created under the same name gets a new group).
    /// </summary>
    public IPacketPort OpenPod(string interfaceName, PacketPool pool)
    {
        ArpIgnore.Set(interfaceName);
        var options = podOptions ?? new AfPacketOptions();
        if (workers == 1) return new AfPacketPort(interfaceName, pool, options);
        options = options with { Fanout = true, BlockCount = Math.Max(8, options.BlockCount / workers) };
        lock (_podGate)
        {
            var group = _lastPod.TryGetValue(interfaceName, out var last) && last.IsOpen ? last.FanoutGroupId : null;
            var port = new AfPacketPort(interfaceName, pool, options with { GroupId = group });
            _lastPod[interfaceName] = port;
            // Forget closed pods' ports, so the map follows the pods there are.
            foreach (var (name, p) in _lastPod)
            {
                if (!p.IsOpen) _lastPod.Remove(name);
            }
            return port;
        }
    }

    /// <summary>
    /// An <see cref="ExternalPort"/> on <paramref name="underlayInterface"/>, or else on the interface that holds
    /// the node's public IP. With several workers the first port asks the kernel for a fanout group and each next
    /// one joins the group of the port opened before it while that one is still open; once the node's ports are
    /// closed (a stop, a lost lease) the next port starts a new group.
    /// </summary>
    public IPacketPort? OpenExternal(NodeOptions node, string? underlayInterface, PacketPool pool)
    {
        var name = underlayInterface ?? InterfaceAddresses.Holding(node.PublicIp)
            ?? throw new IOException($"no interface holds the node's public IP {node.PublicIp}, so there is none to receive NodePort traffic on; set Node.Underlay (or --iface)");
        var options = externalOptions ?? new ExternalPortOptions();
        var nothing = new ExternalTraffic { NodeIp = node.PublicIp };
        if (workers == 1) return new ExternalPort(name, pool, nothing, options);
        lock (_externalGate)
        {
            var group = _lastExternal is { IsOpen: true } last ? last.FanoutGroupId : null;
            return _lastExternal = new ExternalPort(name, pool, nothing, options with { Fanout = true, GroupId = group });
        }
    }
}
