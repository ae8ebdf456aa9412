using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FastOverlay.Pipeline;

/// <summary>Where a packet's bytes start in its buffer, how many there are, and where it came from.</summary>
public struct PacketMeta
{
    public int Offset;
    public int Length;
    public ushort InPort;
    public PacketFlags Flags;
}

[Flags]
public enum PacketFlags : ushort
{
    None = 0,
    /// <summary>The packet arrived through VXLAN decap; its outer source peer is in <see cref="PacketMeta.InPort"/>'s context.</summary>
    Decapsulated = 1,
    /// <summary>Built by this node (ARP request, ICMP error), not received.</summary>
    Generated = 2,
    /// <summary>
    /// The TCP/UDP checksum field holds only the pseudo-header sum (CHECKSUM_PARTIAL, virtio_net_hdr NEEDS_CSUM):
    /// the pod's stack left it to "hardware". It is finished before the frame leaves for the underlay, or handed
    /// on to a pod as NEEDS_CSUM.
    /// </summary>
    ChecksumPartial = 4,
    /// <summary>The TCP/UDP checksum was verified here (decap), so the frame may join a NEEDS_CSUM super-frame.</summary>
    ChecksumVerified = 8,
    /// <summary>Came from outside the cluster through the external port (a NodePort or external address).</summary>
    External = 16,
    /// <summary>What a port may set on receive; the forwarder clears the rest.</summary>
    PortFlags = ChecksumPartial,
}

/// <summary>
/// A preallocated slab of fixed-size packet buffers on the pinned object heap, handed out as integer handles
/// (as VPP's vlib buffer indices). Each buffer keeps <see cref="Headroom"/> bytes in front of the frame so VXLAN
/// encap can prepend its 50-byte header without moving the payload.
///
/// A pool belongs to one forwarding thread (DPDK's per-lcore cache without the shared ring behind it): no
/// locks, no atomics. Freeing a buffer twice is a bug in this program, never in the input, and throws.
/// </summary>
public sealed unsafe class PacketPool
{
    public const int BufferSize = 2048;
    public const int Headroom = 128;
    /// <summary>Largest frame a buffer holds: 1920 bytes, enough for a 1500-byte MTU plus VLAN tag and VXLAN.</summary>
    public const int MaxFrameLength = BufferSize - Headroom;

    private readonly byte[] _slab;
    private readonly byte* _base;
    private readonly PacketMeta[] _meta;
    private readonly int[] _free;
    private readonly bool[] _inUse;
    private int _freeCount;

    public PacketPool(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _slab = GC.AllocateArray<byte>(capacity * BufferSize, pinned: true);
        _base = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_slab));
        _meta = new PacketMeta[capacity];
        _free = new int[capacity];
        _inUse = new bool[capacity];
        for (var i = 0; i < capacity; i++) _free[i] = capacity - 1 - i;
        _freeCount = capacity;
    }

    public int Capacity => _free.Length;
    public int Available => _freeCount;
    public int InUse => _free.Length - _freeCount;

    /// <summary>A fresh buffer with an empty frame at the headroom mark, or -1 when the pool is exhausted.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Allocate()
    {
        if (_freeCount == 0) return -1;
        var handle = _free[--_freeCount];
        _inUse[handle] = true;
        ref var meta = ref _meta[handle];
        meta.Offset = Headroom;
        meta.Length = 0;
        meta.InPort = 0;
        meta.Flags = PacketFlags.None;
        return handle;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Free(int handle)
    {
        if ((uint)handle >= (uint)_inUse.Length || !_inUse[handle]) ThrowBadFree(handle);
        _inUse[handle] = false;
        _free[_freeCount++] = handle;
    }

    public void Free(ReadOnlySpan<int> handles)
    {
        foreach (var h in handles) Free(h);
    }

    public bool IsAllocated(int handle) => (uint)handle < (uint)_inUse.Length && _inUse[handle];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref PacketMeta Meta(int handle) => ref _meta[handle];

    /// <summary>The frame's bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> Frame(int handle)
    {
        ref var meta = ref _meta[handle];
        return new Span<byte>(_base + (long)handle * BufferSize + meta.Offset, meta.Length);
    }

    /// <summary>The whole buffer from the headroom mark on, for writing a frame of up to <see cref="MaxFrameLength"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> WritableFrame(int handle) => new(_base + (long)handle * BufferSize + Headroom, MaxFrameLength);

    /// <summary>Sets the frame to the first <paramref name="length"/> bytes after the headroom mark.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetLength(int handle, int length)
    {
        ref var meta = ref _meta[handle];
        meta.Offset = Headroom;
        meta.Length = length;
    }

    /// <summary>Trims the frame's length (e.g. Ethernet padding after the IPv4 total length).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Truncate(int handle, int length) => _meta[handle].Length = length;

    /// <summary>Grows the frame at its front into the headroom. False if the headroom is too small.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Prepend(int handle, int bytes)
    {
        ref var meta = ref _meta[handle];
        if (meta.Offset < bytes) return false;
        meta.Offset -= bytes;
        meta.Length += bytes;
        return true;
    }

    /// <summary>Drops bytes from the front of the frame (decap).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Strip(int handle, int bytes)
    {
        ref var meta = ref _meta[handle];
        meta.Offset += bytes;
        meta.Length -= bytes;
    }

    /// <summary>Copies a frame into a new buffer. Returns -1 when the pool is exhausted or the frame too long.</summary>
    public int Clone(int handle)
    {
        var copy = Allocate();
        if (copy < 0) return -1;
        var frame = Frame(handle);
        frame.CopyTo(WritableFrame(copy));
        SetLength(copy, frame.Length);
        _meta[copy].InPort = _meta[handle].InPort;
        _meta[copy].Flags = _meta[handle].Flags;
        return copy;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadFree(int handle) =>
        throw new InvalidOperationException($"packet buffer {handle} freed twice or never allocated: a buffer ownership bug");
}
