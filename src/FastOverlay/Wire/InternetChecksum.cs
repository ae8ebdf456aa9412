using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FastOverlay.Wire;

/// <summary>
/// The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
/// Sums are accumulated over native-endian words and swapped once at the end: the one's complement sum is
/// byte-order independent (RFC 1071 s2(B)), which lets the loop read 8 bytes at a time without swapping.
/// </summary>
public static class InternetChecksum
{
    /// <summary>Adds the bytes to a running sum kept in native byte order. Fold with <see cref="Finish"/>.</summary>
    public static ulong Add(ReadOnlySpan<byte> data, ulong sum = 0)
    {
        ref var p = ref MemoryMarshal.GetReference(data);
        var n = data.Length;
        var i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var v = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i));
            sum += (v & 0xFFFF_FFFF) + (v >> 32);
        }
        if (i + 4 <= n)
        {
            sum += Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, i));
            i += 4;
        }
        if (i + 2 <= n)
        {
            sum += Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, i));
            i += 2;
        }
        if (i < n)
            sum += BitConverter.IsLittleEndian ? Unsafe.Add(ref p, i) : (ulong)Unsafe.Add(ref p, i) << 8;
        return sum;
    }

    /// <summary>Folds a native-order sum to 16 bits and returns it in network (big-endian) value order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FoldToNetworkOrder(ulong sum)
    {
        sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
        sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
        var s = (uint)sum;
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        var folded = (ushort)s;
        return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(folded) : folded;
    }

    /// <summary>The checksum field value (complemented sum) for a native-order running sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Finish(ulong sum) => (ushort)~FoldToNetworkOrder(sum);

    /// <summary>The checksum of a whole buffer, as the value to store big-endian in a header field.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => Finish(Add(data));

    /// <summary>True when a header that includes its checksum field sums to 0xFFFF (RFC 1071 s1).</summary>
    public static bool IsValid(ReadOnlySpan<byte> data) => FoldToNetworkOrder(Add(data)) == 0xFFFF;

    /// <summary>
    /// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Unlike RFC 1141's form it never produces 0xFFFF… → 0x0000 errors.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Update(ushort checksum, ushort oldWord, ushort newWord)
    {
        var sum = (uint)(ushort)~checksum + (ushort)~oldWord + newWord;
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    /// <summary>RFC 1624 update for a 32-bit field (an address), as two 16-bit words.</summary>
    public static ushort Update(ushort checksum, uint oldValue, uint newValue)
    {
        checksum = Update(checksum, (ushort)(oldValue >> 16), (ushort)(newValue >> 16));
        return Update(checksum, (ushort)oldValue, (ushort)newValue);
    }

    /// <summary>The UDP/TCP pseudo-header sum (RFC 768) in native order, to seed <see cref="Add"/>.</summary>
    public static ulong PseudoHeader(uint source, uint destination, byte protocol, ushort length)
    {
        Span<byte> ph = stackalloc byte[12];
        BinaryPrimitives.WriteUInt32BigEndian(ph, source);
        BinaryPrimitives.WriteUInt32BigEndian(ph[4..], destination);
        ph[8] = 0;
        ph[9] = protocol;
        BinaryPrimitives.WriteUInt16BigEndian(ph[10..], length);
        return Add(ph);
    }
}
