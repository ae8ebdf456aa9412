using System.Numerics;
using System.Runtime.CompilerServices;

namespace FastOverlay.Tables.Services;

/// <summary>
/// An immutable open-addressing map from a 64-bit key (address, port, protocol packed by <see cref="Key"/>) to an
/// index: the service lookups of the data path. One probe sequence, no allocation, no locks; a lookup costs the same
/// with 10 Services or 30,000 (kube-proxy's iptables chains grow linearly, research notes s2.5). Built once per
/// table version by the control plane.
/// </summary>
public sealed class ServiceKeyMap
{
    private const ulong Empty = ulong.MaxValue;
    private readonly ulong[] _keys;
    private readonly int[] _values;
    private readonly int _mask;

    public static readonly ServiceKeyMap None = new([]);

    public ServiceKeyMap(IReadOnlyList<(ulong Key, int Value)> entries)
    {
        var size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(4, entries.Count * 2));
        _keys = new ulong[size];
        _values = new int[size];
        _mask = size - 1;
        Array.Fill(_keys, Empty);
        foreach (var (key, value) in entries)
        {
            var i = Slot(key);
            while (_keys[i] != Empty && _keys[i] != key) i = (i + 1) & _mask;
            _keys[i] = key;
            _values[i] = value;
        }
        Count = entries.Count;
    }

    public int Count { get; }

    /// <summary>Address in the low 32 bits, port above, protocol on top (0 for an address-only key).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Key(uint address, ushort port, byte protocol) => address | ((ulong)port << 32) | ((ulong)protocol << 48);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Find(ulong key)
    {
        var keys = _keys;
        var i = Slot(key);
        while (true)
        {
            var k = keys[i];
            if (k == key) return _values[i];
            if (k == Empty) return -1;
            i = (i + 1) & _mask;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Slot(ulong key) => (int)((key * 0x9E3779B97F4A7C15UL) >> 40) & _mask;
}
