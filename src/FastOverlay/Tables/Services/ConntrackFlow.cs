using System.Runtime.InteropServices;

namespace FastOverlay.Tables.Services;

[Flags]
#pragma warning disable CA1711 // "Flags" is the domain word here (TCP flags folded into the entry).
public enum ConntrackFlags : int
#pragma warning restore CA1711
{
    None = 0,
    /// <summary>A packet went backend → client: TCP counts as established, UDP as a stream (longer timeouts).</summary>
    SeenReply = 1,
    /// <summary>FIN seen client → service.</summary>
    OriginalFin = 2,
    /// <summary>FIN seen backend → client.</summary>
    ReplyFin = 4,
    /// <summary>RST seen either way: the flow is closing (Cilium's ACTION_CLOSE).</summary>
    Rst = 8,
    // Bits from 256 up belong to the caller (the NAT stage); the table stores them and never reads them.
    Snat = 256,
    External = 512,
}

/// <summary>
/// One tracked connection: the two keys under which its packets arrive, the service port it was balanced for,
/// and the state that sets its timeout. A copy returned by <see cref="ConntrackTable.TryFind"/> is consistent.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
#pragma warning disable CA1815 // a plain record of fields; equality of two flows is never asked.
public struct ConntrackFlow
#pragma warning restore CA1815
{
    /// <summary>As the first packet arrived: client → service address:port.</summary>
    public FlowKey Original;
    /// <summary>As replies will arrive: backend:port → client (or → the SNAT address:port).</summary>
    public FlowKey Reply;
    /// <summary>Stable id of the service port.</summary>
    public uint ServicePortId;
    /// <summary>Service-table epoch at which the backend was last validated (owner writes).</summary>
    public uint Epoch;
    public ConntrackFlags Flags;
    /// <summary>Stopwatch ticks of the last packet.</summary>
    public long LastSeen;
}

/// <summary>
/// Idle timeouts by state. The defaults follow Cilium's agent flags (services.md §3.1): SYN 60 s, established
/// 6 h, closing 10 s; UDP 30 s until a reply is seen and 120 s after (the kernel's nf_conntrack_udp_timeout and
/// _stream), ICMP 30 s (the kernel's nf_conntrack_icmp_timeout).
/// </summary>
public sealed record ConntrackTimeouts(TimeSpan TcpSyn, TimeSpan TcpEstablished, TimeSpan TcpClosing, TimeSpan Udp, TimeSpan UdpStream, TimeSpan Icmp)
{
    public static ConntrackTimeouts Default { get; } = new(
        TimeSpan.FromSeconds(60), TimeSpan.FromHours(6), TimeSpan.FromSeconds(10),
        TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(120), TimeSpan.FromSeconds(30));
}

/// <summary>
/// A flow slot: the seqlock sequence (odd while the owner writes), whether the slot holds a flow, and the flow.
/// 8 + 56 = 64 bytes, one cache line; <see cref="ConntrackTable"/> places the array on a 64-byte boundary.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ConntrackEntry
{
    public int Sequence;
    public int Used;
    public ConntrackFlow Flow;
}
