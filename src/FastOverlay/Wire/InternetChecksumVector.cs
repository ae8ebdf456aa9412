using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FastOverlay.Wire;

/// <summary>
/// Vector kernels for <see cref="InternetChecksum.Add"/>, one per width so that a test can hold each to the scalar
/// reference on whatever machine runs it (a kernel whose width is not accelerated still runs, in software, correctly).
/// <para>
/// Every kernel sums exactly what the scalar loop sums: the native-order 32-bit halves of each 8-byte word, starting
/// at the span's first byte. Vector widths are multiples of 8 bytes, so the tail handed to the scalar loop starts at
/// an even offset and pairs its bytes into 16-bit words as the scalar loop would have (RFC 1071 s2(B): the byte order
/// of the words does not matter, only which bytes pair up). The start address's alignment does not enter into it.
/// </para>
/// <para>
/// Per 64-bit lane, each vector adds to two accumulators: <c>all += v</c> (wrapping, so it holds the lane sum mod
/// 2^64) and <c>high += v &gt;&gt;&gt; 32</c> (exact). Since sum(v) = sum(low) + 2^32 sum(high), the low halves'
/// sum is <c>all - (high &lt;&lt; 32)</c> mod 2^64, and it is exact because it is below 2^64: a span holds fewer
/// than 2^31 bytes, so under 2^28 words, and the sum of under 2^28 values below 2^32 is below 2^60. The same bound
/// keeps <c>high</c> exact in every lane and summed over all lanes, so no accumulator ever needs an intermediate fold,
/// whatever the length. That is one shift and two adds per vector, against four for masking both halves.
/// </para>
/// </summary>
public static partial class InternetChecksum
{
    /// <summary>The 512-bit kernel (AVX-512): four vectors (256 bytes) per iteration, then one at a time.</summary>
    internal static ulong AddVector512(ReadOnlySpan<byte> data, ulong sum)
    {
        ref var p = ref MemoryMarshal.GetReference(data);
        var n = (nuint)data.Length;
        nuint i = 0;
        Vector512<ulong> all0 = default, all1 = default, all2 = default, all3 = default;
        Vector512<ulong> high0 = default, high1 = default, high2 = default, high3 = default;
        // Four independent chains hide the add latency and keep the loop overhead to one branch per 256 bytes.
        for (; i + (nuint)(4 * Vector512<byte>.Count) <= n; i += (nuint)(4 * Vector512<byte>.Count))
        {
            var v0 = Vector512.LoadUnsafe(ref p, i).AsUInt64();
            var v1 = Vector512.LoadUnsafe(ref p, i + (nuint)Vector512<byte>.Count).AsUInt64();
            var v2 = Vector512.LoadUnsafe(ref p, i + (nuint)(2 * Vector512<byte>.Count)).AsUInt64();
            var v3 = Vector512.LoadUnsafe(ref p, i + (nuint)(3 * Vector512<byte>.Count)).AsUInt64();
            all0 += v0;
            all1 += v1;
            all2 += v2;
            all3 += v3;
            high0 += v0 >>> 32;
            high1 += v1 >>> 32;
            high2 += v2 >>> 32;
            high3 += v3 >>> 32;
        }
        for (; i + (nuint)Vector512<byte>.Count <= n; i += (nuint)Vector512<byte>.Count)
        {
            var v = Vector512.LoadUnsafe(ref p, i).AsUInt64();
            all0 += v;
            high0 += v >>> 32;
        }
        // Adding the accumulators is safe: "all" is mod 2^64 by design, and the high halves stay below 2^60 in total.
        var all = Vector512.Sum(all0 + all1 + (all2 + all3));
        var high = Vector512.Sum(high0 + high1 + (high2 + high3));
        return AddTail(data, (int)i, all, high, sum);
    }

