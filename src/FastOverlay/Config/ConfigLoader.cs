using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Wire;

namespace FastOverlay.Config;

/// <summary>Reads, resolves and validates a configuration file. The only entry point: nothing half-checked gets out.</summary>
public static class ConfigLoader
{
    /// <summary>IPv4's minimum reassembly size 576 less the 50 bytes of VXLAN overhead (NodeOptions' lower bound).</summary>
    public const int MinMtu = 576 - VxlanHeader.OverheadIpv4;
    /// <summary>
    /// The largest inner MTU a packet buffer carries end to end: a received datagram sits at byte 42 of its buffer
    /// behind the synthesized outer headers, then VXLAN 8 and the inner Ethernet header 14.
    /// </summary>
    public const int MaxMtu = PacketPool.MaxFrameLength - UdpUnderlayPort.PayloadOffset - VxlanHeader.Length - Ethernet.HeaderLength;
    /// <summary>flannel's MTU on a standard 1500-byte underlay.</summary>
    public const int DefaultMtu = 1500 - VxlanHeader.OverheadIpv4;

    public static OverlayConfig LoadFile(string path, IInterfaceCatalog interfaces)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException("", $"cannot read {path}: {e.Message}");
        }
        return Load(bytes, interfaces);
    }

    public static OverlayConfig Load(byte[] json, IInterfaceCatalog interfaces) => Complete(ConfigParser.Parse(json), interfaces);

    /// <summary>Resolves and validates a configuration assembled elsewhere (etcd mode: the file's Node plus etcd's network and lease).</summary>
    public static OverlayConfig Complete(OverlayConfig parsed, IInterfaceCatalog interfaces)
    {
        var config = Resolve(parsed, interfaces);
        ConfigValidator.Validate(config, interfaces);
        return config;
    }

    /// <summary>
    /// Fills in what the file may leave out. The gateway MAC defaults to 0a:58 followed by the gateway's IPv4
    /// address (the convention Kubernetes network plugins use for pod MACs): locally administered, unicast,
    /// stable across restarts, and never a veth's own MAC, so the node's kernel ignores frames sent to it.
    /// The MTU defaults to the underlay interface's minus 50, as flannel sets flannel.1's.
    /// </summary>
    private static OverlayConfig Resolve(OverlayConfig config, IInterfaceCatalog interfaces)
    {
        var node = config.Node;
        var gatewayMac = node.GatewayMac ?? new MacAddress(0x0A58_0000_0000UL | node.Gateway.Value);
        var mtu = ResolveMtu(config.Backend.Mtu, node.Underlay, interfaces);
        return config with
        {
            Backend = config.Backend with { Mtu = mtu },
            Node = node with { GatewayMac = gatewayMac },
        };
    }

    /// <summary>Backend.MTU when given, else the underlay's MTU less the 50 bytes of VXLAN, as flannel sizes flannel.1.</summary>
    public static int ResolveMtu(int? configured, string? underlay, IInterfaceCatalog interfaces)
    {
        if (configured is { } mtu) return mtu;
        var underlayMtu = underlay is { } name ? interfaces.Mtu(name) : null;
        return underlayMtu is { } u ? Math.Clamp(u - VxlanHeader.OverheadIpv4, MinMtu, MaxMtu) : DefaultMtu;
    }
}
