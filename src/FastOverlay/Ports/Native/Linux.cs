namespace FastOverlay.Ports.Native;

/// <summary>
/// Constants from the Linux UAPI headers (x86-64 and arm64 agree on all of them): linux/socket.h, linux/if_packet.h,
/// linux/in.h, asm-generic/socket.h, asm-generic/errno.h, poll.h, sys/mman.h, sched.h.
/// </summary>
internal static class Linux
{
    public const int AfInet = 2;
    public const int AfPacket = 17;

    public const int SockDgram = 2;
    public const int SockRaw = 3;
    public const int SockNonBlock = 0x800;
    public const int SockCloExec = 0x80000;

    /// <summary>ETH_P_ALL: every protocol. The socket's protocol field is big-endian (htons).</summary>
    public const ushort EthPAll = 0x0003;
    /// <summary>ETH_P_IP: a packet socket bound with it sits in the IPv4 receive handlers only (never sees outgoing frames).</summary>
    public const ushort EthPIp = 0x0800;
    public const int IpProtoIp = 0;
    public const int IpProtoUdp = 17;
    /// <summary>IPPROTO_RAW: a send-only raw socket whose messages carry their own IPv4 header (IP_HDRINCL implied, raw(7)).</summary>
    public const int IpProtoRaw = 255;
    /// <summary>SOL_UDP is IPPROTO_UDP.</summary>
    public const int SolUdp = 17;
    /// <summary>UDP_SEGMENT (Linux 4.18): uint16 segment size, per socket or as a cmsg per sendmsg (UDP GSO).</summary>
    public const int UdpSegment = 103;
    /// <summary>UDP_GRO (Linux 5.0): receive coalesced datagrams, with an int cmsg carrying the segment size.</summary>
    public const int UdpGro = 104;
    /// <summary>CMSG_SPACE(sizeof(int)) on LP64, as <see cref="CmsgSpaceUInt32"/>.</summary>
    public const int CmsgSpaceInt32 = 24;
    /// <summary>CMSG_SPACE(sizeof(uint16)) on LP64: a 16-byte cmsghdr plus 2 bytes padded to 8.</summary>
    public const int CmsgSpaceUInt16 = 24;

    public const int SolSocket = 1;
    public const int SoError = 4;
    public const int SoSndBuf = 7;
    public const int SoRcvBuf = 8;
    public const int SoReusePort = 15;
    /// <summary>The FORCE variants ignore net.core.[rw]mem_max; they need CAP_NET_ADMIN.</summary>
    public const int SoSndBufForce = 32;
    public const int SoRcvBufForce = 33;
    /// <summary>SO_RXQ_OVFL: each datagram carries the socket's running drop count as ancillary data.</summary>
    public const int SoRxqOvfl = 40;
    /// <summary>SO_ATTACH_FILTER: a classic BPF program (struct sock_fprog); attaching again replaces it atomically (RCU).</summary>
    public const int SoAttachFilter = 26;
    /// <summary>CMSG_SPACE(sizeof(uint)) on LP64: a 16-byte cmsghdr plus 4 bytes padded to 8.</summary>
    public const int CmsgSpaceUInt32 = 24;

    public const int IpMtuDiscover = 10;
    /// <summary>IP_PMTUDISC_DO: always set DF and never fragment locally; oversize sends fail with EMSGSIZE.</summary>
    public const int IpPmtuDiscDo = 2;

    public const int SolPacket = 263;
    public const int PacketAddMembership = 1;
    public const int PacketRxRing = 5;
    public const int PacketStatistics = 6;
    public const int PacketCopyThresh = 7;
    public const int PacketVersion = 10;
    /// <summary>PACKET_VNET_HDR: a struct virtio_net_hdr before every frame, in and out (SOCK_RAW only; set before a ring).</summary>
    public const int PacketVnetHdr = 15;
    public const int PacketFanout = 18;
    /// <summary>PACKET_FANOUT_HASH: the kernel spreads a fanout group by flow hash, so a flow stays on one socket.</summary>
    public const int PacketFanoutHash = 0;
    /// <summary>PACKET_FANOUT_FLAG_UNIQUEID (Linux 4.20): with id 0 the kernel picks an id no group in the namespace uses.</summary>
    public const int PacketFanoutFlagUniqueId = 0x2000;
    public const int PacketQdiscBypass = 20;
    public const int PacketIgnoreOutgoing = 23;
    public const ushort PacketMrPromisc = 1;
    public const int TpacketV2 = 1;
    public const int TpacketV3 = 2;

    // tp_status bits (linux/if_packet.h).
    public const uint TpStatusKernel = 0;
    public const uint TpStatusUser = 1 << 0;
    public const uint TpStatusCopy = 1 << 1;
    public const uint TpStatusLosing = 1 << 2;
    /// <summary>The skb was CHECKSUM_PARTIAL: the L4 checksum field holds only the pseudo-header sum.</summary>
    public const uint TpStatusCsumNotReady = 1 << 3;
    public const uint TpStatusVlanValid = 1 << 4;
    public const uint TpStatusVlanTpidValid = 1 << 6;

    public const int MsgDontWait = 0x40;
    public const int MsgTrunc = 0x20;
    /// <summary>MSG_CTRUNC: the ancillary data did not fit the control buffer.</summary>
    public const int MsgCtrunc = 0x08;

    public const short PollIn = 0x001;
    public const short PollErr = 0x008;

    public const int ProtRead = 1;
    public const int ProtWrite = 2;
    public const int MapShared = 1;
    public const int MapPopulate = 0x8000;

    public const int CloneNewNet = 0x40000000;

    public const int IfNameSize = 16;
}