    /// <summary>The 256-bit kernel (AVX2): four vectors (128 bytes) per iteration, then one at a time.</summary>
    internal static ulong AddVector256(ReadOnlySpan<byte> data, ulong sum)
    {
        ref var p = ref MemoryMarshal.GetReference(data);
        var n = (nuint)data.Length;
        nuint i = 0;
        Vector256<ulong> all0 = default, all1 = default, all2 = default, all3 = default;
        Vector256<ulong> high0 = default, high1 = default, high2 = default, high3 = default;
        for (; i + (nuint)(4 * Vector256<byte>.Count) <= n; i += (nuint)(4 * Vector256<byte>.Count))
        {
            var v0 = Vector256.LoadUnsafe(ref p, i).AsUInt64();
            var v1 = Vector256.LoadUnsafe(ref p, i + (nuint)Vector256<byte>.Count).AsUInt64();
            var v2 = Vector256.LoadUnsafe(ref p, i + (nuint)(2 * Vector256<byte>.Count)).AsUInt64();
            var v3 = Vector256.LoadUnsafe(ref p, i + (nuint)(3 * Vector256<byte>.Count)).AsUInt64();
            all0 += v0;
            all1 += v1;
            all2 += v2;
            all3 += v3;
            high0 += v0 >>> 32;
            high1 += v1 >>> 32;
            high2 += v2 >>> 32;
            high3 += v3 >>> 32;
        }
        for (; i + (nuint)Vector256<byte>.Count <= n; i += (nuint)Vector256<byte>.Count)
        {
            var v = Vector256.LoadUnsafe(ref p, i).AsUInt64();
            all0 += v;
            high0 += v >>> 32;
        }
        var all = Vector256.Sum(all0 + all1 + (all2 + all3));
        var high = Vector256.Sum(high0 + high1 + (high2 + high3));
        return AddTail(data, (int)i, all, high, sum);
    }

    /// <summary>The 128-bit kernel (SSE2, AdvSimd): four vectors (64 bytes) per iteration, then one at a time.</summary>
    internal static ulong AddVector128(ReadOnlySpan<byte> data, ulong sum)
    {
        ref var p = ref MemoryMarshal.GetReference(data);
        var n = (nuint)data.Length;
        nuint i = 0;
        Vector128<ulong> all0 = default, all1 = default, all2 = default, all3 = default;
        Vector128<ulong> high0 = default, high1 = default, high2 = default, high3 = default;
        for (; i + (nuint)(4 * Vector128<byte>.Count) <= n; i += (nuint)(4 * Vector128<byte>.Count))
        {
            var v0 = Vector128.LoadUnsafe(ref p, i).AsUInt64();
            var v1 = Vector128.LoadUnsafe(ref p, i + (nuint)Vector128<byte>.Count).AsUInt64();
            var v2 = Vector128.LoadUnsafe(ref p, i + (nuint)(2 * Vector128<byte>.Count)).AsUInt64();
            var v3 = Vector128.LoadUnsafe(ref p, i + (nuint)(3 * Vector128<byte>.Count)).AsUInt64();
            all0 += v0;
            all1 += v1;
            all2 += v2;
            all3 += v3;
            high0 += v0 >>> 32;
            high1 += v1 >>> 32;
            high2 += v2 >>> 32;
            high3 += v3 >>> 32;
        }
        for (; i + (nuint)Vector128<byte>.Count <= n; i += (nuint)Vector128<byte>.Count)
        {
            var v = Vector128.LoadUnsafe(ref p, i).AsUInt64();
            all0 += v;
            high0 += v >>> 32;
        }
        var all = Vector128.Sum(all0 + all1 + (all2 + all3));
        var high = Vector128.Sum(high0 + high1 + (high2 + high3));
        return AddTail(data, (int)i, all, high, sum);
    }

    /// <summary>
    /// Recovers the vector part's sum from the two accumulators, folds it into the running sum and hands the bytes
    /// from <paramref name="done"/> on (less than one vector, at an even offset) to the scalar loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong AddTail(ReadOnlySpan<byte> data, int done, ulong all, ulong high, ulong sum)
    {
        var low = all - (high << 32); // exact, see the class remarks: both sums are below 2^60
        var vectorSum = low + high; // below 2^61
        // Fold to at most 33 bits (end-around carry, RFC 1071 s2(C): 2^32 = 1 mod 0xFFFF) so that the running sum
        // grows no faster than under the scalar loop, and callers keep the same headroom to add words of their own.
        vectorSum = (vectorSum & 0xFFFF_FFFF) + (vectorSum >> 32);
        return AddScalar(data[done..], sum + vectorSum);
    }
}
