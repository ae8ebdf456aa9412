using System.Buffers.Binary;

namespace FastOverlay.Wire;

/*
 * ARP for IPv4 over Ethernet (RFC 826), 28 bytes after the Ethernet header:
 *  0       2       4   5   6       8            14       18           24       28
 * +-------+-------+---+---+-------+------------+--------+------------+--------+
 * | htype | ptype |hln|pln|  op   | sender MAC | sndr IP| target MAC | tgt IP |
 * |   1   |0x0800 | 6 | 4 | 1 / 2 |            |        |            |        |
 */
public readonly ref struct ArpPacket
{
    public const int Length = 28;
    public const ushort OpRequest = 1;
    public const ushort OpReply = 2;

    private readonly ReadOnlySpan<byte> _p;

    private ArpPacket(ReadOnlySpan<byte> p) => _p = p;

    public ushort Operation => BinaryPrimitives.ReadUInt16BigEndian(_p[6..]);
    public MacAddress SenderMac => MacAddress.Read(_p[8..]);
    public uint SenderIp => BinaryPrimitives.ReadUInt32BigEndian(_p[14..]);
    public MacAddress TargetMac => MacAddress.Read(_p[18..]);
    public uint TargetIp => BinaryPrimitives.ReadUInt32BigEndian(_p[24..]);

    /// <summary>Gratuitous ARP announces the sender's own binding: sender IP equals target IP (RFC 5227 s3).</summary>
    public bool IsGratuitous => SenderIp == TargetIp;

    public static DropReason TryParse(ReadOnlySpan<byte> l3, out ArpPacket arp)
    {
        arp = default;
        if (l3.Length < Length) return DropReason.ArpMalformed;
        // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4: the only combination a pod network carries.
        if (BinaryPrimitives.ReadUInt32BigEndian(l3) != 0x0001_0800 || l3[4] != 6 || l3[5] != 4) return DropReason.ArpMalformed;
        var op = BinaryPrimitives.ReadUInt16BigEndian(l3[6..]);
        if (op is not (OpRequest or OpReply)) return DropReason.ArpMalformed;
        arp = new ArpPacket(l3);
        return DropReason.None;
    }

    public static void Write(Span<byte> l3, ushort operation, MacAddress senderMac, uint senderIp, MacAddress targetMac, uint targetIp)
    {
        BinaryPrimitives.WriteUInt32BigEndian(l3, 0x0001_0800);
        l3[4] = 6;
        l3[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(l3[6..], operation);
        senderMac.Write(l3[8..]);
        BinaryPrimitives.WriteUInt32BigEndian(l3[14..], senderIp);
        targetMac.Write(l3[18..]);
        BinaryPrimitives.WriteUInt32BigEndian(l3[24..], targetIp);
    }

    /// <summary>A whole ARP frame (Ethernet + ARP, padded to the 60-byte minimum). Returns its length.</summary>
    public static int WriteFrame(Span<byte> frame, MacAddress ethDestination, ushort operation, MacAddress senderMac, uint senderIp, MacAddress targetMac, uint targetIp)
    {
        Ethernet.Write(frame, ethDestination, senderMac, Ethernet.TypeArp);
        Write(frame[Ethernet.HeaderLength..], operation, senderMac, senderIp, targetMac, targetIp);
        frame[(Ethernet.HeaderLength + Length)..Ethernet.MinFrameLength].Clear();
        return Ethernet.MinFrameLength;
    }
}
