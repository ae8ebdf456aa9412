namespace FastOverlay.Ports;

/// <summary>
/// A port backed by a kernel socket. The run loop polls <see cref="FileDescriptor"/> for input when the node is
/// idle instead of spinning; <see cref="RefreshKernelStatistics"/> is safe from any thread.
/// </summary>
public interface ISocketPort : IPacketPort, IDisposable
{
    int FileDescriptor { get; }
    PortCounters Counters { get; }

    /// <summary>
    /// Whether <see cref="IPacketPort.Receive"/> is a system call even when nothing waits (a socket read), rather
    /// than a look at a ring in shared memory: the forwarder then backs off from asking an idle port.
    /// </summary>
    bool ReceiveIsSystemCall => false;

    /// <summary>Pulls the kernel's drop counters into <see cref="Counters"/> (a system call: not for the data path).</summary>
    void RefreshKernelStatistics();
}
