using System.Runtime.CompilerServices;
using FastOverlay.Ports.Native;

namespace FastOverlay.Ports;

/// <summary>
/// A PACKET_MMAP receive ring in TPACKET_V3 layout (Documentation/networking/packet_mmap.rst): the kernel fills
/// blocks of variable-size packets and flips a block's status to TP_STATUS_USER when it is full or its retire
/// timer fires; userspace reads packets in place and flips the status back to TP_STATUS_KERNEL. No system call
/// per packet and none per block: a busy receiver only reads shared memory.
///
/// The ownership handshake is the block status word. The kernel writes packets, issues smp_wmb and then the
/// status (prb_close_block); our acquire read of the status orders the packet reads after it. The release
/// write handing the block back orders our reads of its packets before the kernel may overwrite them.
/// </summary>
internal sealed unsafe class TpacketV3Ring : IDisposable
{
    private byte* _base;
    private readonly nuint _size;
    private readonly int _blockSize;
    private readonly int _blockCount;
    private int _block;
    private byte* _packet;
    private uint _left;

    private TpacketV3Ring(byte* mapping, nuint size, int blockSize, int blockCount)
    {
        _base = mapping;
        _size = size;
        _blockSize = blockSize;
        _blockCount = blockCount;
    }

    /// <summary>
    /// Configures the ring on a socket already switched to TPACKET_V3 and maps it. The frame size only feeds the
    /// kernel's geometry check (frame_nr must equal blocks × block_size / frame_size); V3 packs packets by size.
    /// </summary>
    public static TpacketV3Ring Create(int fd, int blockSize, int blockCount, int retireMilliseconds, string target)
    {
        const int frameSize = 2048;
        var request = new TpacketReq3
        {
            BlockSize = (uint)blockSize,
            BlockCount = (uint)blockCount,
            FrameSize = frameSize,
            FrameCount = (uint)(blockSize / frameSize * blockCount),
            RetireBlockTimeout = (uint)retireMilliseconds,
        };
        Fd.SetOption(fd, Linux.SolPacket, Linux.PacketRxRing, request, "setsockopt(PACKET_RX_RING)", target);
        var size = (nuint)blockSize * (nuint)blockCount;
        // MAP_POPULATE faults the ring in now instead of on the first packets.
        var mapping = LibC.Mmap(null, size, Linux.ProtRead | Linux.ProtWrite, Linux.MapShared | Linux.MapPopulate, fd, 0);
        if (mapping == (void*)-1) throw Errno.Error("mmap(PACKET_RX_RING)", target);
        return new TpacketV3Ring((byte*)mapping, size, blockSize, blockCount);
    }

    // TPACKET_ALIGN(sizeof(struct tpacket3_hdr)): the sockaddr_ll follows the 48-byte header.
    private const int SockAddrLlOffset = 48;

    /// <summary>The packet to read next, or false when the kernel has handed over nothing more.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPeek(out RxFrame frame)
    {
        var header = _left != 0 ? (Tpacket3Hdr*)_packet : OpenBlock();
        if (header == null)
        {
            frame = default;
            return false;
        }
        var p = (byte*)header;
        frame = new RxFrame(p + header->MacOffset, (int)header->SnapLength, header->Length, header->Status, (ushort)header->VlanTci, header->VlanTpid, p[SockAddrLlOffset + 10]);
        return true;
    }

    /// <summary>Moves past the current packet; hands its block back to the kernel after the block's last packet.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Advance()
    {
        var header = (Tpacket3Hdr*)_packet;
        if (--_left == 0) ReleaseBlock();
        else _packet += header->NextOffset;
    }

    private Tpacket3Hdr* OpenBlock()
    {
        // The kernel retires only blocks that hold packets, but an empty one costs nothing to skip.
        for (var tries = 0; tries < _blockCount; tries++)
        {
            var desc = (TpacketBlockDesc*)(_base + (long)_block * _blockSize);
            if ((Volatile.Read(ref desc->BlockStatus) & Linux.TpStatusUser) == 0) return null;
            _left = desc->PacketCount;
            if (_left != 0)
            {
                _packet = (byte*)desc + desc->OffsetToFirstPacket;
                return (Tpacket3Hdr*)_packet;
            }
            ReleaseBlock();
        }
        return null;
    }

    private void ReleaseBlock()
    {
        var desc = (TpacketBlockDesc*)(_base + (long)_block * _blockSize);
        Volatile.Write(ref desc->BlockStatus, Linux.TpStatusKernel);
        _block = _block + 1 == _blockCount ? 0 : _block + 1;
        _left = 0;
    }

    public void Dispose()
    {
        if (_base == null) return;
        LibC.Munmap(_base, _size);
        _base = null;
    }
}
