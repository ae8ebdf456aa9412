using System.Runtime.InteropServices;

namespace FastOverlay.Ports.Native;

/// <summary>
/// Native arrays for one recvmmsg/sendmmsg batch: N mmsghdr, each with up to K iovecs, one socket address and a
/// control buffer, wired together once. Per call a port only writes iovec bases and lengths (and the address or
/// a cmsg on send), so the data path allocates nothing and the GC never moves what the kernel reads.
/// Several iovecs per message let one sendmsg gather a GSO super-frame (UDP_SEGMENT datagrams, or a coalesced
/// TCP frame behind its virtio_net_hdr) straight from the packet buffers, with no copy in userspace.
/// </summary>
internal sealed unsafe class MessageBatch : IDisposable
{
    private MMsgHdr* _messages;
    private IoVec* _iovecs;
    private byte* _addresses;
    private byte* _control;

    /// <param name="controlSize">Bytes of ancillary data per message (CMSG_SPACE of what is asked for), or 0.</param>
    /// <param name="iovecsPerMessage">Most iovecs one message may gather (at most UIO_MAXIOV = 1024).</param>
    public MessageBatch(int capacity, int addressSize, int controlSize = 0, int iovecsPerMessage = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(iovecsPerMessage, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(iovecsPerMessage, 1024);
        Capacity = capacity;
        AddressSize = addressSize;
        IovecsPerMessage = iovecsPerMessage;
        _messages = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)sizeof(MMsgHdr));
        _iovecs = (IoVec*)NativeMemory.AllocZeroed((nuint)(capacity * iovecsPerMessage), (nuint)sizeof(IoVec));
        _addresses = addressSize > 0 ? (byte*)NativeMemory.AllocZeroed((nuint)capacity, (nuint)addressSize) : null;
        ControlSize = controlSize;
        // cmsghdr holds a size_t, so each message's control buffer must be 8-byte aligned.
        _control = controlSize > 0 ? (byte*)NativeMemory.AlignedAlloc((nuint)(capacity * controlSize), 8) : null;
        if (_control != null) NativeMemory.Clear(_control, (nuint)(capacity * controlSize));
        for (var i = 0; i < capacity; i++)
        {
            ref var h = ref _messages[i].Header;
            h.Iov = _iovecs + (long)i * iovecsPerMessage;
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
    public int IovecsPerMessage { get; }
    public MMsgHdr* Messages => _messages;

    /// <summary>Points message <paramref name="i"/> at one buffer and resets what recvmmsg overwrites.</summary>
    public void Set(int i, byte* data, int length)
    {
        var iov = _iovecs + (long)i * IovecsPerMessage;
        iov->Base = data;
        iov->Length = (nuint)length;
        Reset(i, 1);
    }

    /// <summary>Sets iovec <paramref name="k"/> of message <paramref name="i"/>; finish with <see cref="SetIovecCount"/>.</summary>
    public void SetIovec(int i, int k, byte* data, int length)
    {
        var iov = _iovecs + (long)i * IovecsPerMessage + k;
        iov->Base = data;
        iov->Length = (nuint)length;
    }

    /// <summary>How many of message <paramref name="i"/>'s iovecs are in use; resets what recvmmsg overwrites.</summary>
    public void SetIovecCount(int i, int count) => Reset(i, count);

    private void Reset(int i, int iovecs)
    {
        ref var m = ref _messages[i];
        m.Header.IovLength = (nuint)iovecs;
        m.Header.NameLength = (uint)AddressSize;
        m.Header.Flags = 0;
        m.Header.ControlLength = (nuint)ControlSize;
        m.Length = 0;
    }

    /// <summary>Sends message <paramref name="i"/> with no ancillary data.</summary>
    public void ClearControl(int i) => _messages[i].Header.ControlLength = 0;

    /// <summary>
    /// Sends message <paramref name="i"/> with one cmsg carrying a uint16 (UDP_SEGMENT's gso_size): cmsg_len is
    /// CMSG_LEN(2) = 18, the control length CMSG_SPACE(2) = 24 (cmsg(3)).
    /// </summary>
    public void SetControlUInt16(int i, int level, int type, ushort value)
    {
        ref var h = ref _messages[i].Header;
        var p = (byte*)h.Control;
        *(nuint*)p = 18;
        *(int*)(p + 8) = level;
        *(int*)(p + 12) = type;
        *(ushort*)(p + 16) = value;
        h.ControlLength = Linux.CmsgSpaceUInt16;
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
