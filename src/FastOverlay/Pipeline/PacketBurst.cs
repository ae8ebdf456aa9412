namespace FastOverlay.Pipeline;

/// <summary>Where a packet goes after the stage that looked at it: the per-packet next[] of a VPP frame.</summary>
public enum NextStage : byte
{
    Drop,
    ArpInput,
    Ip4Input,
    Ip4Rewrite,
    VxlanEncap,
    Transmit,
    /// <summary>The packet is no longer the burst's: parked for ARP, or its buffer was reused for a reply.</summary>
    Consumed,
}

/// <summary>
/// The unit of work: up to <see cref="Capacity"/> packet handles plus, per packet, the next stage and the
/// scratch a stage hands to the next one (struct-of-arrays, as VPP's frame and nexts[]). Allocated once per
/// forwarder and reused for every burst.
/// </summary>
public sealed class PacketBurst
{
    public const int DefaultCapacity = 256;

    public PacketBurst(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Handles = new int[capacity];
        Next = new NextStage[capacity];
        Drop = new DropReason[capacity];
        OutPort = new ushort[capacity];
        L3Offset = new ushort[capacity];
        Address = new uint[capacity];
        Value = new uint[capacity];
    }

    public int Capacity => Handles.Length;
    public int Count;

    public readonly int[] Handles;
    public readonly NextStage[] Next;
    public readonly DropReason[] Drop;
    public readonly ushort[] OutPort;
    /// <summary>Offset of the IPv4 or ARP header from the frame start.</summary>
    public readonly ushort[] L3Offset;
    /// <summary>The IPv4 destination (route lookup key), then the next-hop address.</summary>
    public readonly uint[] Address;
    /// <summary>The route lookup result.</summary>
    public readonly uint[] Value;

    public Span<int> Active => Handles.AsSpan(0, Count);

    public void Reset() => Count = 0;

    public void SetDrop(int i, DropReason reason)
    {
        Next[i] = NextStage.Drop;
        Drop[i] = reason;
    }
}
