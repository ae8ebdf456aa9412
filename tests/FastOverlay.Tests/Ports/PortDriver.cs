using System.Buffers.Binary;
using System.Diagnostics;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Ports.Native;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Ports;

/// <summary>Drives a socket port from a test: transmit copies of byte arrays, receive until a count or a deadline.</summary>
internal static class PortDriver
{
    public static readonly MacAddress GatewayMac = MacAddress.Parse("0a:58:0a:63:00:01");
    public static readonly MacAddress PodMac = MacAddress.Parse("0a:58:0a:63:00:02");
    /// <summary>IEEE 802 local experimental EtherType: nothing in the kernel reacts to these frames.</summary>
    public const ushort ExperimentalType = 0x88B5;

    public static byte[] Frame(int sequence, int length = 64, MacAddress? destination = null)
    {
        var frame = new byte[length];
        Ethernet.Write(frame, destination ?? GatewayMac, PodMac, ExperimentalType);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(14), sequence);
        for (var i = 18; i < length; i++) frame[i] = (byte)(sequence + i);
        return frame;
    }

    public static int[] Load(PacketPool pool, IEnumerable<byte[]> frames)
    {
        var handles = new List<int>();
        foreach (var f in frames)
        {
            var h = pool.Allocate();
            Assert.True(h >= 0, "test pool exhausted");
            f.CopyTo(pool.WritableFrame(h));
            pool.SetLength(h, f.Length);
            handles.Add(h);
        }
        return [.. handles];
    }

    /// <summary>Transmits everything, retrying what the port did not accept (a full socket buffer) for up to a second.</summary>
    public static void TransmitAll(IPacketPort port, PacketPool pool, IEnumerable<byte[]> frames)
    {
        var handles = Load(pool, frames);
        var done = 0;
        var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency;
        while (done < handles.Length && Stopwatch.GetTimestamp() < deadline)
        {
            done += port.Transmit(handles.AsSpan(done));
            if (done < handles.Length) Thread.Sleep(1);
        }
        pool.Free(handles.AsSpan(done));
        Assert.Equal(handles.Length, done);
    }

    /// <summary>Receives until <paramref name="expected"/> frames arrived or the timeout passed; sleeps in poll(2).</summary>
    public static List<byte[]> Receive(ISocketPort port, PacketPool pool, int expected, TimeSpan timeout, List<int>? batches = null, int burst = 64, List<PacketFlags>? flags = null)
    {
        var frames = new List<byte[]>();
        var handles = new int[burst];
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (frames.Count < expected && Stopwatch.GetTimestamp() < deadline)
        {
            var n = port.Receive(handles);
            if (n == 0)
            {
                WaitReadable(port.FileDescriptor, 20);
                continue;
            }
            batches?.Add(n);
            for (var i = 0; i < n; i++)
            {
                frames.Add(pool.Frame(handles[i]).ToArray());
                flags?.Add(pool.Meta(handles[i]).Flags);
                pool.Free(handles[i]);
            }
        }
        return frames;
    }

    public static unsafe bool WaitReadable(int fd, int milliseconds)
    {
        var p = new PollFd { Fd = fd, Events = Linux.PollIn };
        return LibC.Poll(&p, 1, milliseconds) > 0;
    }

    public static int Sequence(byte[] frame) => BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(14));
}
