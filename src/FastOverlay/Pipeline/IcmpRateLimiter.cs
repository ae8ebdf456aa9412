namespace FastOverlay.Pipeline;

/// <summary>
/// A token bucket for generated ICMP errors (the kernel's icmp_msgs_per_sec / icmp_msgs_burst), so a flood of
/// packets without a route cannot make the node amplify it.
/// </summary>
public sealed class IcmpRateLimiter(int perSecond, int burst)
{
    private readonly long _ticksPerToken = perSecond <= 0 ? long.MaxValue : Math.Max(1, System.Diagnostics.Stopwatch.Frequency / perSecond);
    private long _tokens = burst;
    private long _last;

    public bool TryTake(long now)
    {
        if (_ticksPerToken == long.MaxValue) return false;
        if (_last == 0) _last = now;
        var earned = (now - _last) / _ticksPerToken;
        if (earned > 0)
        {
            _tokens = Math.Min(burst, _tokens + earned);
            _last += earned * _ticksPerToken;
        }
        if (_tokens == 0) return false;
        _tokens--;
        return true;
    }
}
