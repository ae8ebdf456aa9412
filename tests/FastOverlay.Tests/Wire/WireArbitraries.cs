using FastOverlay.Wire;
using FsCheck;
using FsCheck.Fluent;

namespace FastOverlay.Tests.Wire;

/// <summary>The fields <see cref="Ipv4Header.Write"/> takes.</summary>
public sealed record Ipv4Fields(ushort TotalLength, ushort Identification, ushort FlagsFragment, byte Ttl, byte Protocol, uint Source, uint Destination, byte Tos);

/// <summary>A valid IPv4 header of 20 to 60 bytes (options are random bytes) with a correct checksum.</summary>
public sealed record Ipv4HeaderBytes(byte[] Bytes)
{
    public override string ToString() => Convert.ToHexString(Bytes);
}

/// <summary>A scapy vector with some bytes changed and maybe cut short: input that is nearly right.</summary>
public sealed record DamagedVector(string Name, byte[] Bytes)
{
    public override string ToString() => Name + " " + Convert.ToHexString(Bytes);
}

/// <summary>
/// Bytes to checksum, placed <see cref="Offset"/> bytes into a larger buffer (so every start alignment mod 64 is
/// reached), and a running sum to start from.
/// </summary>
public sealed record ChecksumCase(byte[] Data, int Offset, ulong Sum)
{
    public override string ToString() =>
        $"{Data.Length} bytes at offset {Offset}, sum 0x{Sum:X}: {Convert.ToHexString(Data.AsSpan(0, Math.Min(Data.Length, 32)))}...";
}

/// <summary>
/// Generators for the wire properties. FsCheck's own integer generators stay near zero at small sizes;
/// these cover the whole range and the edges, which is where header fields go wrong.
/// </summary>
public static class WireArbitraries
{
    private static readonly Gen<int> Word = Gen.Choose(0, 0xFFFF);

    public static Gen<byte> ByteGen => Gen.OneOf(Gen.Choose(0, 255), Gen.Elements(0, 1, 0x7F, 0x80, 0xFF)).Select(i => (byte)i);

    public static Gen<ushort> UInt16Gen => Gen.OneOf(Word, Gen.Elements(0, 1, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)).Select(i => (ushort)i);

    public static Gen<uint> UInt32Gen => Gen.OneOf(
        Word.Zip(Word, (hi, lo) => (uint)hi << 16 | (uint)lo),
        Gen.Elements(0u, 1u, 0xFFFFu, 0x10000u, 0x7FFF_FFFFu, 0x8000_0000u, 0xFFFF_FFFEu, 0xFFFF_FFFFu));

    public static Gen<ulong> UInt64Gen => UInt32Gen.Zip(UInt32Gen, (hi, lo) => (ulong)hi << 32 | lo);

    /// <summary>Byte arrays up to a jumbo-ish 2000 bytes, mostly short.</summary>
    public static Gen<byte[]> BytesGen => Gen.OneOf(
        Gen.Choose(0, 80).SelectMany(n => ByteGen.ArrayOf(n)),
        Gen.Choose(0, 2000).SelectMany(n => ByteGen.ArrayOf(n)));

    /// <summary>Up to 9000 bytes (a jumbo frame), weighted towards the vector kernels' unroll boundaries.</summary>
    private static readonly Gen<int> ChecksumLength = Gen.OneOf(
        Gen.Choose(0, 600),
        Gen.Choose(0, 9000),
        Gen.Elements(15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 319, 320, 321, 1500, 8999, 9000));

    /// <summary>
    /// FsCheck's own bytes for short arrays; seeded random bytes for long ones (generating 9000 bytes one by one
    /// would dominate the run); and runs of one byte, 0xFF above all, which make every add carry.
    /// </summary>
    public static Gen<byte[]> ChecksumDataGen => Gen.OneOf(
        Gen.Choose(0, 300).SelectMany(n => ByteGen.ArrayOf(n)),
        from n in ChecksumLength
        from seed in Gen.Choose(0, int.MaxValue)
        select Seeded(n, seed),
        from n in ChecksumLength
        from b in Gen.Elements(0xFF, 0xFE, 0x80, 0x00)
        select Filled(n, (byte)b));

    /// <summary>
    /// Running sums as callers build them (zero, a pseudo-header's, an earlier Add's) up to 2^62: no path carries out
    /// of bit 63 from there within 9000 bytes (the scalar loop adds below 2^33 per 8 bytes).
    /// </summary>
    public static Gen<ulong> RunningSumGen => Gen.OneOf(
        Gen.Constant(0UL),
        UInt32Gen.Select(x => (ulong)x),
        UInt64Gen.Select(x => x >> 2));

    private static byte[] Seeded(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static byte[] Filled(int length, byte value)
    {
        var bytes = new byte[length];
        Array.Fill(bytes, value);
        return bytes;
    }

    public static Arbitrary<ChecksumCase> Checksum() =>
        (from data in ChecksumDataGen
         from offset in Gen.Choose(0, 63)
         from sum in RunningSumGen
         select new ChecksumCase(data, offset, sum)).ToArbitrary();

    public static Arbitrary<byte> Byte() => ByteGen.ToArbitrary();

    public static Arbitrary<ushort> UInt16() => UInt16Gen.ToArbitrary();

    public static Arbitrary<uint> UInt32() => UInt32Gen.ToArbitrary();

    public static Arbitrary<ulong> UInt64() => UInt64Gen.ToArbitrary();

    public static Arbitrary<byte[]> Bytes() => BytesGen.ToArbitrary();

    public static Arbitrary<Ipv4Fields> Fields() =>
        (from totalLength in UInt16Gen
         from id in UInt16Gen
         from flagsFragment in UInt16Gen
         from ttl in ByteGen
         from protocol in ByteGen
         from source in UInt32Gen
         from destination in UInt32Gen
         from tos in ByteGen
         select new Ipv4Fields(totalLength, id, flagsFragment, ttl, protocol, source, destination, tos)).ToArbitrary();

    public static Arbitrary<Ipv4HeaderBytes> Header() =>
        (from ihl in Gen.Choose(5, 15)
         from bytes in ByteGen.ArrayOf(ihl * 4)
         select MakeHeader(ihl, bytes)).ToArbitrary();

    private static Ipv4HeaderBytes MakeHeader(int ihl, byte[] bytes)
    {
        bytes[0] = (byte)(0x40 | ihl);
        // Total length covers at least the header, as in any valid datagram; the buffer is just the header.
        bytes[2] = 0;
        bytes[3] = (byte)(ihl * 4);
        Ipv4Header.UpdateChecksum(bytes);
        return new Ipv4HeaderBytes(bytes);
    }

    public static Arbitrary<DamagedVector> Damaged() =>
        (from name in Gen.Elements(WireVectors.Names.ToArray())
         from changes in Gen.Choose(0, 4)
         from positions in Gen.Choose(0, 4095).ArrayOf(changes)
         from values in ByteGen.ArrayOf(changes)
         from cut in Gen.Choose(0, 4095)
         from truncate in Gen.Elements(true, false)
         select Damage(name, positions, values, truncate ? cut : -1)).ToArbitrary();

    private static DamagedVector Damage(string name, int[] positions, byte[] values, int cut)
    {
        var bytes = WireVectors.Get(name);
        for (var i = 0; i < positions.Length && bytes.Length > 0; i++)
            bytes[positions[i] % bytes.Length] = values[i];
        if (cut >= 0 && bytes.Length > 0) bytes = bytes[..(cut % bytes.Length)];
        return new DamagedVector(name, bytes);
    }
}
