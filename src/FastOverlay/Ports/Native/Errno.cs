using System.Runtime.InteropServices;

namespace FastOverlay.Ports.Native;

/// <summary>A failed system call while opening or configuring a port, with errno by name and in words.</summary>
public sealed class NativeException(string call, string target, int errno)
    : IOException($"{call} on {target}: {Errno.Name(errno)} ({Marshal.GetPInvokeErrorMessage(errno)}){Errno.Hint(errno)}")
{
    public string Call { get; } = call;
    public string Target { get; } = target;
    public int ErrorNumber { get; } = errno;
}

/// <summary>
/// errno values FastOverlay tells apart (asm-generic/errno-base.h and errno.h) and the one way a failure becomes
/// an exception. Only the control path throws; the data path counts errors and returns 0.
/// </summary>
internal static class Errno
{
    public const int EPerm = 1;
    public const int ENoEnt = 2;
    public const int EIntr = 4;
    public const int EIo = 5;
    public const int ENxio = 6;
    public const int EBadF = 9;
    public const int EAgain = 11;
    public const int ENoMem = 12;
    public const int EAcces = 13;
    public const int EFault = 14;
    public const int EBusy = 16;
    public const int ENoDev = 19;
    public const int EInval = 22;
    public const int EMFile = 24;
    public const int ENoProtoOpt = 92;
    public const int EProtoNoSupport = 93;
    public const int EOpNotSupp = 95;
    public const int EAfNoSupport = 97;
    public const int EAddrInUse = 98;
    public const int EAddrNotAvail = 99;
    public const int ENetDown = 100;
    public const int ENetUnreach = 101;
    public const int ENoBufs = 105;
    public const int EMsgSize = 90;
    public const int EConnRefused = 111;
    public const int EHostUnreach = 113;

    /// <summary>errno of the last call made through <see cref="LibC"/> on this thread.</summary>
    public static int Last => Marshal.GetLastPInvokeError();

    /// <summary>The exception for the errno of the call that just failed, e.g. "bind(AF_PACKET) on veth-pod1: ENODEV (No such device)".</summary>
    public static NativeException Error(string call, string target) => new(call, target, Last);

    public static string Name(int errno) => errno switch
    {
        EPerm => "EPERM",
        ENoEnt => "ENOENT",
        EIntr => "EINTR",
        EIo => "EIO",
        ENxio => "ENXIO",
        EBadF => "EBADF",
        EAgain => "EAGAIN",
        ENoMem => "ENOMEM",
        EAcces => "EACCES",
        EFault => "EFAULT",
        EBusy => "EBUSY",
        ENoDev => "ENODEV",
        EInval => "EINVAL",
        EMFile => "EMFILE",
        EMsgSize => "EMSGSIZE",
        ENoProtoOpt => "ENOPROTOOPT",
        EProtoNoSupport => "EPROTONOSUPPORT",
        EOpNotSupp => "EOPNOTSUPP",
        EAfNoSupport => "EAFNOSUPPORT",
        EAddrInUse => "EADDRINUSE",
        EAddrNotAvail => "EADDRNOTAVAIL",
        ENetDown => "ENETDOWN",
        ENetUnreach => "ENETUNREACH",
        ENoBufs => "ENOBUFS",
        EConnRefused => "ECONNREFUSED",
        EHostUnreach => "EHOSTUNREACH",
        _ => $"errno {errno}",
    };

    /// <summary>What to check, for the failures an operator can fix.</summary>
    public static string Hint(int errno) => errno switch
    {
        EPerm or EAcces => "; raw sockets need root or CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode)",
        ENoDev or ENxio => "; the interface does not exist in this network namespace",
        EAddrInUse => "; another socket holds this address and port (a kernel VXLAN device such as flannel.1, or another fastoverlay)",
        EAddrNotAvail => "; the address is not assigned to an interface of this node",
        _ => "",
    };
}
