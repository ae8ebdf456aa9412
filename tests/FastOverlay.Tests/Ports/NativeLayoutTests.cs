using System.Runtime.CompilerServices;
using FastOverlay.Ports.Native;

namespace FastOverlay.Tests.Ports;

/// <summary>The kernel reads these structures by offset: their sizes must match the C headers on LP64.</summary>
public sealed class NativeLayoutTests
{
    [Fact]
    public void Structures_have_the_kernel_sizes()
    {
        Assert.Equal(8, IntPtr.Size);
        Assert.Equal(16, Unsafe.SizeOf<IoVec>());
        Assert.Equal(56, Unsafe.SizeOf<MsgHdr>());
        Assert.Equal(64, Unsafe.SizeOf<MMsgHdr>());
        Assert.Equal(16, Unsafe.SizeOf<SockAddrIn>());
        Assert.Equal(20, Unsafe.SizeOf<SockAddrLl>());
        Assert.Equal(16, Unsafe.SizeOf<PacketMreq>());
        Assert.Equal(28, Unsafe.SizeOf<TpacketReq3>());
        Assert.Equal(48, Unsafe.SizeOf<TpacketBlockDesc>());
        Assert.Equal(48, Unsafe.SizeOf<Tpacket3Hdr>());
        Assert.Equal(8, Unsafe.SizeOf<PollFd>());
        Assert.Equal(8, Unsafe.SizeOf<SockFilter>());
        Assert.Equal(16, Unsafe.SizeOf<SockFprog>());
    }

    [Fact]
    public void Errors_name_the_call_the_target_and_the_errno()
    {
        var e = new NativeException("bind(AF_PACKET)", "veth-pod1", Errno.ENoDev);
        Assert.StartsWith("bind(AF_PACKET) on veth-pod1: ENODEV (No such device)", e.Message);
        Assert.Equal(Errno.ENoDev, e.ErrorNumber);
    }
}
