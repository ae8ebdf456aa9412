namespace FastOverlay.Ports;

/// <summary>
/// A port backed by a kernel socket. The run loop polls <see cref="FileDescriptor"/> for input when the node is
/// idle instead of spinning; <see cref="RefreshKernelStatistics"/> is safe from any thread.
/// </summary>
public interface ISocketPort : IPacketPort, IDisposable
{
    int FileDescriptor { get; }
    PortCounters Counters { get; }

    /// <summary>Pulls the kernel's drop counters into <see cref="Counters"/> (a system call: not for the data path).</summary>
    void RefreshKernelStatistics();
}
