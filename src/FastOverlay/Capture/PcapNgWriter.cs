using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;

namespace FastOverlay.Capture;

/// <summary>
/// Streams frames to a pcapng file (the format Wireshark and tshark write by default) through a
/// <see cref="PipeWriter"/>: blocks are written straight into the pipe's pooled buffers and flushed to the file in
/// large writes. Each capture point (a pod's eth0, a node's port) is its own pcapng interface, named, so a frame
/// seen at every hop shows which hop saw it; the EPB flags say inbound or outbound.
/// </summary>
public sealed class PcapNgWriter : IAsyncDisposable
{
    private const uint BlockSectionHeader = 0x0A0D_0D0A;
    private const uint BlockInterfaceDescription = 0x0000_0001;
    private const uint BlockEnhancedPacket = 0x0000_0006;
    private const ushort LinkTypeEthernet = 1;
    private const ushort OptionEnd = 0;
    private const ushort OptionComment = 1;
    private const ushort OptionIfName = 2;
    private const ushort OptionEpbFlags = 2;

    private readonly PipeWriter _writer;
    private readonly Dictionary<string, int> _interfaces = [];

    public PcapNgWriter(Stream stream)
    {
        _writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: false));
        WriteSectionHeader();
    }

    public int PacketCount { get; private set; }

    public enum Direction : byte { Unknown = 0, Inbound = 1, Outbound = 2 }

    /// <summary>The interface id for a capture point, declaring it on first use.</summary>
    public int Interface(string name)
    {
        if (_interfaces.TryGetValue(name, out var id)) return id;
        id = _interfaces.Count;
        _interfaces[name] = id;
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var optionsLength = 4 + Pad(nameBytes.Length) + 4;
        var total = 8 + 8 + optionsLength + 4;
        var span = _writer.GetSpan(total);
        BinaryPrimitives.WriteUInt32LittleEndian(span, BlockInterfaceDescription);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], (uint)total);
        BinaryPrimitives.WriteUInt16LittleEndian(span[8..], LinkTypeEthernet);
        BinaryPrimitives.WriteUInt16LittleEndian(span[10..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(span[12..], 0); // snaplen: no limit
        var o = 16;
        o = WriteOption(span, o, OptionIfName, nameBytes);
        o = WriteOption(span, o, OptionEnd, []);
        BinaryPrimitives.WriteUInt32LittleEndian(span[o..], (uint)total);
        _writer.Advance(total);
        return id;
    }

    /// <summary>Appends one frame. <paramref name="timestampMicroseconds"/> is since the Unix epoch (if_tsresol default 10^-6).</summary>
    public void WritePacket(int interfaceId, long timestampMicroseconds, ReadOnlySpan<byte> frame, Direction direction, string? comment = null)
    {
        var commentBytes = comment is null ? [] : Encoding.UTF8.GetBytes(comment);
        var optionsLength = 8 + (comment is null ? 0 : 4 + Pad(commentBytes.Length)) + 4;
        var total = 28 + Pad(frame.Length) + optionsLength + 4;
        var span = _writer.GetSpan(total);
        BinaryPrimitives.WriteUInt32LittleEndian(span, BlockEnhancedPacket);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], (uint)total);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], (uint)interfaceId);
        BinaryPrimitives.WriteUInt32LittleEndian(span[12..], (uint)((ulong)timestampMicroseconds >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(span[16..], (uint)timestampMicroseconds);
        BinaryPrimitives.WriteUInt32LittleEndian(span[20..], (uint)frame.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(span[24..], (uint)frame.Length);
        frame.CopyTo(span[28..]);
        span.Slice(28 + frame.Length, Pad(frame.Length) - frame.Length).Clear();
        var o = 28 + Pad(frame.Length);
        Span<byte> flags = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(flags, (uint)direction);
        o = WriteOption(span, o, OptionEpbFlags, flags);
        if (comment is not null) o = WriteOption(span, o, OptionComment, commentBytes);
        o = WriteOption(span, o, OptionEnd, []);
        BinaryPrimitives.WriteUInt32LittleEndian(span[o..], (uint)total);
        _writer.Advance(total);
        PacketCount++;
    }

    public async ValueTask FlushAsync() => await _writer.FlushAsync();

    public async ValueTask DisposeAsync()
    {
        await _writer.FlushAsync();
        await _writer.CompleteAsync();
    }

    private void WriteSectionHeader()
    {
        const int total = 28;
        var span = _writer.GetSpan(total);
        BinaryPrimitives.WriteUInt32LittleEndian(span, BlockSectionHeader);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], total);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], 0x1A2B_3C4D); // byte-order magic
        BinaryPrimitives.WriteUInt16LittleEndian(span[12..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(span[14..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(span[16..], -1); // section length unknown
        BinaryPrimitives.WriteUInt32LittleEndian(span[24..], total);
        _writer.Advance(total);
    }

    private static int Pad(int length) => (length + 3) & ~3;

    private static int WriteOption(Span<byte> span, int offset, ushort code, ReadOnlySpan<byte> value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(span[offset..], code);
        BinaryPrimitives.WriteUInt16LittleEndian(span[(offset + 2)..], (ushort)value.Length);
        value.CopyTo(span[(offset + 4)..]);
        span.Slice(offset + 4 + value.Length, Pad(value.Length) - value.Length).Clear();
        return offset + 4 + Pad(value.Length);
    }
}
