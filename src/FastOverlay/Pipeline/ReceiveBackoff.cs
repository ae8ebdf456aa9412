using System.Diagnostics;
using System.Runtime.CompilerServices;
using FastOverlay.Ports;

namespace FastOverlay.Pipeline;

/// <summary>
/// How often a forwarder asks a port whose receive is a system call (a UDP socket's recvmmsg, unlike a packet ring
/// read from memory) for input. After an empty answer the port is not asked again for 2 µs, doubling to 16 µs
/// while it stays empty; it is asked at once again after it delivers, and after the loop wakes from poll(2). A
/// forwarder spinning between a pod's sends otherwise asked its underlay socket about 145,000 times a second
/// while carrying one TCP stream in the lab (perf stat on sys_enter_recvmmsg), each call a trip into a kernel
/// that had nothing. The delay it can add to a packet is the 16 µs cap, and only while the loop is otherwise
/// idle-spinning: a busy loop's passes take longer than that. Timed by the real clock, not the node clock (which
/// tests stop), so a port can never be skipped for longer than the cap.
/// </summary>
internal sealed class ReceiveBackoff
{
    private const int MaxShift = 3;
    private readonly long _firstTicks;
    private bool[] _applies = [];
    private long[] _after = [];
    private byte[] _shift = [];

    public ReceiveBackoff() : this(TimeSpan.FromMicroseconds(2))
    {
    }

    /// <param name="first">The first window after an empty answer (tests use long ones, to be independent of scheduling).</param>
    internal ReceiveBackoff(TimeSpan first) => _firstTicks = Math.Max(1, (long)(first.TotalSeconds * Stopwatch.Frequency));

    /// <summary>Takes the ports of a new forwarding state (control change: may allocate).</summary>
    public void Attach(IPacketPort?[] ports)
    {
        if (_applies.Length < ports.Length)
        {
            _applies = new bool[ports.Length];
            _after = new long[ports.Length];
            _shift = new byte[ports.Length];
        }
        for (var p = 0; p < _applies.Length; p++)
            _applies[p] = p < ports.Length && ports[p] is ISocketPort { ReceiveIsSystemCall: true };
        Reset();
    }

    /// <summary>How long port <paramref name="port"/> is not asked from now (zero when it is).</summary>
    internal TimeSpan Remaining(int port)
    {
        var left = (uint)port < (uint)_after.Length && _after[port] != 0 ? _after[port] - Stopwatch.GetTimestamp() : 0;
        return TimeSpan.FromSeconds(Math.Max(0, left) / (double)Stopwatch.Frequency);
    }

    /// <summary>True while port <paramref name="port"/> should not be asked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Skip(int port) => (uint)port < (uint)_after.Length && _after[port] != 0 && Stopwatch.GetTimestamp() < _after[port];

    /// <summary>The port had nothing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Empty(int port)
    {
        if ((uint)port >= (uint)_applies.Length || !_applies[port]) return;
        var shift = _shift[port];
        _after[port] = Stopwatch.GetTimestamp() + (_firstTicks << shift);
        if (shift < MaxShift) _shift[port] = (byte)(shift + 1);
    }

    /// <summary>The port delivered: ask it again on the next pass.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Delivered(int port)
    {
        if ((uint)port >= (uint)_after.Length) return;
        _after[port] = 0;
        _shift[port] = 0;
    }

    /// <summary>Ask every port on the next pass (the loop woke from poll(2): something may be readable).</summary>
    public void Reset()
    {
        Array.Clear(_after);
        Array.Clear(_shift);
    }
}
