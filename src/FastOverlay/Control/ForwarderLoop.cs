using System.Diagnostics;
using FastOverlay.Pipeline;
using FastOverlay.Ports;

namespace FastOverlay.Control;

/// <summary>When the forwarder thread stops spinning and sleeps.</summary>
public sealed record IdleOptions
{
    /// <summary>
    /// How long to keep polling after the last packet before sleeping. A wake-up from poll(2) costs a few
    /// microseconds of latency; spinning this long catches the next packet of a busy flow without it.
    /// </summary>
    public TimeSpan Spin { get; init; } = TimeSpan.FromMicroseconds(50);
    /// <summary>
    /// The longest sleep: bounds how late ARP timers, a published configuration and a stop request are seen.
    /// </summary>
    public int SleepMilliseconds { get; init; } = 10;
}

/// <summary>
/// The node's data-plane thread: polls the forwarder in a loop (run to completion, one thread, as DPDK's lcore
/// loop), reports each poll to the controller so retired ports can close, and when idle sleeps in poll(2) on the
/// ports' sockets. Everything the forwarder's pool touches happens on this thread.
/// </summary>
public sealed class ForwarderLoop : IDisposable
{
    private readonly NodeController _controller;
    private readonly IdleOptions _idle;
    private readonly ManualResetEventSlim _polling = new();
    private readonly Thread _thread;
    private readonly int _worker;
    private volatile bool _stop;
    private long _sleeps;

    public ForwarderLoop(NodeController controller, IdleOptions? idle = null, int worker = 0)
    {
        _controller = controller;
        _worker = worker;
        _idle = idle ?? new IdleOptions();
        _thread = new Thread(Run) { IsBackground = true, Name = $"fastoverlay-{controller.Forwarder.Name}-{worker}" };
    }

    /// <summary>Set when the loop died of an exception (a bug: the data path does not throw on bad input).</summary>
    public Exception? Failure { get; private set; }
    /// <summary>How many times the thread slept in poll(2).</summary>
    public long Sleeps => Volatile.Read(ref _sleeps);

    public void Start() => _thread.Start();

    /// <summary>True once the thread has completed its first poll (all ports open and read).</summary>
    public bool WaitUntilPolling(TimeSpan timeout) => _polling.Wait(timeout);

    /// <summary>Fired on the loop's thread if it dies, so the process can shut down.</summary>
    public event Action<Exception>? Failed;

    private void Run()
    {
        var forwarder = _controller.Workers[_worker].Forwarder;
        var spinTicks = (long)(_idle.Spin.TotalSeconds * Stopwatch.Frequency);
        using var poller = new PortPoller();
        ForwardingState? watched = null;
        long idleSince = 0;
        try
        {
            while (!_stop)
            {
                var state = forwarder.State;
                if (!ReferenceEquals(state, watched))
                {
                    poller.Set(state.Ports);
                    watched = state;
                }
                var received = forwarder.Poll();
                _controller.AfterPoll(_worker, state);
                if (!_polling.IsSet) _polling.Set();
                if (received > 0)
                {
                    idleSince = 0;
                    continue;
                }
                var now = Stopwatch.GetTimestamp();
                if (idleSince == 0) idleSince = now;
                if (now - idleSince < spinTicks) continue;
                Volatile.Write(ref _sleeps, _sleeps + 1);
                poller.Wait(_idle.SleepMilliseconds);
                forwarder.Woke();
            }
        }
        catch (Exception e)
        {
            Failure = e;
            _polling.Set();
            Failed?.Invoke(e);
        }
    }

    /// <summary>Stops the loop and waits for the thread; afterwards the caller may Drain the forwarder and close ports.</summary>
    public void Stop()
    {
        _stop = true;
        if (_thread.IsAlive) _thread.Join();
    }

    public void Dispose()
    {
        Stop();
        _polling.Dispose();
    }
}
