using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastOverlay.Offload;
using FastOverlay.Pipeline;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;

namespace FastOverlay.Ports;

/// <summary>
/// Transmit: the IPv4 packet behind each frame's Ethernet header, to the packet's own destination, through the
/// IPPROTO_RAW socket. raw(7) with IP_HDRINCL sends the header as written (it fills in only a zero source or
/// ID and the checksum); a raw send gets no checksum offload, so a partial TCP/UDP checksum is finished here.
/// The kernel routes by destination and does not fragment a header-included packet: one over the route's MTU
/// fails with EMSGSIZE, which is counted like every other refusal, per errno.
/// </summary>
public sealed unsafe partial class ExternalPort
{
    private const int MinPacket = Ethernet.HeaderLength + Ipv4Header.MinLength;

    public int Transmit(ReadOnlySpan<int> handles)
    {
        if (_txFd < 0) return 0;
        var pool = _pool;
        var batch = _tx;
        var done = 0;
        long frames = 0;
        long bytes = 0;
        while (done < handles.Length)
        {
            // Messages are handles[done..done+m): a frame that is no IPv4 packet ends the window, so on a short
            // send everything after `done` is still the caller's, untouched.
            var m = 0;
            while (m < batch.Capacity && done + m < handles.Length)
            {
                var h = handles[done + m];
                var frame = pool.Frame(h);
                if (!IsIpv4(frame)) break;
                if ((pool.Meta(h).Flags & PacketFlags.ChecksumPartial) != 0)
                {
                    L4Checksum.Complete(frame);
                    pool.Meta(h).Flags &= ~PacketFlags.ChecksumPartial;
                }
                // By the IPv4 total length: the kernel rewrites tot_len to what it is given, so Ethernet padding
                // behind a short packet would become payload.
                var packet = Ipv4Header.TotalLength(frame[Ethernet.HeaderLength..]);
                batch.Set(m, (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(frame)) + Ethernet.HeaderLength, packet);
                ref var to = ref batch.Address<SockAddrIn>(m);
                to.Family = Linux.AfInet;
                to.PortBigEndian = 0;
                // The destination field as it lies in the packet is already network byte order.
                to.AddressBigEndian = MemoryMarshal.Read<uint>(frame[(Ethernet.HeaderLength + Ipv4Header.OffsetDestination)..]);
                m++;
            }
            if (m == 0)
            {
                pool.Free(handles[done++]);
                Counters.TxError(Errno.EInval);
                continue;
            }
            var sent = LibC.SendMmsg(_txFd, batch.Messages, (uint)m, Linux.MsgDontWait);
            if (sent > 0)
            {
                for (var i = 0; i < sent; i++)
                {
                    var h = handles[done + i];
                    bytes += Ipv4Header.TotalLength(pool.Frame(h)[Ethernet.HeaderLength..]);
                    pool.Free(h);
                }
                done += sent;
                frames += sent;
                continue;
            }
            // sendmmsg reports the error of a batch's first message only; later ones are retried from there.
            var errno = Errno.Last;
            if (errno is Errno.EAgain or Errno.EIntr)
            {
                Counters.TxBusyOnce();
                break;
            }
            pool.Free(handles[done++]);
            Counters.TxError(errno);
        }
        Counters.AddTransmit(frames, bytes);
        return done;
    }

    /// <summary>An Ethernet frame holding an IPv4 header whose total length fits the frame.</summary>
    private static bool IsIpv4(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < MinPacket || System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) != Ethernet.TypeIpv4) return false;
        var ip = frame[Ethernet.HeaderLength..];
        var ihl = Ipv4Header.HeaderLength(ip);
        return ip[0] >> 4 == 4 && ihl >= Ipv4Header.MinLength && Ipv4Header.TotalLength(ip) >= ihl && Ipv4Header.TotalLength(ip) <= ip.Length;
    }
}
