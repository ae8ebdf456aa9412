namespace FastOverlay.Ports;

/// <summary>
/// One received frame as a PACKET_MMAP ring describes it, whatever the ring's version: where the Ethernet header
/// starts in the shared mapping, how much of it was captured, and the metadata the kernel keeps beside it.
/// </summary>
internal readonly unsafe struct RxFrame(byte* mac, int snap, uint length, uint status, ushort vlanTci, ushort vlanTpid, byte packetType)
{
    public readonly byte* Mac = mac;
    /// <summary>Bytes captured into the ring (tp_snaplen).</summary>
    public readonly int Snap = snap;
    /// <summary>Bytes the frame had (tp_len): more than <see cref="Snap"/> when it did not fit its slot.</summary>
    public readonly uint Length = length;
    public readonly uint Status = status;
    public readonly ushort VlanTci = vlanTci;
    public readonly ushort VlanTpid = vlanTpid;
    /// <summary>sll_pkttype of the sockaddr_ll the kernel writes after the ring header (PACKET_OUTGOING = 4).</summary>
    public readonly byte PacketType = packetType;
}
