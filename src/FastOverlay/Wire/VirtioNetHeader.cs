using System.Runtime.InteropServices;

namespace FastOverlay.Wire;

/*
 * struct virtio_net_hdr (include/uapi/linux/virtio_net.h), 10 bytes, in the host's byte order for a packet socket
 * (legacy virtio is native-endian; virtio_legacy_is_little_endian() on x86 and arm64):
 *  0       1          2          4           6            8             10
 * +-------+----------+----------+-----------+------------+-------------+
 * | flags | gso_type | hdr_len  | gso_size  | csum_start | csum_offset |
 * +-------+----------+----------+-----------+------------+-------------+
 * With PACKET_VNET_HDR it precedes every frame a packet socket reads or writes. csum_start counts from the
 * Ethernet header there (from skb->data, which is the MAC header for SOCK_RAW); on TUN it counts from IP.
 */
[StructLayout(LayoutKind.Sequential, Pack = 1, Size = Length)]
public struct VirtioNetHeader
{
    public const int Length = 10;

    /// <summary>VIRTIO_NET_HDR_F_NEEDS_CSUM: the L4 checksum holds only the pseudo-header sum (CHECKSUM_PARTIAL).</summary>
    public const byte FlagNeedsChecksum = 1;
    /// <summary>VIRTIO_NET_HDR_F_DATA_VALID: the kernel verified the checksum (CHECKSUM_UNNECESSARY); receive only.</summary>
    public const byte FlagDataValid = 2;

    public const byte GsoNone = 0;
    public const byte GsoTcpV4 = 1;
    public const byte GsoUdp = 3;
    public const byte GsoTcpV6 = 4;
    /// <summary>VIRTIO_NET_HDR_GSO_UDP_L4: UDP GSO (USO), one UDP header per segment.</summary>
    public const byte GsoUdpL4 = 5;
    /// <summary>VIRTIO_NET_HDR_GSO_ECN, OR-ed into the type when the flow negotiated ECN; masked before dispatch.</summary>
    public const byte GsoEcn = 0x80;

    public byte Flags;
    public byte GsoType;
    public ushort HeaderLength;
    public ushort GsoSize;
    public ushort ChecksumStart;
    public ushort ChecksumOffset;

    /// <summary>The GSO type without the ECN bit.</summary>
    public readonly byte GsoKind => (byte)(GsoType & ~GsoEcn);

    public readonly bool NeedsChecksum => (Flags & FlagNeedsChecksum) != 0;
}
