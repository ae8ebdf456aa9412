using System.Buffers.Binary;
using FastOverlay.Offload;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Offload;

/// <summary>Builds Ethernet/IPv4/TCP and UDP frames for offload tests, with complete or partial checksums.</summary>
internal static class TcpFrames
{
    public static readonly MacAddress Source = MacAddress.Parse("0a:58:0a:f4:01:02");
    public static readonly MacAddress Destination = MacAddress.Parse("0a:58:0a:f4:01:01");
    public const uint SourceIp = 0x0AF40102;
    public const uint DestinationIp = 0x0AF40203;
    public const byte Ack = 0x10;
    public const byte Psh = 0x08;

    public static byte[] Tcp(ReadOnlySpan<byte> payload, uint seq, byte flags = Ack, byte[]? options = null, ushort id = 1000, bool partial = false, uint ack = 777, byte ttl = 64)
    {
        options ??= [];
        var thl = 20 + options.Length;
        var frame = new byte[14 + 20 + thl + payload.Length];
        Ethernet.Write(frame, Destination, Source, Ethernet.TypeIpv4);
        var ip = frame.AsSpan(14);
        Ipv4Header.Write(ip, (ushort)(20 + thl + payload.Length), id, Ipv4Header.FlagDontFragment, ttl, Ipv4Header.ProtocolTcp, SourceIp, DestinationIp);
        var tcp = ip[20..];
        BinaryPrimitives.WriteUInt16BigEndian(tcp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 5201);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], ack);
        tcp[12] = (byte)(thl / 4 << 4);
        tcp[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 502);
        options.CopyTo(tcp[20..]);
        payload.CopyTo(tcp[thl..]);
        Finish(frame, partial);
        return frame;
    }

    public static byte[] Udp(ReadOnlySpan<byte> payload, ushort id = 1000, bool partial = false)
    {
        var frame = new byte[14 + 20 + 8 + payload.Length];
        Ethernet.Write(frame, Destination, Source, Ethernet.TypeIpv4);
        var ip = frame.AsSpan(14);
        Ipv4Header.Write(ip, (ushort)(28 + payload.Length), id, 0, 64, Ipv4Header.ProtocolUdp, SourceIp, DestinationIp);
        UdpHeader.Write(ip[20..], 5000, 6000, (ushort)(8 + payload.Length));
        payload.CopyTo(ip[28..]);
        Finish(frame, partial);
        return frame;
    }

    /// <summary>Writes the L4 checksum: the partial form (pseudo-header only) or the complete one.</summary>
    public static void Finish(byte[] frame, bool partial)
    {
        Assert.True(L4Checksum.TryLocate(frame, out var l4Offset, out var l4Length, out var protocol, out var pseudo));
        var l4 = frame.AsSpan(l4Offset, l4Length);
        L4Checksum.WritePartial(l4, protocol, pseudo);
        if (!partial) L4Checksum.Complete(frame);
    }

    public static bool ChecksumValid(byte[] frame)
    {
        Assert.True(L4Checksum.TryLocate(frame, out var l4Offset, out var l4Length, out _, out var pseudo));
        return InternetChecksum.FoldToNetworkOrder(InternetChecksum.Add(frame.AsSpan(l4Offset, l4Length)) + pseudo) == 0xFFFF;
    }

    public static int HeaderLength(byte[] frame) => 34 + (frame[46] >> 4) * 4;

    public static byte[] Payload(byte[] frame)
    {
        var total = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(16));
        var start = frame[23] == Ipv4Header.ProtocolTcp ? HeaderLength(frame) : 42;
        return frame.AsSpan(start, 14 + total - start).ToArray();
    }

    public static uint Sequence(byte[] frame) => BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(38));

    public static byte Flags(byte[] frame) => frame[47];
}
