using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace FastOverlay.Tables.Services;

/// <summary>
/// The fixed-seed hashes behind Maglev: two over a backend's UTF-8 name (its offset and skip, NSDI'16 §3.4) and
/// one over a client's (address, port, protocol). Every node must compute the same values, on every .NET
/// version, or two nodes would send the same flow to different backends after an ECMP change; so nothing here
/// may depend on string.GetHashCode or HashCode (randomised per process). MaglevTableTests pins literal outputs:
/// changing a constant or a step below is a wire-visible change and must fail those tests.
///
/// The construction is our own: a multiply-rotate round per 8-byte block (murmur/xxhash style) and the
/// well-known 64-bit finaliser constants from MurmurHash3's fmix64, which is a bijection with full avalanche.
/// </summary>
internal static class MaglevHash
{
    // Arbitrary odd constants: the 64-bit golden ratio and two large primes.
    private const ulong P1 = 0x9E37_79B9_7F4A_7C15;
    private const ulong P2 = 0xC2B2_AE3D_27D4_EB4F;
    private const ulong P3 = 0x1656_67B1_9E37_79F9;

    // Seeds: ASCII "FO-MAGL1", "FO-MAGL2", "FO-FLOW1". Fixed forever (see above).
    internal const ulong OffsetSeed = 0x464F_2D4D_4147_4C31;
    internal const ulong SkipSeed = 0x464F_2D4D_4147_4C32;
    internal const ulong FlowSeed = 0x464F_2D46_4C4F_5731;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Finalize(ulong h)
    {
        h ^= h >> 33;
        h *= 0xFF51_AFD7_ED55_8CCD;
        h ^= h >> 33;
        h *= 0xC4CE_B9FE_1A85_EC53;
        h ^= h >> 33;
        return h;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Round(ulong h, ulong block) =>
        BitOperations.RotateLeft(h ^ (BitOperations.RotateLeft(block * P2, 31) * P1), 27) * P3 + P1;

    /// <summary>64-bit hash of bytes with a seed: little-endian 8-byte blocks, a zero-padded tail, the length folded in first.</summary>
    internal static ulong Hash(ReadOnlySpan<byte> data, ulong seed)
    {
        var h = seed ^ ((ulong)data.Length * P3);
        while (data.Length >= 8)
        {
            h = Round(h, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        ulong tail = 0;
        for (var i = data.Length - 1; i >= 0; i--) tail = (tail << 8) | data[i];
        return Finalize(Round(h, tail));
    }

    /// <summary>
    /// The flow hash. Injective over its 56 input bits (xor with a constant, an odd multiply and fmix64 are all
    /// bijections), so distinct clients never share a hash, and uniform enough for <c>hash % M</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Flow(uint sourceIp, ushort sourcePort, byte protocol)
    {
        var x = ((ulong)sourceIp << 32) | ((ulong)sourcePort << 8) | protocol;
        return Finalize((x ^ FlowSeed) * P1);
    }
}
