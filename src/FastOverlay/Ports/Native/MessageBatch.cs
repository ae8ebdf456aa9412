using System.Runtime.InteropServices;

namespace FastOverlay.Ports.Native;

/// <summary>
/// Native arrays for one recvmmsg/sendmmsg batch: N mmsghdr, each with one iovec and one socket address, wired
/// together once. Per call a port only writes the iovec base and length (and the address on send), so the data
/// path allocates nothing and the GC never moves what the kernel reads.
/// </summary>
internal sealed unsafe class MessageBatch : IDisposable
{
    private MMsgHdr* _messages;
    private IoVec* _iovecs;
    private byte* _addresses;
    private byte* _control;

    /// <param name="controlSize">Bytes of ancillary data per message (CMSG_SPACE of what is asked for), or 0.</param>
    public MessageBatch(int capacity, int addressSize, int controlSize = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        AddressSize = addressSize;
        _messages = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(MMsgHdr));
        _iovecs = (IoVec*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(IoVec));
        _addresses = addressSize > 0 ? (byte*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)addressSize) : null;
        ControlSize = controlSize;
        // cmsghdr holds a size_t, so each message's control buffer must be 8-byte aligned.
        _control = controlSize > 0 ? (byte*)NativeMemory.AlignedAlloc((nuint)(capacity * controlSize), 8) : null;
        for (var i = 0; i < capacity; i++)
        {
            ref var h = ref _messages[i].Header;
            h.Iov = _iovecs + i;
            h.IovLength = 1;
            h.Name = addressSize > 0 ? _addresses + (long)i * addressSize : null;
            h.NameLength = (uint)addressSize;
            h.Control = controlSize > 0 ? _control + (long)i * controlSize : null;
            h.ControlLength = (nuint)controlSize;
        }
    }

    public int Capacity { get; }
    public int AddressSize { get; }
    public int ControlSize { get; }
    public MMsgHdr* Messages => _messages;

    /// <summary>Points message <paramref name="i"/> at one buffer and resets what recvmmsg overwrites.</summary>
    public void Set(int i, byte* data, int length)
    {
        _iovecs[i].Base = data;
        _iovecs[i].Length = (nuint)length;
        ref var m = ref _messages[i];
        m.Header.NameLength = (uint)AddressSize;
        m.Header.Flags = 0;
        m.Header.ControlLength = (nuint)ControlSize;
        m.Length = 0;
    }

    public ref T Address<T>(int i) where T : unmanaged => ref *(T*)(_addresses + (long)i * AddressSize);

    public int ReceivedLength(int i) => (int)_messages[i].Length;

    public int ReceivedFlags(int i) => _messages[i].Header.Flags;

    /// <summary>
    /// The first 32-bit ancillary value of <paramref name="level"/>/<paramref name="type"/> the kernel returned with
    /// message <paramref name="i"/>, or -1. Layout per cmsg(3): struct cmsghdr { size_t len; int level; int type; }
    /// followed by the data at CMSG_ALIGN(sizeof(cmsghdr)) = 16.
    /// </summary>
    public long ReceivedControlUInt32(int i, int level, int type)
    {
        ref var h = ref _messages[i].Header;
        var p = (byte*)h.Control;
        var end = p + h.ControlLength;
        while (p + 16 <= end)
        {
            var length = *(nuint*)p;
            if (length < 16 || p + length > end) break;
            if (*(int*)(p + 8) == level && *(int*)(p + 12) == type && length >= 20) return *(uint*)(p + 16);
            p += (length + 7) & ~(nuint)7;
        }
        return -1;
    }

    public void Dispose()
    {
        NativeMemory.Free(_messages);
        NativeMemory.Free(_iovecs);
        NativeMemory.Free(_addresses);
        NativeMemory.AlignedFree(_control);
        _control = null;
        _messages = null;
        _iovecs = null;
        _addresses = null;
    }
}
