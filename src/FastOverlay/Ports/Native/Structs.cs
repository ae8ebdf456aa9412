using System.Runtime.InteropServices;

namespace FastOverlay.Ports.Native;

// The kernel's structures, laid out as on 64-bit Linux (LP64: pointers and size_t are 8 bytes). Sizes are
// checked by a unit test, so a wrong field shows up before it corrupts a system call.

/// <summary>struct iovec (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoVec
{
    public void* Base;
    public nuint Length;
}

/// <summary>struct msghdr (56 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MsgHdr
{
    public void* Name;
    public uint NameLength;
    public IoVec* Iov;
    public nuint IovLength;
    public void* Control;
    public nuint ControlLength;
    public int Flags;
}

/// <summary>struct mmsghdr (64 bytes): a msghdr plus the byte count the kernel fills in.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct MMsgHdr
{
    public MsgHdr Header;
    public uint Length;
}

/// <summary>struct sockaddr_in (16 bytes). Port and address are in network byte order.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SockAddrIn
{
    public ushort Family;
    public ushort PortBigEndian;
    public uint AddressBigEndian;
    public ulong Zero;
}

/// <summary>struct sockaddr_ll (20 bytes), the address of an AF_PACKET socket.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SockAddrLl
{
    public ushort Family;
    public ushort ProtocolBigEndian;
    public int IfIndex;
    public ushort HaType;
    public byte PacketType;
    public byte HaLength;
    public fixed byte Address[8];
}

/// <summary>struct packet_mreq (16 bytes), for PACKET_ADD_MEMBERSHIP.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PacketMreq
{
    public int IfIndex;
    public ushort Type;
    public ushort AddressLength;
    public fixed byte Address[8];
}

/// <summary>struct tpacket_req3 (28 bytes), the geometry of a TPACKET_V3 ring.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct TpacketReq3
{
    public uint BlockSize;
    public uint BlockCount;
    public uint FrameSize;
    public uint FrameCount;
    /// <summary>Milliseconds after which the kernel hands over a block that is not full.</summary>
    public uint RetireBlockTimeout;
    public uint SizeOfPrivate;
    public uint FeatureRequestWord;
}

/// <summary>struct tpacket_req (16 bytes), the geometry of a TPACKET_V1/V2 ring.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct TpacketReq
{
    public uint BlockSize;
    public uint BlockCount;
    public uint FrameSize;
    public uint FrameCount;
}

/// <summary>struct tpacket2_hdr (32 bytes): the head of one TPACKET_V2 slot; the frame starts at <see cref="MacOffset"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Tpacket2Hdr
{
    public uint Status;
    public uint Length;
    public uint SnapLength;
    public ushort MacOffset;
    public ushort NetOffset;
    public uint Seconds;
    public uint Nanoseconds;
    public ushort VlanTci;
    public ushort VlanTpid;
    public uint Padding;
}

/// <summary>struct tpacket_stats_v3 (12 bytes). Reading it resets the kernel's counters.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct TpacketStatsV3
{
    public uint Packets;
    public uint Drops;
    public uint FreezeQueueCount;
}

/// <summary>
/// The head of a TPACKET_V3 block: struct tpacket_block_desc with its tpacket_hdr_v1 (48 bytes used here).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct TpacketBlockDesc
{
    public uint Version;
    public uint OffsetToPrivate;
    public uint BlockStatus;
    public uint PacketCount;
    public uint OffsetToFirstPacket;
    public uint BlockLength;
    public ulong SequenceNumber;
    public ulong FirstPacketTime;
    public ulong LastPacketTime;
}

/// <summary>struct tpacket3_hdr (48 bytes): one packet in a block; its frame starts at <see cref="MacOffset"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Tpacket3Hdr
{
    public uint NextOffset;
    public uint Seconds;
    public uint Nanoseconds;
    public uint SnapLength;
    public uint Length;
    public uint Status;
    public ushort MacOffset;
    public ushort NetOffset;
    public uint RxHash;
    public uint VlanTci;
    public ushort VlanTpid;
    public ushort Padding;
    public ulong Padding2;
}

/// <summary>struct sock_filter (8 bytes): one classic BPF instruction (linux/filter.h).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SockFilter
{
    public ushort Code;
    public byte JumpTrue;
    public byte JumpFalse;
    public uint K;
}

/// <summary>struct sock_fprog (16 bytes): a classic BPF program for SO_ATTACH_FILTER.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SockFprog
{
    public ushort Length;
    public SockFilter* Filter;
}

/// <summary>struct pollfd (8 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PollFd
{
    public int Fd;
    public short Events;
    public short ReturnedEvents;
}

/// <summary>struct timespec (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Timespec
{
    public long Seconds;
    public long Nanoseconds;
}
