namespace FastOverlay.Control;

/// <summary>
/// One <see cref="ForwarderLoop"/> per worker of a node, started, watched and stopped together: what a runner
/// holds instead of a single loop.
/// </summary>
public sealed class ForwarderLoops : IDisposable
{
    private readonly NodeController _controller;
    private readonly ForwarderLoop[] _loops;

    public ForwarderLoops(NodeController controller, IdleOptions? idle = null)
    {
        _controller = controller;
        _loops = new ForwarderLoop[controller.Workers.Count];
        for (var w = 0; w < _loops.Length; w++) _loops[w] = new ForwarderLoop(controller, idle, w);
    }

    /// <summary>The first worker's failure, if any died.</summary>
    public Exception? Failure => _loops.Select(l => l.Failure).FirstOrDefault(f => f is not null);
    public long Sleeps => _loops.Sum(l => l.Sleeps);

    public event Action<Exception>? Failed
    {
        add { foreach (var l in _loops) l.Failed += value; }
        remove { foreach (var l in _loops) l.Failed -= value; }
    }

    public void Start()
    {
        foreach (var l in _loops) l.Start();
    }

    /// <summary>True once every worker has completed its first poll.</summary>
    public bool WaitUntilPolling(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        foreach (var l in _loops)
        {
            var left = deadline - DateTime.UtcNow;
            if (left < TimeSpan.Zero || !l.WaitUntilPolling(left)) return false;
        }
        return true;
    }

    public void Stop()
    {
        foreach (var l in _loops) l.Stop();
    }

    /// <summary>After <see cref="Stop"/>: frees what each forwarder still holds. Returns the buffers still in use in all pools.</summary>
    public long Drain()
    {
        foreach (var worker in _controller.Workers) worker.Forwarder.Drain();
        return _controller.Workers.Sum(w => (long)w.Pool.InUse);
    }

    public void Dispose()
    {
        foreach (var l in _loops) l.Dispose();
    }
}
