namespace FastOverlay.Ports.Native;

/// <summary>Small wrappers for the setup calls every socket port makes, each throwing a <see cref="NativeException"/>.</summary>
internal static unsafe class Fd
{
    public static void SetOption<T>(int fd, int level, int name, T value, string call, string target) where T : unmanaged
    {
        if (LibC.SetSockOpt(fd, level, name, &value, (uint)sizeof(T)) != 0) throw Errno.Error(call, target);
    }

    public static bool TrySetOption<T>(int fd, int level, int name, T value) where T : unmanaged =>
        LibC.SetSockOpt(fd, level, name, &value, (uint)sizeof(T)) == 0;

    public static int GetIntOption(int fd, int level, int name)
    {
        int value;
        var length = (uint)sizeof(int);
        return LibC.GetSockOpt(fd, level, name, &value, &length) == 0 ? value : -1;
    }

    /// <summary>getsockopt for an int that tells failure apart from any value (a feature probe).</summary>
    public static bool TryGetIntOption(int fd, int level, int name, out int value)
    {
        int v;
        var length = (uint)sizeof(int);
        var ok = LibC.GetSockOpt(fd, level, name, &v, &length) == 0;
        value = ok ? v : 0;
        return ok;
    }

    /// <summary>
    /// Asks for a socket buffer of <paramref name="bytes"/>: SO_*BUFFORCE first (root may exceed net.core.*mem_max),
    /// then the plain option, which the kernel silently caps. Returns what the kernel granted (it reports double
    /// the request, the bookkeeping overhead, socket(7)).
    /// </summary>
    public static int SetBuffer(int fd, bool receive, int bytes)
    {
        var force = receive ? Linux.SoRcvBufForce : Linux.SoSndBufForce;
        var plain = receive ? Linux.SoRcvBuf : Linux.SoSndBuf;
        if (!TrySetOption(fd, Linux.SolSocket, force, bytes)) TrySetOption(fd, Linux.SolSocket, plain, bytes);
        return GetIntOption(fd, Linux.SolSocket, plain);
    }

    /// <summary>
    /// Joins a PACKET_FANOUT_HASH group and returns its id. Without an id the kernel allocates one that no group in
    /// this namespace uses now (PACKET_FANOUT_FLAG_UNIQUEID; fanout_find_new_id: a kernel-wide counter, the next
    /// free value), read back with getsockopt as id | type &lt;&lt; 16 | flags &lt;&lt; 24; the other workers' sockets
    /// join with that id. A group id chosen by us instead (an interface index, say) could meet an allocated one
    /// on another device, and the join would fail with EINVAL.
    /// </summary>
    public static int JoinFanout(int fd, int? groupId, string target)
    {
        if (groupId is { } id)
        {
            SetOption(fd, Linux.SolPacket, Linux.PacketFanout, (id & 0xFFFF) | (Linux.PacketFanoutHash << 16), $"setsockopt(PACKET_FANOUT, group {id})", target);
            return id & 0xFFFF;
        }
        var unique = (Linux.PacketFanoutHash | Linux.PacketFanoutFlagUniqueId) << 16;
        SetOption(fd, Linux.SolPacket, Linux.PacketFanout, unique, "setsockopt(PACKET_FANOUT, PACKET_FANOUT_FLAG_UNIQUEID)", target);
        if (!TryGetIntOption(fd, Linux.SolPacket, Linux.PacketFanout, out var value)) throw Errno.Error("getsockopt(PACKET_FANOUT)", target);
        return value & 0xFFFF;
    }

    public static void Close(ref int fd)
    {
        if (fd < 0) return;
        LibC.Close(fd);
        fd = -1;
    }

    /// <summary>Network byte order for a 16-bit field (htons).</summary>
    public static ushort Htons(ushort value) => BitConverter.IsLittleEndian ? System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(value) : value;

    public static uint Htonl(uint value) => BitConverter.IsLittleEndian ? System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(value) : value;
}
