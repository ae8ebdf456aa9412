using System.Diagnostics;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline;

/// <summary>
/// Who this node is and how it encapsulates: the fields of flannel's net-conf.json backend section plus the
/// node's own lease (public IP, subnet, VTEP MAC). Defaults are flannel's: VNI 1, port 8472, 1500-byte underlay.
/// </summary>
public sealed record NodeOptions
{
    public required string Name { get; init; }
    public required Ipv4Address PublicIp { get; init; }
    /// <summary>This node's pod CIDR (the lease's subnet, e.g. 10.244.1.0/24).</summary>
    public required Ipv4Prefix Subnet { get; init; }
    public required MacAddress VtepMac { get; init; }
    /// <summary>MAC of the pods' gateway (what cbr0's MAC is with flannel's bridge).</summary>
    public required MacAddress GatewayMac { get; init; }
    /// <summary>Source MAC of outer frames when FastOverlay writes them (raw underlay, in-memory fabric).</summary>
    public MacAddress UnderlayMac { get; init; } = MacAddress.Zero;

    public uint Vni { get; init; } = 1;
    public ushort VxlanPort { get; init; } = VxlanHeader.LinuxPort;
    public int UnderlayMtu { get; init; } = 1500;
    /// <summary>RFC 7348 s5: the outer UDP checksum SHOULD be zero over IPv4; set to compute it instead.</summary>
    public bool UdpChecksum { get; init; }
    /// <summary>Outer source port range (RFC 7348 s5 recommends the dynamic range 49152–65535).</summary>
    public ushort SourcePortMin { get; init; } = 49152;
    public ushort SourcePortMax { get; init; } = 65535;
    public byte OuterTtl { get; init; } = 64;

    /// <summary>
    /// Answer ARP for every address of the local subnet with the gateway MAC, so pods that treat the subnet as
    /// on-link still send through the gateway (the node routes between its pods instead of bridging them).
    /// </summary>
    public bool ProxyArp { get; init; } = true;

    public int ArpCacheCapacity { get; init; } = 1024;
    public TimeSpan ArpReachableTime { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan ArpExpireTime { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan ArpRetransmitTime { get; init; } = TimeSpan.FromSeconds(1);
    public int ArpPendingAddresses { get; init; } = 64;
    /// <summary>Packets parked per unresolved address (the kernel's old unres_qlen default of 3).</summary>
    public int ArpPendingPerAddress { get; init; } = 3;
    /// <summary>ICMP errors this node may send per second (the kernel's icmp_msgs_per_sec is 1000).</summary>
    public int IcmpErrorsPerSecond { get; init; } = 1000;

    public uint GatewayIp => Subnet.Address + 1;
    /// <summary>The VTEP address flannel gives flannel.1: the subnet's network address, as a /32.</summary>
    public uint VtepIp => Subnet.Address;
    /// <summary>
    /// Largest inner IPv4 packet that fits the underlay: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 = 50
    /// bytes count against the underlay MTU (flannel sets flannel.1's MTU to the underlay's minus 50).
    /// </summary>
    public int InnerMtu => UnderlayMtu - (Ipv4Header.MinLength + UdpHeader.Length + VxlanHeader.Length + Ethernet.HeaderLength);

    internal static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    public void Validate()
    {
        if (Vni > VxlanHeader.MaxVni) throw new ArgumentOutOfRangeException(nameof(Vni), Vni, "VNI is 24 bits (at most 16777215)");
        if (UnderlayMtu is < 576 or > 9000) throw new ArgumentOutOfRangeException(nameof(UnderlayMtu), UnderlayMtu, "underlay MTU must be 576..9000");
        if (SourcePortMin > SourcePortMax) throw new ArgumentException($"source port range {SourcePortMin}-{SourcePortMax} is empty", nameof(SourcePortMin));
        if (Subnet.Length > 30) throw new ArgumentException($"subnet {Subnet} leaves no room for a gateway and pods", nameof(Subnet));
        if (PublicIp.Value == 0) throw new ArgumentException("public IP 0.0.0.0", nameof(PublicIp));
    }
}
