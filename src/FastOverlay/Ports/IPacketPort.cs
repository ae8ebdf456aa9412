namespace FastOverlay.Ports;

/// <summary>
/// The one interface between the pipeline and I/O: a port moves bursts of packet-buffer handles in and out, as
/// DPDK's rx_burst/tx_burst do. It is called once per burst, never per packet. The in-memory ring, AF_PACKET and
/// UDP sockets all sit behind it, so the pipeline does not know which it drives.
/// </summary>
public interface IPacketPort
{
    string Name { get; }

    /// <summary>Fills <paramref name="handles"/> with received frames (buffers from the forwarder's pool). Returns how many.</summary>
    int Receive(Span<int> handles);

    /// <summary>
    /// Takes frames for sending, in order. Returns how many the port accepted; the caller still owns the rest
    /// (and counts them as <see cref="DropReason.TxFull"/>).
    /// </summary>
    int Transmit(ReadOnlySpan<int> handles);
}
