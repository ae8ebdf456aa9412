namespace FastOverlay.Pipeline;

public enum RouteKind : byte
{
    None = 0,
    /// <summary>A configured pod: on-link on a known port (a /32).</summary>
    LocalPod = 1,
    /// <summary>The node's pod subnet: on-link, port found by ARP (what cbr0's connected route is).</summary>
    LocalSubnet = 2,
    /// <summary>A remote node's pod subnet: VXLAN to that peer.</summary>
    Peer = 3,
    /// <summary>An address of this node (gateway, VTEP): delivered to the node itself.</summary>
    Local = 4,
    /// <summary>Deliberately unreachable.</summary>
    Blackhole = 5,
    /// <summary>
    /// The node's own stack, through the host port: its overlay address (the subnet's first address, as flannel puts
    /// on flannel.1) and everything outside the cluster (the default route), reached at that address as next hop.
    /// </summary>
    Host = 6,
}

/// <summary>Packs what a route leads to into the route table's 24-bit value: 4 bits of kind, 20 of index.</summary>
public static class RouteTarget
{
    public const int MaxIndex = 0xF_FFFF;

    public static uint Encode(RouteKind kind, int index = 0)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)index, (uint)MaxIndex, nameof(index));
        return ((uint)kind << 20) | (uint)index;
    }

    public static RouteKind Kind(uint value) => (RouteKind)(value >> 20);
    public static int Index(uint value) => (int)(value & MaxIndex);
}
