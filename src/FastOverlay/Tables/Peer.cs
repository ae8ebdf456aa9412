using FastOverlay.Wire;

namespace FastOverlay.Tables;

/// <summary>
/// A remote node, with exactly what a flannel subnet lease carries: its public (underlay) IP, its pod subnet and
/// its VTEP MAC (BackendData.VtepMAC). <see cref="UnderlayMac"/> is the outer next hop's MAC, needed only when
/// FastOverlay writes the outer Ethernet header itself (raw underlay ports and the in-memory fabric).
/// </summary>
public sealed record Peer(string Name, Ipv4Address PublicIp, Ipv4Prefix Subnet, MacAddress VtepMac)
{
    public MacAddress UnderlayMac { get; init; } = MacAddress.Broadcast;
    /// <summary>flannel's DirectRouting: same L2 segment, so route natively instead of encapsulating.</summary>
    public bool DirectRouting { get; init; }
}
