using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace FastOverlay.Wire;

/// <summary>
/// Writes Ethernet headers with a fixed source MAC and EtherType (the gateway's, on every packet it delivers)
/// as two overlapping 8-byte stores: destination + first two source bytes, then source + type. The second half is
/// computed once. Falls back to <see cref="Ethernet.Write"/> on big-endian machines.
/// </summary>
public readonly struct EthernetHeaderWriter
{
    private readonly ulong _sourceAndType;
    private readonly ulong _sourceHead;
    private readonly MacAddress _source;
    private readonly ushort _etherType;

    public EthernetHeaderWriter(MacAddress source, ushort etherType)
    {
        _source = source;
        _etherType = etherType;
        // Bytes 6..13 of the header: the source MAC then the EtherType, big-endian on the wire.
        _sourceAndType = source.WireBits | ((ulong)BinaryPrimitives.ReverseEndianness(etherType) << 48);
        _sourceHead = (source.WireBits & 0xFFFF) << 48;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Write(Span<byte> frame, MacAddress destination)
    {
        if (!BitConverter.IsLittleEndian)
        {
            Ethernet.Write(frame, destination, _source, _etherType);
            return;
        }
        if (frame.Length < Ethernet.HeaderLength) ThrowTooShort();
        ref var p = ref MemoryMarshal.GetReference(frame);
        Unsafe.WriteUnaligned(ref p, destination.WireBits | _sourceHead);
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref p, 6), _sourceAndType);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTooShort() => throw new ArgumentException("frame shorter than an Ethernet header");
}
