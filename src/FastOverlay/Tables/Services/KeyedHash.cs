using System.Runtime.CompilerServices;

namespace FastOverlay.Tables.Services;

/// <summary>
/// The per-process keyed hash of the conntrack and affinity tables. Their keys are chosen by whoever sends
/// packets, so a fixed or linear hash (CRC32C included: crc(s, x) ^ crc(s, y) does not depend on s) would let a
/// sender aim every flow at one bucket (HashDoS). The seed enters a 64×64→128-bit multiply whose halves are
/// folded (the "mum" step of wyhash-style hashes), which is not linear in the key; the kernel's jhash with a
/// random seed, as used by Cilium and VPP, is the same class of defence. Not cryptographic, and not meant to be
/// stable across processes: unlike <see cref="MaglevHash"/>, nothing outside the process sees these values.
/// </summary>
internal static class KeyedHash
{
    private const ulong S0 = 0xA076_1D64_78BD_642F;
    private const ulong S1 = 0xE703_7ED1_A0B4_28DB;
    private const ulong S2 = 0x8EBC_6AF0_9C88_C6E3;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Mix(ulong a, ulong b, ulong seed)
    {
        var hi = Math.BigMul(a ^ seed ^ S0, b ^ S1 ^ ((seed << 29) | (seed >> 35)), out var lo);
        var x = hi ^ lo;
        hi = Math.BigMul(x ^ S2, S1, out lo);
        return hi ^ lo;
    }
}
