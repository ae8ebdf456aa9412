using System.Buffers.Binary;
using FastOverlay.Wire;
using Xunit;

namespace FastOverlay.Tests.Wire;

public class VxlanHeaderTests
{
    private const int OffsetUdp = Ethernet.HeaderLength + Ipv4Header.MinLength;
    private const int OffsetVxlan = OffsetUdp + UdpHeader.Length;
    private const int OffsetInner = OffsetVxlan + VxlanHeader.Length;

    /// <summary>Decapsulates as a receiver does, checking each layer; returns the VXLAN drop reason.</summary>
    private static DropReason Decapsulate(byte[] frame, out ushort destinationPort, out uint vni, out byte[] inner)
    {
        Assert.Equal(DropReason.None, Ethernet.Parse(frame, out var etherType, out var l3Offset));
        Assert.Equal(Ethernet.TypeIpv4, etherType);
        var ip = frame.AsSpan(l3Offset);
        Assert.Equal(DropReason.None, Ipv4Header.Validate(ip, out var headerLength, out var totalLength));
        Assert.Equal(Ipv4Header.ProtocolUdp, Ipv4Header.Protocol(ip));
        Assert.False(Ipv4Header.IsFragment(ip));
        var udp = ip[headerLength..totalLength];
        Assert.Equal(DropReason.None, UdpHeader.Validate(udp));
        Assert.True(UdpHeader.ChecksumAcceptable(Ipv4Header.Source(ip), Ipv4Header.Destination(ip), udp));
        destinationPort = UdpHeader.DestinationPort(udp);
        var payload = udp[UdpHeader.Length..UdpHeader.DatagramLength(udp)];
        var reason = VxlanHeader.Parse(payload, out vni);
        inner = payload.Length >= VxlanHeader.Length ? payload[VxlanHeader.Length..].ToArray() : [];
        return reason;
    }

    [Theory]
    [InlineData("vxlan_flannel", VxlanHeader.LinuxPort, 1u)]
    [InlineData("vxlan_udp_checksum", VxlanHeader.LinuxPort, 1u)]
    [InlineData("vxlan_vni_16777215", VxlanHeader.LinuxPort, VxlanHeader.MaxVni)]
    [InlineData("vxlan_iana_port", VxlanHeader.IanaPort, 4096u)]
    [InlineData("vxlan_reserved_bits_set", VxlanHeader.LinuxPort, 1u)] // reserved bits are ignored on receipt
    public void DecapsulatesScapysPackets(string name, ushort expectedPort, uint expectedVni)
    {
        Assert.Equal(DropReason.None, Decapsulate(WireVectors.Get(name), out var port, out var vni, out var inner));

        Assert.Equal(expectedPort, port);
        Assert.Equal(expectedVni, vni);
        Assert.Equal(WireVectors.Get("inner_frame"), inner);
    }

    [Fact]
    public void OuterHeadersAreFlannels()
    {
        var frame = WireVectors.Get("vxlan_flannel");
        var ip = frame.AsSpan(Ethernet.HeaderLength);

        Assert.Equal(Addr.Nic2Mac, Ethernet.Destination(frame));
        Assert.Equal(Addr.Nic1Mac, Ethernet.Source(frame));
        Assert.Equal(Addr.Node1, Ipv4Header.Source(ip));
        Assert.Equal(Addr.Node2, Ipv4Header.Destination(ip));
        Assert.True(Ipv4Header.DontFragment(ip));
        Assert.Equal(64, Ipv4Header.Ttl(ip));
        Assert.Equal(50000, UdpHeader.SourcePort(frame.AsSpan(OffsetUdp)));
        Assert.Equal(0, UdpHeader.Checksum(frame.AsSpan(OffsetUdp)));
        Assert.True(VxlanHeader.HasVniFlag(frame.AsSpan(OffsetVxlan)));
        Assert.Equal(1u, VxlanHeader.Vni(frame.AsSpan(OffsetVxlan)));
    }

    [Fact]
    public void OverheadIsFiftyBytes()
    {
        Assert.Equal(50, VxlanHeader.OverheadIpv4);
        Assert.Equal(WireVectors.Get("inner_frame").Length + VxlanHeader.OverheadIpv4, WireVectors.Get("vxlan_flannel").Length);
    }

    [Fact]
    public void ClearIFlagIsBadFlags()
    {
        Assert.Equal(DropReason.VxlanBadFlags, Decapsulate(WireVectors.Get("vxlan_no_i_flag"), out _, out _, out _));
    }

