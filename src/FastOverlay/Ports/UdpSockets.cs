using FastOverlay.Ports.Native;

namespace FastOverlay.Ports;

/// <summary>Opening the underlay's UDP sockets and probing the kernel's UDP offloads (the setup half of <see cref="UdpUnderlayPort"/>).</summary>
internal static unsafe class UdpSockets
{
    /// <summary>A UDP socket bound to address:port (port 0: an ephemeral one, returned), DF on every datagram.</summary>
    public static int Open(uint address, ushort port, string target, out ushort boundPort, bool reusePort = false)
    {
        var fd = LibC.Socket(Linux.AfInet, Linux.SockDgram | Linux.SockNonBlock | Linux.SockCloExec, Linux.IpProtoUdp);
        if (fd < 0) throw Errno.Error("socket(AF_INET, SOCK_DGRAM)", target);
        try
        {
            Fd.SetOption(fd, Linux.IpProtoIp, Linux.IpMtuDiscover, Linux.IpPmtuDiscDo, "setsockopt(IP_MTU_DISCOVER, IP_PMTUDISC_DO)", target);
            // Several workers each bind the VXLAN port; the kernel spreads datagrams over them by 4-tuple hash.
            if (reusePort) Fd.SetOption(fd, Linux.SolSocket, Linux.SoReusePort, 1, "setsockopt(SO_REUSEPORT)", target);
            var bound = new SockAddrIn { Family = Linux.AfInet, PortBigEndian = Fd.Htons(port), AddressBigEndian = Fd.Htonl(address) };
            if (LibC.Bind(fd, &bound, (uint)sizeof(SockAddrIn)) != 0) throw Errno.Error("bind(UDP)", target);
            var length = (uint)sizeof(SockAddrIn);
            if (LibC.GetSockName(fd, &bound, &length) != 0) throw Errno.Error("getsockname(UDP)", target);
            boundPort = Fd.Htons(bound.PortBigEndian);
            return fd;
        }
        catch
        {
            Fd.Close(ref fd);
            throw;
        }
    }

    /// <summary>getsockopt(UDP_SEGMENT) answers on every kernel that has UDP GSO (wireguard-go supportsUDPOffload).</summary>
    public static bool ProbeGso(int fd, out string note)
    {
        if (Fd.TryGetIntOption(fd, Linux.SolUdp, Linux.UdpSegment, out _))
        {
            note = "";
            return true;
        }
        note = $"udp gso off (getsockopt(UDP_SEGMENT): {Errno.Name(Errno.Last)}; the kernel predates 4.18)";
        return false;
    }

    /// <summary>
    /// setsockopt(UDP_GRO) exists since 5.0, but wireguard-go (c92064f) keeps GRO off below 5.12, where
    /// getsockopt(UDP_GRO) (98184612aca0) is missing: the read back is the version test.
    /// </summary>
    public static bool ProbeGro(int fd, out string note)
    {
        if (!Fd.TrySetOption(fd, Linux.SolUdp, Linux.UdpGro, 1))
        {
            note = $"udp gro off (setsockopt(UDP_GRO): {Errno.Name(Errno.Last)})";
            return false;
        }
        if (!Fd.TryGetIntOption(fd, Linux.SolUdp, Linux.UdpGro, out var value) || value != 1)
        {
            Fd.TrySetOption(fd, Linux.SolUdp, Linux.UdpGro, 0);
            note = "udp gro off (kernel older than 5.12: getsockopt(UDP_GRO) fails)";
            return false;
        }
        note = "udp gro on";
        return true;
    }
}
