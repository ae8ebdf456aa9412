using FastOverlay.Pipeline;
using FastOverlay.Ports;
using Xunit;

namespace FastOverlay.Tests.Pipeline;

/// <summary>
/// The back-off from idle socket ports. Windows of seconds keep the assertions independent of how the test thread
/// is scheduled; production uses 2 µs doubling to 16 µs.
/// </summary>
public class ReceiveBackoffTests
{
    private sealed class FakeSocketPort(bool systemCall) : ISocketPort
    {
        public string Name => "fake";
        public int FileDescriptor => -1;
        public PortCounters Counters { get; } = new();
        public bool ReceiveIsSystemCall => systemCall;
        public int Receive(Span<int> handles) => 0;
        public int Transmit(ReadOnlySpan<int> handles) => 0;
        public void RefreshKernelStatistics() { }
        public void Dispose() { }
    }

    private static readonly TimeSpan First = TimeSpan.FromSeconds(10);

    [Fact]
    public void An_empty_system_call_port_is_skipped_for_a_window_that_doubles_to_eight_times_the_first()
    {
        var backoff = new ReceiveBackoff(First);
        backoff.Attach([new FakeSocketPort(systemCall: true)]);
        Assert.False(backoff.Skip(0));

        var windows = new List<TimeSpan>();
        for (var i = 0; i < 6; i++)
        {
            backoff.Empty(0);
            Assert.True(backoff.Skip(0));
            windows.Add(backoff.Remaining(0));
        }

        // 1, 2, 4, 8, 8, 8 times the first window (each measured just after it was set, so a little under).
        double[] expected = [1, 2, 4, 8, 8, 8];
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.InRange(windows[i].TotalSeconds, expected[i] * First.TotalSeconds - 1, expected[i] * First.TotalSeconds);
        }
    }

    [Fact]
    public void A_delivery_or_a_wake_up_asks_the_port_again_at_once_and_starts_the_window_over()
    {
        var backoff = new ReceiveBackoff(First);
        backoff.Attach([new FakeSocketPort(systemCall: true)]);
        backoff.Empty(0);
        backoff.Empty(0);
        backoff.Delivered(0);
        Assert.False(backoff.Skip(0));
        backoff.Empty(0);
        Assert.InRange(backoff.Remaining(0).TotalSeconds, First.TotalSeconds - 1, First.TotalSeconds);

        backoff.Reset();
        Assert.False(backoff.Skip(0));
    }

    [Fact]
    public void Ring_ports_and_missing_ports_are_never_skipped_and_a_new_state_starts_clean()
    {
        var backoff = new ReceiveBackoff(First);
        var socket = new FakeSocketPort(systemCall: true);
        backoff.Attach([new FakeSocketPort(systemCall: false), null, socket]);
        for (var p = 0; p < 3; p++) backoff.Empty(p);
        Assert.False(backoff.Skip(0));
        Assert.False(backoff.Skip(1));
        Assert.True(backoff.Skip(2));
        Assert.False(backoff.Skip(7));

        // The same port under another id after a reconfiguration: asked at once.
        backoff.Attach([socket]);
        Assert.False(backoff.Skip(0));
        Assert.False(backoff.Skip(2));
    }
}
