namespace FastOverlay.Config;

/// <summary>
/// Re-reads the configuration file when it changes and hands a valid new configuration to <c>apply</c>; an
/// invalid one is logged and the running configuration stays in force.
///
/// It polls the file's bytes rather than relying on inotify (FileSystemWatcher): editors replace files by rename,
/// and a Kubernetes ConfigMap volume swaps a symlink, both of which inotify on the old inode misses; reading a
/// small file once a second costs nothing. A change is applied once the bytes have stayed the same for the
/// debounce time, so a file caught half-written is not loaded. A file that failed is not retried until it
/// changes again, so one mistake logs one message.
/// </summary>
public sealed class ConfigWatcher : IDisposable
{
    private readonly string _path;
    private readonly Func<byte[], OverlayConfig> _load;
    private readonly Action<OverlayConfig> _apply;
    private readonly TextWriter _log;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _debounce;
    private readonly TimeProvider _time;
    private readonly object _gate = new();
    private readonly ManualResetEventSlim _wake = new();
    private Thread? _thread;
    private volatile bool _stopping;
    private volatile bool _forced;
    private byte[] _current;
    private byte[]? _candidate;
    private long _candidateSince;

    /// <param name="current">The bytes of the configuration now in force (what was loaded at start).</param>
    public ConfigWatcher(string path, byte[] current, Func<byte[], OverlayConfig> load, Action<OverlayConfig> apply, TextWriter log,
        TimeSpan? interval = null, TimeSpan? debounce = null, TimeProvider? time = null)
    {
        _path = path;
        _current = current;
        _load = load;
        _apply = apply;
        _log = log;
        _interval = interval ?? TimeSpan.FromSeconds(1);
        _debounce = debounce ?? TimeSpan.FromMilliseconds(500);
        _time = time ?? TimeProvider.System;
    }

    public int Reloads { get; private set; }
    public int Failures { get; private set; }

    public void Start()
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = "fastoverlay-config" };
        _thread.Start();
    }

    /// <summary>Reload now, without waiting for the debounce (SIGHUP), even if the bytes did not change.</summary>
    public void ForceReload()
    {
        if (_stopping) return;
        _forced = true;
        _wake.Set();
    }

    private void Loop()
    {
        while (!_stopping)
        {
            _wake.Wait(_interval);
            _wake.Reset();
            if (_stopping) break;
            var forced = _forced;
            _forced = false;
            Check(forced);
        }
    }

    /// <summary>One look at the file. Returns true when a new configuration was applied.</summary>
    public bool Check(bool force = false)
    {
        lock (_gate)
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(_path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Mid-rename or deleted: keep running on what we have and look again next time.
                return false;
            }
            var now = _time.GetTimestamp();
            if (!force)
            {
                if (bytes.AsSpan().SequenceEqual(_current)) { _candidate = null; return false; }
                if (_candidate is null || !bytes.AsSpan().SequenceEqual(_candidate))
                {
                    _candidate = bytes;
                    _candidateSince = now;
                }
                if (_time.GetElapsedTime(_candidateSince, now) < _debounce) return false;
            }
            _candidate = null;
            _current = bytes;
            try
            {
                var config = _load(bytes);
                _apply(config);
                Reloads++;
                _log.WriteLine($"config: applied {_path}: {config.Peers.Count} peers, {config.Node.Pods.Count} pods");
                return true;
            }
            catch (Exception e) when (e is ConfigException or IOException or ArgumentException)
            {
                Failures++;
                _log.WriteLine($"config: rejected {_path}: {e.Message}; the running configuration stays in force");
                return false;
            }
        }
    }

    /// <summary>
    /// Stops the thread. The wake event is left to the GC rather than disposed: a signal handler may still call
    /// <see cref="ForceReload"/> while the process shuts down, and Set on a live slim event is always safe.
    /// </summary>
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _wake.Set();
        _thread?.Join();
    }
}
