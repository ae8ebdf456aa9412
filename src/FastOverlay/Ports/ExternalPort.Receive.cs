using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastOverlay.Offload;
using FastOverlay.Pipeline;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;

namespace FastOverlay.Ports;

/// <summary>
/// Receive: each recvmmsg message gathers [virtio_net_hdr][pool buffer][overflow]. A frame that fits its pool
/// buffer (nearly all) is handed on where it landed. One that spilled over (a GRO super-frame) is joined in the
/// scratch buffer and segmented; segments that do not fit this call's handles or the pool wait for the next
/// call, as do the messages behind them, so nothing already read from the socket is lost.
/// </summary>
public sealed unsafe partial class ExternalPort
{
    /// <summary>Room past the pool buffer: a 64 KiB GRO frame (IPv4 total length is 16 bits) plus its Ethernet header.</summary>
    private const int OverflowSize = 64 * 1024;

    // Messages read but not yet handed over ([_next, _end) of the last batch; their buffers stay armed), and a
    // super-frame being cut into segments from the scratch buffer.
    private int _next;
    private int _end;
    private GsoLayout _layout;
    private int _scratchLength;
    private int _segment = -1;

    /// <summary>
    /// The filter version under which the socket was found empty while that filter passes nothing (a node without
    /// NodePorts or external addresses): while it is still the current version a poll costs no system call and no
    /// buffer arming. A filter update makes a new version, so a quiet decision taken on the old one (even racing
    /// with the update) never outlives it. Data thread only.
    /// </summary>
    private int _quietVersion = -1;

    /// <summary>Whether polls skip the socket now (see <see cref="_quietVersion"/>).</summary>
    internal bool IsQuiet => _quietVersion == Volatile.Read(ref _filterVersion);

    public int Receive(Span<int> handles)
    {
        if (_fd < 0) return 0;
        var version = Volatile.Read(ref _filterVersion);
        if (version == _quietVersion) return 0;
        var n = HandOver(handles);
        if (_next < _end || _segment >= 0 || n == handles.Length) return n;

        var pool = _pool;
        var batch = _rx;
        var want = Math.Min(Math.Min(handles.Length - n, batch.Capacity), pool.Available);
        if (want == 0)
        {
            Counters.RxNoBufferOnce();
            return n;
        }
        for (var i = 0; i < want; i++)
        {
            var h = pool.Allocate();
            _armed[i] = h;
            var buffer = pool.WritableFrame(h);
            var k = 0;
            if (_vnet) batch.SetIovec(i, k++, (byte*)(_headers + i), VirtioNetHeader.Length);
            batch.SetIovec(i, k++, (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(buffer)), buffer.Length);
            batch.SetIovec(i, k++, _overflow + (long)i * OverflowSize, OverflowSize);
            batch.SetIovecCount(i, k);
        }
        var received = LibC.RecvMmsg(_fd, batch.Messages, (uint)want, Linux.MsgDontWait, null);
        if (received < 0)
        {
            var errno = Errno.Last;
            if (errno is not (Errno.EAgain or Errno.EIntr)) Counters.RxError(errno);
            received = 0;
        }
        for (var i = received; i < want; i++) pool.Free(_armed[i]);
        // Frames an earlier filter passed are read first; only an empty socket under a closed filter goes quiet.
        if (received == 0 && n == 0 && Volatile.Read(ref _filter).PassesNothing) _quietVersion = version;
        _next = 0;
        _end = received;
        return n + HandOver(handles[n..]);
    }

    /// <summary>Hands over pending segments, then pending messages, while there is room; returns how many.</summary>
    private int HandOver(Span<int> handles)
    {
        var pool = _pool;
        var n = 0;
        long bytes = 0;
        long tooLong = 0;
        while (n < handles.Length)
        {
            if (_segment >= 0)
            {
                n += Segment(handles[n..], ref bytes);
                if (_segment >= 0) break;
                continue;
            }
            if (_next == _end) break;
            var i = _next++;
            var h = _armed[i];
            var length = _rx.ReceivedLength(i) - (_vnet ? VirtioNetHeader.Length : 0);
            if ((_rx.ReceivedFlags(i) & Linux.MsgTrunc) != 0 || length < Ethernet.HeaderLength)
            {
                // Longer than 64 KiB (BIG TCP raised gro_ipv4_max_size) or without the vnet header a GRO frame.
                Counters.AddDrop(DropReason.RxTruncated);
                pool.Free(h);
                continue;
            }
            var header = _vnet ? _headers[i] : default;
            if (length <= PacketPool.MaxFrameLength && header.GsoKind == VirtioNetHeader.GsoNone)
            {
                pool.SetLength(h, length);
                if (header.NeedsChecksum) AfPacketPort.MarkPartial(pool, h, header, vlan: false);
                handles[n++] = h;
                bytes += length;
                continue;
            }
            if (!Spilled(i, length, header)) tooLong++;
            pool.Free(h);
        }
        Counters.AddReceive(n, bytes, tooLong);
        return n;
    }

    /// <summary>
    /// Joins message <paramref name="i"/>'s pool buffer and overflow in the scratch buffer and plans its
    /// segments. False for a frame that is too long and no GSO frame (a jumbo frame): the pool cannot hold it.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool Spilled(int i, int length, in VirtioNetHeader header)
    {
        var head = Math.Min(length, PacketPool.MaxFrameLength);
        _pool.WritableFrame(_armed[i])[..head].CopyTo(new Span<byte>(_scratch, head));
        new ReadOnlySpan<byte>(_overflow + (long)i * OverflowSize, length - head).CopyTo(new Span<byte>(_scratch + head, length - head));
        if (header.GsoKind == VirtioNetHeader.GsoNone) return false;
        var reason = GsoSegmenter.Plan(new ReadOnlySpan<byte>(_scratch, length), header, PacketPool.MaxFrameLength, out _layout);
        if (reason != DropReason.None)
        {
            Counters.AddDrop(reason);
            return true;
        }
        _scratchLength = length;
        _segment = 0;
        return true;
    }

    /// <summary>Writes the next segments of the planned super-frame into pool buffers, as many as fit.</summary>
    private int Segment(Span<int> handles, ref long bytes)
    {
        var pool = _pool;
        var frame = new ReadOnlySpan<byte>(_scratch, _scratchLength);
        var n = 0;
        while (_segment < _layout.Segments && n < handles.Length)
        {
            var h = pool.Allocate();
            if (h < 0)
            {
                Counters.RxNoBufferOnce();
                return n;
            }
            var written = GsoSegmenter.WriteSegment(frame, _layout, _segment, pool.WritableFrame(h), completeChecksum: false);
            pool.SetLength(h, written);
            pool.Meta(h).Flags = PacketFlags.ChecksumPartial;
            handles[n++] = h;
            bytes += written;
            _segment++;
        }
        if (_segment == _layout.Segments)
        {
            Counters.AddSegmentation(1, _layout.Segments);
            _segment = -1;
        }
        return n;
    }

    /// <summary>On close: the buffers of messages read but never handed over go back to the pool.</summary>
    private void ReleasePending()
    {
        for (var i = _next; i < _end; i++) _pool.Free(_armed[i]);
        _next = _end = 0;
        _segment = -1;
    }
}
