using FastOverlay.Pipeline;
using FastOverlay.Ports;

namespace FastOverlay.Control;

/// <summary>Opens the ports a node needs. Real sockets in production; ring ports in unit tests.</summary>
public interface IPortFactory
{
    IPacketPort OpenUnderlay(NodeOptions node, string? underlayInterface, PacketPool pool);

    IPacketPort OpenPod(string interfaceName, PacketPool pool);
}

/// <summary>
/// The UDP underlay socket and one AF_PACKET socket per pod veth, per worker: with several workers the underlay
/// sockets share the VXLAN port (SO_REUSEPORT) and each pod's sockets form one PACKET_FANOUT_HASH group.
/// </summary>
public sealed class SocketPortFactory(AfPacketOptions? podOptions = null, UdpUnderlayOptions? underlayOptions = null, int workers = 1) : IPortFactory
{
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
    /// least 8 each), so a node's ring memory per pod stays what one worker had, not workers times it.
    /// </summary>
    public IPacketPort OpenPod(string interfaceName, PacketPool pool)
    {
        var options = podOptions ?? new AfPacketOptions();
        if (workers > 1) options = options with { Fanout = true, BlockCount = Math.Max(8, options.BlockCount / workers) };
        return new AfPacketPort(interfaceName, pool, options);
    }
}
