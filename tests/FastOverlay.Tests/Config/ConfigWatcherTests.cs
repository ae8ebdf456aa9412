using System.Text;
using FastOverlay.Config;
using FastOverlay.Control;

namespace FastOverlay.Tests.Config;

/// <summary>Reload: a valid change is applied, a broken file is logged once and the running configuration stays.</summary>
public sealed class ConfigWatcherTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"fastoverlay-config-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
    private readonly StringWriter _log = new();
    private readonly ManualTime _time = new();
    private readonly List<OverlayConfig> _applied = [];

    public ConfigWatcherTests() => File.WriteAllText(_path, ConfigFixture.Example);

    public void Dispose() => File.Delete(_path);

    private ConfigWatcher Watcher(Action<OverlayConfig>? apply = null, TimeSpan? debounce = null) =>
        new(_path, File.ReadAllBytes(_path), bytes => ConfigLoader.Load(bytes, ConfigFixture.Interfaces()), apply ?? _applied.Add, _log,
            debounce: debounce ?? TimeSpan.Zero, time: _time);

    private const string NewPeer = """[ { "Name": "node2", "PublicIP": "172.31.77.2", "Subnet": "10.244.2.0/24", "VtepMAC": "0a:58:0a:f4:02:00" }, { "Name": "node3", "PublicIP": "172.31.77.3", "Subnet": "10.244.3.0/24", "VtepMAC": "0a:58:0a:f4:03:00" } ]""";

    [Fact]
    public void An_unchanged_file_is_not_reloaded()
    {
        using var watcher = Watcher();
        Assert.False(watcher.Check());
        Assert.Empty(_applied);
    }

    [Fact]
    public void A_valid_change_is_applied()
    {
        using var watcher = Watcher();
        File.WriteAllText(_path, ConfigFixture.With("Peers", NewPeer));
        Assert.True(watcher.Check());
        Assert.Equal(2, Assert.Single(_applied).Peers.Count);
        Assert.Contains("config: applied", _log.ToString());
    }

    [Fact]
    public void A_broken_file_is_logged_once_and_the_old_configuration_stays()
    {
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), new RingPortFactory(), poolBuffers: 128);
        var state = controller.Forwarder.State;
        using var watcher = Watcher(controller.Apply);

        File.WriteAllText(_path, ConfigFixture.With("Peers[0].VtepMAC", "\"nope\""));
        Assert.False(watcher.Check());
        Assert.False(watcher.Check());

        Assert.Same(state, controller.Forwarder.State);
        var log = _log.ToString();
        Assert.Contains("config: rejected", log);
        Assert.Contains("Peers[0].VtepMAC: 'nope' is not a MAC address", log);
        Assert.Contains("the running configuration stays in force", log);
        Assert.Equal(1, watcher.Failures);

        // Fixing the file applies it.
        File.WriteAllText(_path, ConfigFixture.With("Peers", NewPeer));
        Assert.True(watcher.Check());
        Assert.Equal(2, controller.Forwarder.State.Peers.Count);
    }

    [Fact]
    public void A_change_the_controller_refuses_keeps_the_old_configuration()
    {
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), new RingPortFactory(), poolBuffers: 128);
        using var watcher = Watcher(controller.Apply);
        File.WriteAllText(_path, ConfigFixture.With("Node.PublicIP", "\"172.31.77.50\""));

        Assert.False(watcher.Check());
        Assert.Contains("Node.PublicIP: changed from 172.31.77.1 to 172.31.77.50", _log.ToString());
        Assert.Equal("172.31.77.1", controller.Config.Node.PublicIp.ToString());
    }

    [Fact]
    public void A_change_is_applied_only_once_the_file_stopped_changing()
    {
        using var watcher = Watcher(debounce: TimeSpan.FromMilliseconds(500));
        File.WriteAllText(_path, ConfigFixture.With("Peers", NewPeer)[..40]);
        Assert.False(watcher.Check());
        _time.Advance(TimeSpan.FromMilliseconds(300));
        File.WriteAllText(_path, ConfigFixture.With("Peers", NewPeer));
        Assert.False(watcher.Check());
        _time.Advance(TimeSpan.FromMilliseconds(300));
        Assert.False(watcher.Check());
        _time.Advance(TimeSpan.FromMilliseconds(300));
        Assert.True(watcher.Check());
        Assert.Single(_applied);
        Assert.Equal(0, watcher.Failures);
    }

    [Fact]
    public void The_background_thread_picks_up_a_change()
    {
        using var done = new ManualResetEventSlim();
        using var watcher = new ConfigWatcher(_path, File.ReadAllBytes(_path), bytes => ConfigLoader.Load(bytes, ConfigFixture.Interfaces()),
            c => done.Set(), _log, interval: TimeSpan.FromMilliseconds(20), debounce: TimeSpan.FromMilliseconds(40));
        watcher.Start();
        File.WriteAllText(_path, ConfigFixture.With("Peers", NewPeer));
        Assert.True(done.Wait(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void A_forced_reload_applies_the_same_file_again()
    {
        using var watcher = Watcher();
        Assert.True(watcher.Check(force: true));
        Assert.Single(_applied);
        _ = Encoding.UTF8;
    }

    private sealed class ManualTime : TimeProvider
    {
        private long _ticks = 1_000_000;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => _ticks;
        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
