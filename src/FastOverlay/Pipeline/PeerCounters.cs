namespace FastOverlay.Pipeline;

/// <summary>
/// Packets and bytes sent to and received from one peer node, by one worker. The worker's forwarder is the only
/// writer (plain adds in the encap and decap stages, no atomics); metrics read whole 64-bit values from another
/// thread and sum the workers. The object outlives forwarding-state rebuilds: a peer that stays (same subnet)
/// keeps its counters when the state is rebuilt around it.
/// </summary>
public sealed class PeerCounters
{
    private long _txPackets;
    private long _txBytes;
    private long _rxPackets;
    private long _rxBytes;

    public long TxPackets => Volatile.Read(ref _txPackets);
    /// <summary>Bytes of the VXLAN datagrams sent (outer headers included).</summary>
    public long TxBytes => Volatile.Read(ref _txBytes);
    public long RxPackets => Volatile.Read(ref _rxPackets);
    /// <summary>Bytes of the inner frames received (after decap).</summary>
    public long RxBytes => Volatile.Read(ref _rxBytes);

    internal void AddTx(int bytes)
    {
        Volatile.Write(ref _txPackets, _txPackets + 1);
        Volatile.Write(ref _txBytes, _txBytes + bytes);
    }

    internal void AddRx(int bytes)
    {
        Volatile.Write(ref _rxPackets, _rxPackets + 1);
        Volatile.Write(ref _rxBytes, _rxBytes + bytes);
    }
}
