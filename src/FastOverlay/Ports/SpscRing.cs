using System.Numerics;
using System.Runtime.InteropServices;

namespace FastOverlay.Ports;

/// <summary>
/// A bounded single-producer single-consumer ring of unmanaged items with burst enqueue and dequeue, lock-free
/// (DPDK's rte_ring in SP/SC mode). Each side owns one index and only reads the other's; the indices sit on
/// separate cache lines so producer and consumer on two cores do not false-share. Indices run freely and are
/// masked on use, so full and empty are told apart without a spare slot.
/// </summary>
public sealed class SpscRing<T> where T : unmanaged
{
    private readonly T[] _items;
    private readonly int _mask;
    private RingIndices _indices;

    public SpscRing(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2);
        var size = (int)BitOperations.RoundUpToPowerOf2((uint)capacity);
        _items = new T[size];
        _mask = size - 1;
    }

    public int Capacity => _items.Length;
    public int Count => (int)(Volatile.Read(ref _indices.Tail) - Volatile.Read(ref _indices.Head));

    /// <summary>Producer side. Enqueues as many as fit, in order; returns how many.</summary>
    public int Enqueue(ReadOnlySpan<T> items)
    {
        var tail = _indices.Tail;
        var free = _items.Length - (int)(tail - Volatile.Read(ref _indices.Head));
        var n = Math.Min(free, items.Length);
        if (n == 0) return 0;
        var start = (int)(tail & _mask);
        var first = Math.Min(n, _items.Length - start);
        items[..first].CopyTo(_items.AsSpan(start));
        items[first..n].CopyTo(_items);
        // Release: the items are visible before the new tail is.
        Volatile.Write(ref _indices.Tail, tail + n);
        return n;
    }

    public bool TryEnqueue(T item) => Enqueue(MemoryMarshal.CreateReadOnlySpan(ref item, 1)) == 1;

    /// <summary>Consumer side. Dequeues up to destination.Length items; returns how many.</summary>
    public int Dequeue(Span<T> destination)
    {
        var head = _indices.Head;
        var available = (int)(Volatile.Read(ref _indices.Tail) - head);
        var n = Math.Min(available, destination.Length);
        if (n == 0) return 0;
        var start = (int)(head & _mask);
        var first = Math.Min(n, _items.Length - start);
        _items.AsSpan(start, first).CopyTo(destination);
        _items.AsSpan(0, n - first).CopyTo(destination[first..]);
        Volatile.Write(ref _indices.Head, head + n);
        return n;
    }
}

// Outside the generic ring: a struct nested in a generic type is generic and cannot have explicit layout.
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal struct RingIndices
{
    [FieldOffset(64)] public long Head;   // next slot to read: written by the consumer
    [FieldOffset(128)] public long Tail;  // next slot to write: written by the producer
}
