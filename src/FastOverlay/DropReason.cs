namespace FastOverlay;

/// <summary>
/// Why a packet left the pipeline without being transmitted. Every drop has exactly one reason and one counter;
/// the text for each lives in <see cref="DropReasons"/> right below, so a reason is one line in one place.
/// </summary>
public enum DropReason : byte
{
    None = 0,
    FrameTooShort,
    FrameTooLong,
    UnsupportedEtherType,
    WrongDestinationMac,
    ArpMalformed,
    ArpNotForUs,
    Ipv4Truncated,
    Ipv4BadVersion,
    Ipv4BadHeaderLength,
    Ipv4BadTotalLength,
    Ipv4BadChecksum,
    Ipv4BadSource,
    TtlExpired,
    NoRoute,
    LocalProtocolUnsupported,
    ArpUnresolved,
    ArpQueueFull,
    TooBigForUnderlay,
    UdpMalformed,
    NotVxlan,
    VxlanFragment,
    VxlanBadFlags,
    UnknownVni,
    UnknownPeer,
    InnerDstMacNotVtep,
    SpoofedSource,
    ArpSpoofed,
    TxFull,
    PoolExhausted,
    PortRemoved,
    L4ChecksumBad,
    GsoUnsupported,
    GsoMalformed,
    RxTruncated,
}

public static class DropReasons
{
    public const int Count = (int)DropReason.RxTruncated + 1;

    public static string Describe(DropReason reason) => reason switch
    {
        DropReason.None => "not dropped",
        DropReason.FrameTooShort => "frame shorter than its headers (runt)",
        DropReason.FrameTooLong => "frame longer than a packet buffer (jumbo)",
        DropReason.UnsupportedEtherType => "EtherType neither IPv4 nor ARP (or more than one VLAN tag)",
        DropReason.WrongDestinationMac => "unicast frame not addressed to the gateway or VTEP MAC",
        DropReason.ArpMalformed => "ARP not Ethernet/IPv4, or truncated",
        DropReason.ArpNotForUs => "ARP request for an address this node does not answer",
        DropReason.Ipv4Truncated => "IPv4 header or total length runs past the frame",
        DropReason.Ipv4BadVersion => "IP version is not 4",
        DropReason.Ipv4BadHeaderLength => "IPv4 IHL below 5",
        DropReason.Ipv4BadTotalLength => "IPv4 total length shorter than its header",
        DropReason.Ipv4BadChecksum => "IPv4 header checksum wrong",
        DropReason.Ipv4BadSource => "IPv4 source is 0/8, loopback, multicast or broadcast (martian)",
        DropReason.TtlExpired => "TTL would reach zero (ICMP time exceeded sent)",
        DropReason.NoRoute => "no route to the destination (ICMP net unreachable sent)",
        DropReason.LocalProtocolUnsupported => "addressed to the gateway with a protocol it does not serve",
        DropReason.ArpUnresolved => "next hop did not answer ARP in time",
        DropReason.ArpQueueFull => "next hop unresolved and its queue (unres_qlen) or the pending table full",
        DropReason.TooBigForUnderlay => "too big for the underlay after encapsulation (never fragmented, RFC 7348 s4.3)",
        DropReason.UdpMalformed => "UDP header truncated or length wrong",
        DropReason.NotVxlan => "underlay frame not VXLAN for this node (wrong address, protocol or port)",
        DropReason.VxlanFragment => "outer IPv4 fragment (a VTEP may drop them, RFC 7348 s4.3)",
        DropReason.VxlanBadFlags => "VXLAN I flag clear",
        DropReason.UnknownVni => "VXLAN network identifier not configured",
        DropReason.UnknownPeer => "VXLAN from an address that is not a known peer",
        DropReason.InnerDstMacNotVtep => "decapsulated frame not addressed to the local VTEP MAC",
        DropReason.SpoofedSource => "source address not allowed on the port or peer it came from",
        DropReason.ArpSpoofed => "ARP claims an address that belongs to another port",
        DropReason.TxFull => "output port full",
        DropReason.PoolExhausted => "no free packet buffer",
        DropReason.PortRemoved => "output port removed while the packet was in flight",
        DropReason.L4ChecksumBad => "decapsulated TCP/UDP checksum wrong (neither complete nor a partial sum)",
        DropReason.GsoUnsupported => "offload type this node does not segment (not TCPv4/UDPv4 GSO, or VLAN-tagged)",
        DropReason.GsoMalformed => "GSO super-frame whose headers contradict its virtio_net_hdr",
        DropReason.RxTruncated => "frame larger than its receive ring slot, with no full copy queued",
        _ => "unknown",
    };
}
