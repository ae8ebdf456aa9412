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