    [Theory]
    [InlineData(0x00)]
    [InlineData(0x01)]
    [InlineData(0x80)]
    [InlineData(0xF7)] // every bit but I
    public void FlagsWithoutIAreBadFlags(byte flags)
    {
        var vxlan = WireVectors.Get("vxlan_flannel")[OffsetVxlan..];
        vxlan[0] = flags;

        Assert.Equal(DropReason.VxlanBadFlags, VxlanHeader.Parse(vxlan, out _));
        Assert.False(VxlanHeader.HasVniFlag(vxlan));
    }

    [Fact]
    public void TruncatedHeaderIsUdpMalformed()
    {
        var vxlan = WireVectors.Get("vxlan_flannel")[OffsetVxlan..];
        for (var length = 0; length < VxlanHeader.Length; length++)
            Assert.Equal(DropReason.UdpMalformed, VxlanHeader.Parse(vxlan.AsSpan(0, length), out _));
        Assert.Equal(DropReason.None, VxlanHeader.Parse(vxlan.AsSpan(0, VxlanHeader.Length), out var vni));
        Assert.Equal(1u, vni);
    }

    [Theory]
    [InlineData("vxlan_flannel", 1u)]
    [InlineData("vxlan_vni_16777215", VxlanHeader.MaxVni)]
    [InlineData("vxlan_iana_port", 4096u)]
    public void WriteIsByteIdenticalToScapy(string name, uint vni)
    {
        var expected = WireVectors.Get(name)[OffsetVxlan..OffsetInner];
        var written = new byte[VxlanHeader.Length + 1];
        Array.Fill(written, (byte)0xCC);

        VxlanHeader.Write(written, vni);

        Assert.Equal(expected, written[..VxlanHeader.Length]);
        Assert.Equal(0xCC, written[VxlanHeader.Length]);
    }

    /// <summary>Encapsulation built from our writers only (as EncapTemplate does) equals scapy's packet.</summary>
    [Theory]
    [InlineData("vxlan_flannel", VxlanHeader.LinuxPort, 1u, false)]
    [InlineData("vxlan_udp_checksum", VxlanHeader.LinuxPort, 1u, true)]
    [InlineData("vxlan_vni_16777215", VxlanHeader.LinuxPort, VxlanHeader.MaxVni, false)]
    [InlineData("vxlan_iana_port", VxlanHeader.IanaPort, 4096u, false)]
    public void EncapsulationIsByteIdenticalToScapy(string name, ushort port, uint vni, bool udpChecksum)
    {
        var inner = WireVectors.Get("inner_frame");
        var frame = new byte[VxlanHeader.OverheadIpv4 + inner.Length];
        Array.Fill(frame, (byte)0xCC);
        var ipLength = (ushort)(frame.Length - Ethernet.HeaderLength);
        var udpLength = (ushort)(ipLength - Ipv4Header.MinLength);

        inner.CopyTo(frame.AsSpan(OffsetInner));
        Ethernet.Write(frame, Addr.Nic2Mac, Addr.Nic1Mac, Ethernet.TypeIpv4);
        Ipv4Header.Write(frame.AsSpan(Ethernet.HeaderLength), ipLength, 0, Ipv4Header.FlagDontFragment, 64, Ipv4Header.ProtocolUdp, Addr.Node1, Addr.Node2);
        UdpHeader.Write(frame.AsSpan(OffsetUdp), 50000, port, udpLength);
        VxlanHeader.Write(frame.AsSpan(OffsetVxlan), vni);
        if (udpChecksum)
        {
            var checksum = UdpHeader.ComputeChecksum(Addr.Node1, Addr.Node2, frame.AsSpan(OffsetUdp, udpLength));
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(OffsetUdp + 6), checksum);
        }

        Assert.Equal(WireVectors.Get(name), frame);
    }

    [Fact]
    public void WriteKeepsOnlyTwentyFourBitsOfVni()
    {
        var vxlan = new byte[VxlanHeader.Length];

        VxlanHeader.Write(vxlan, VxlanHeader.MaxVni);

        Assert.Equal(new byte[] { 0x08, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0 }, vxlan);
        Assert.Equal(DropReason.None, VxlanHeader.Parse(vxlan, out var vni));
        Assert.Equal(VxlanHeader.MaxVni, vni);
    }
}
