using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;

namespace FastOverlay.Ports;

/// <summary>The grouping half of <see cref="UdpGsoSender"/>: which frames share a sendmsg, and the batch they make.</summary>
internal sealed unsafe partial class UdpGsoSender
{
    private const int OffsetDestination = Ethernet.HeaderLength + Ipv4Header.OffsetDestination;
    private const int OffsetSourcePort = Ethernet.HeaderLength + Ipv4Header.MinLength;
    private const int OffsetDestinationPort = OffsetSourcePort + 2;

    /// <summary>A frame of the window: its payload, the next frame of its message (-1 at the end), and whether it is done (sent or dropped, buffer freed).</summary>
    private struct Member
    {
        public nint Payload;
        public int Length;
        public int Next;
        public bool Done;
    }

    /// <summary>One sendmsg: a linked list of frames, their segment size, socket and destination (network byte order).</summary>
    private struct Message
    {
        public int First;
        public int Last;
        public int Count;
        public int Bytes;
        public int Segment;
        public int Socket;
        public uint Address;
        public ushort Port;
    }

    /// <summary>Assigns every frame a socket and a message; drops frames VxlanEncap did not build.</summary>
    private void Plan(ReadOnlySpan<int> window)
    {
        var sockets = _fds.Length;
        Array.Fill(_open, -1);
        Array.Clear(_socketCount);
        _messages = 0;
        _sockets = 0;
        for (var j = 0; j < window.Length; j++)
        {
            ref var member = ref _members[j];
            member.Next = -1;
            member.Done = false;
            var frame = _pool.Frame(window[j]);
            if (!Sendable(frame))
            {
                // Not a frame VxlanEncap built: dropped here rather than sent somewhere odd.
                Drop(j, window);
                _counters.TxError(Errno.EInval);
                continue;
            }
            // Both fields are already in network byte order in the frame, as sockaddr_in wants them.
            var address = MemoryMarshal.Read<uint>(frame[OffsetDestination..]);
            var port = MemoryMarshal.Read<ushort>(frame[OffsetDestinationPort..]);
            var s = sockets == 1 ? 0 : BinaryPrimitives.ReadUInt16BigEndian(frame[OffsetSourcePort..]) % sockets;
            var length = frame.Length - PayloadOffset;
            member.Length = length;
            member.Payload = (nint)Unsafe.AsPointer(ref frame[PayloadOffset]);
            var m = _open[s];
            if (m >= 0)
            {
                ref var open = ref _msgs[m];
                if (open.Address == address && open.Port == port && length <= open.Segment && open.Count < MaxSegments && open.Bytes + length <= MaxBytes)
                {
                    _members[open.Last].Next = j;
                    open.Last = j;
                    open.Count++;
                    open.Bytes += length;
                    if (length < open.Segment) _open[s] = -1;
                    continue;
                }
            }
            m = _messages++;
            _msgs[m] = new Message { First = j, Last = j, Count = 1, Bytes = length, Segment = length, Socket = s, Address = address, Port = port };
            if (_socketCount[s]++ == 0) _order[_sockets++] = s;
            _open[s] = Enabled ? m : -1;
        }
    }

    /// <summary>Writes the messages into the batch socket by socket (in first-use order), keeping their order per socket.</summary>
    private void Fill()
    {
        var start = 0;
        for (var o = 0; o < _sockets; o++)
        {
            var s = _order[o];
            _socketStart[s] = start;
            _open[s] = start; // reused below as the socket's next free slot
            start += _socketCount[s];
        }
        for (var m = 0; m < _messages; m++)
        {
            var slot = _open[_msgs[m].Socket]++;
            _slotMessage[slot] = m;
            ref var to = ref _batch.Address<SockAddrIn>(slot);
            to.AddressBigEndian = _msgs[m].Address;
            to.PortBigEndian = _msgs[m].Port;
            var k = 0;
            for (var j = _msgs[m].First; j >= 0; j = _members[j].Next) _batch.SetIovec(slot, k++, (byte*)_members[j].Payload, _members[j].Length);
            _batch.SetIovecCount(slot, k);
            if (k > 1) _batch.SetControlUInt16(slot, Linux.SolUdp, Linux.UdpSegment, (ushort)_msgs[m].Segment);
            else _batch.ClearControl(slot);
        }
    }

    /// <summary>An outer frame with a plain 20-byte IPv4 header and at least a VXLAN header after the UDP one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Sendable(ReadOnlySpan<byte> frame) =>
        frame.Length >= PayloadOffset + VxlanHeader.Length && frame[Ethernet.HeaderLength] == 0x45;
}
