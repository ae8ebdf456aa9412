using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FastOverlay.Wire;

/// <summary>
/// The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
/// Sums are accumulated over native-endian words and swapped once at the end: the one's complement sum is
/// byte-order independent (RFC 1071 s2(B)), which lets the loop read 8 bytes at a time without swapping.
/// Long inputs go to the vector kernels in InternetChecksumVector.cs; short ones (headers) stay scalar.
/// </summary>
public static partial class InternetChecksum
{
    /// <summary>Below this many bytes the scalar loop wins: a vector kernel's setup and reduction cost more than it saves.</summary>
    internal const int VectorThreshold = 64;

    /// <summary>
    /// Adds the bytes to a running sum kept in native byte order. Fold with <see cref="Finish"/>.
    /// The returned value may differ from another path's as a ulong but always folds to the same checksum;
    /// running sums must stay below 2^63 (the scalar loop adds at most 2^33 per 8 bytes and does not carry out of bit 63).
    /// </summary>
    public static ulong Add(ReadOnlySpan<byte> data, ulong sum = 0)
    {
        if (data.Length < VectorThreshold) return AddScalar(data, sum);
        if (Vector512.IsHardwareAccelerated) return AddVector512(data, sum);
        if (Vector256.IsHardwareAccelerated) return AddVector256(data, sum);
        if (Vector128.IsHardwareAccelerated) return AddVector128(data, sum);
        return AddScalar(data, sum);
    }

    /// <summary>
    /// The scalar reference: native-order 32-bit halves of each 8-byte word summed into 64 bits (RFC 1071 s2(C):
    /// carries out of bit 15 are deferred and folded at the end), then a 4-, 2- and 1-byte tail. The vector kernels
    /// hand their tail to this loop, and the properties hold every kernel to it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong AddScalar(ReadOnlySpan<byte> data, ulong sum)
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
