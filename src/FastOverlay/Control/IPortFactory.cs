using FastOverlay.Pipeline;
using FastOverlay.Ports;

namespace FastOverlay.Control;

/// <summary>Opens the ports a node needs. Real sockets in production; ring ports in unit tests.</summary>
public interface IPortFactory
{
    IPacketPort OpenUnderlay(NodeOptions node, string? underlayInterface, PacketPool pool);

    IPacketPort OpenPod(string interfaceName, PacketPool pool);
}

/// <summary>The UDP underlay socket and one AF_PACKET socket per pod veth.</summary>
public sealed class SocketPortFactory(AfPacketOptions? podOptions = null, UdpUnderlayOptions? underlayOptions = null) : IPortFactory
{
    public IPacketPort OpenUnderlay(NodeOptions node, string? underlayInterface, PacketPool pool) =>
        new UdpUnderlayPort(node.PublicIp, node.VxlanPort, pool, node.UnderlayMac, (underlayOptions ?? new UdpUnderlayOptions()) with { InnerMtu = node.InnerMtu });

    public IPacketPort OpenPod(string interfaceName, PacketPool pool) => new AfPacketPort(interfaceName, pool, podOptions);
}
