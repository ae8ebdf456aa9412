using System.Runtime.CompilerServices;
using FastOverlay.Ports.Native;

namespace FastOverlay.Ports;

/// <summary>
/// A PACKET_MMAP receive ring in TPACKET_V2 layout: fixed-size slots, each with its own status word. The kernel
/// sets a slot's status to TP_STATUS_USER as soon as the frame is in it and wakes poll(2) per frame, so a frame
/// is visible at once; TPACKET_V3 instead hands over whole blocks, when full or when the block timer fires
/// (at least a millisecond later). V2 costs more memory per frame (every slot is 2 KiB) and nothing in latency.
///
/// Handshake as in V3, per slot: the kernel writes the frame, smp_wmb, then the status (__packet_set_status);
/// an acquire read of the status orders our reads after it, a release write hands the slot back.
/// </summary>
internal sealed unsafe class TpacketV2Ring : IDisposable
{
    public const int FrameSize = 2048;
    // TPACKET_ALIGN(sizeof(struct tpacket2_hdr)): the sockaddr_ll follows the 32-byte header.
    private const int SockAddrLlOffset = 32;

    private byte* _base;
    private readonly nuint _size;
    private readonly int _frameCount;
    private int _frame;

    private TpacketV2Ring(byte* mapping, nuint size, int frameCount)
    {
        _base = mapping;
        _size = size;
        _frameCount = frameCount;
    }

    /// <summary>Configures and maps the ring on a socket already switched to TPACKET_V2. Slots tile each block exactly.</summary>
    public static TpacketV2Ring Create(int fd, int blockSize, int blockCount, string target)
    {
        var framesPerBlock = blockSize / FrameSize;
        var request = new TpacketReq
        {
            BlockSize = (uint)blockSize,
            BlockCount = (uint)blockCount,
            FrameSize = FrameSize,
            FrameCount = (uint)(framesPerBlock * blockCount),
        };
        Fd.SetOption(fd, Linux.SolPacket, Linux.PacketRxRing, request, "setsockopt(PACKET_RX_RING)", target);
        var size = (nuint)blockSize * (nuint)blockCount;
        var mapping = LibC.Mmap(null, size, Linux.ProtRead | Linux.ProtWrite, Linux.MapShared | Linux.MapPopulate, fd, 0);
        if (mapping == (void*)-1) throw Errno.Error("mmap(PACKET_RX_RING)", target);
        return new TpacketV2Ring((byte*)mapping, size, framesPerBlock * blockCount);
    }

    /// <summary>The next frame, or false when the kernel has not filled the next slot yet.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPeek(out RxFrame frame)
    {
        var slot = _base + (long)_frame * FrameSize;
        var header = (Tpacket2Hdr*)slot;
        var status = Volatile.Read(ref header->Status);
        if ((status & Linux.TpStatusUser) == 0)
        {
            frame = default;
            return false;
        }
        frame = new RxFrame(slot + header->MacOffset, (int)header->SnapLength, header->Length, status, header->VlanTci, header->VlanTpid, slot[SockAddrLlOffset + 10]);
        return true;
    }

    /// <summary>Hands the current slot back to the kernel and moves on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Advance()
    {
        var header = (Tpacket2Hdr*)(_base + (long)_frame * FrameSize);
        Volatile.Write(ref header->Status, Linux.TpStatusKernel);
        _frame = _frame + 1 == _frameCount ? 0 : _frame + 1;
    }

    public void Dispose()
    {
        if (_base == null) return;
        LibC.Munmap(_base, _size);
        _base = null;
    }
}
