using System.Runtime.InteropServices;
using FastOverlay.Ports.Native;

namespace FastOverlay.Ports;

/// <summary>
/// Sleeps in poll(2) until one of the socket ports has input or a timeout passes: what an idle forwarder does
/// instead of spinning a core. For a TPACKET_V3 ring "input" means a block was handed over, which the kernel's
/// block timer guarantees within its timeout of the first packet.
/// </summary>
public sealed unsafe class PortPoller : IDisposable
{
    private PollFd* _fds;
    private int _count;

    /// <summary>Takes the descriptors of the socket ports among <paramref name="ports"/> (others cannot be polled).</summary>
    public void Set(IEnumerable<IPacketPort?> ports)
    {
        var fds = new List<int>();
        foreach (var port in ports)
        {
            if (port is ISocketPort { FileDescriptor: >= 0 } socket) fds.Add(socket.FileDescriptor);
        }
        NativeMemory.Free(_fds);
        _fds = (PollFd*)NativeMemory.AllocZeroed((nuint)Math.Max(1, fds.Count), (nuint)sizeof(PollFd));
        for (var i = 0; i < fds.Count; i++)
        {
            _fds[i].Fd = fds[i];
            _fds[i].Events = Linux.PollIn;
        }
        _count = fds.Count;
    }

    public int Count => _count;

    /// <summary>Socket errors taken off the sockets (see <see cref="Wait"/>); the last errno is in <see cref="LastError"/>.</summary>
    public long Errors { get; private set; }
    public int LastError { get; private set; }

    /// <summary>Returns how many descriptors are readable; 0 on timeout or a signal. Without descriptors it just sleeps.</summary>
    public int Wait(int timeoutMilliseconds)
    {
        if (_count == 0)
        {
            Thread.Sleep(Math.Min(timeoutMilliseconds, 1));
            return 0;
        }
        var ready = LibC.Poll(_fds, (nuint)_count, timeoutMilliseconds);
        if (ready <= 0) return 0;
        for (var i = 0; i < _count; i++)
        {
            if ((_fds[i].ReturnedEvents & Linux.PollErr) != 0) ClearError(_fds[i].Fd);
        }
        return ready;
    }

    /// <summary>
    /// A pending socket error (sk_err, e.g. ENETDOWN when a packet socket's interface is deleted) keeps poll(2)
    /// returning POLLERR until something reads it. A ring socket is never read with recv, so without this an idle
    /// loop would spin. Reading SO_ERROR clears it (sock_error()).
    /// </summary>
    private void ClearError(int fd)
    {
        var error = Fd.GetIntOption(fd, Linux.SolSocket, Linux.SoError);
        if (error <= 0) return;
        Errors++;
        LastError = error;
    }

    public void Dispose()
    {
        NativeMemory.Free(_fds);
        _fds = null;
        _count = 0;
    }
}
