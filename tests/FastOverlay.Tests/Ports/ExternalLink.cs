using FastOverlay.Ports.Native;
using FastOverlay.Tests.Lab;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// A node and a client outside the cluster, in two namespaces this test owns (per-run unique names, see
/// <see cref="TestNamespace"/>), joined by a veth pair: the node's ext0 holds 10.77.0.1/24, the client's ext1
/// 10.77.0.2/24 and a route to the LoadBalancer IP 10.77.0.100 through the node. Both namespaces, and so the
/// pair, go away on dispose, also when the constructor fails half-way.
/// </summary>
internal sealed class ExternalLink : IDisposable
{
    public const string NodeInterface = "ext0";
    public const string ClientInterface = "ext1";
    public static readonly Ipv4Address NodeIp = Ipv4Address.Parse("10.77.0.1");
    public static readonly Ipv4Address ClientIp = Ipv4Address.Parse("10.77.0.2");
    public static readonly Ipv4Address LbIp = Ipv4Address.Parse("10.77.0.100");
    public static string Script => Path.Combine(LabRequirements.ScriptsDir, "external_client.py");

    public ExternalLink()
    {
        Node = new TestNamespace("exn");
        try
        {
            Client = new TestNamespace("exc");
            Node.Ip($"link add {NodeInterface} type veth peer name {ClientInterface}");
            Node.Ip($"link set {ClientInterface} netns {Client.Name}");
            Node.Ip($"link set {NodeInterface} up");
            Client.Ip($"link set {ClientInterface} up");
            Node.Ip($"addr add {NodeIp}/24 dev {NodeInterface}");
            Client.Ip($"addr add {ClientIp}/24 dev {ClientInterface}");
            Client.Ip($"route add {LbIp}/32 via {NodeIp}");
            NodeMac = MacAddress.Parse(Node.Exec($"cat /sys/class/net/{NodeInterface}/address").Trim());
            ClientMac = MacAddress.Parse(Client.Exec($"cat /sys/class/net/{ClientInterface}/address").Trim());
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public TestNamespace Node { get; }
    public TestNamespace? Client { get; }
    public MacAddress NodeMac { get; }
    public MacAddress ClientMac { get; }

    /// <summary>Why these tests cannot run here (root, iproute2, python3), or null.</summary>
    public static string? Unavailable() =>
        TestNamespace.Unavailable() ?? (Shell.Exists("python3") ? null : "python3 is not installed (apt-get install python3); .ci/run installs it");

    /// <summary>Runs Scripts/external_client.py in the client namespace.</summary>
    public CmdResult Python(params string[] args) =>
        Cmd.Run(["ip", "netns", "exec", Client!.Name, "python3", Script, .. args], TimeSpan.FromSeconds(30));

    /// <summary>`nft` run inside the node namespace, for ExternalGuard.</summary>
    public IReadOnlyList<string> Nft => ["ip", "netns", "exec", Node.Name, "nft"];

    public void Dispose()
    {
        Client?.Dispose();
        Node.Dispose();
    }
}

/// <summary>A plain AF_PACKET socket with one send(2) per frame, for crafted frames (in the namespace it was opened in).</summary>
internal sealed unsafe class FrameInjector : IDisposable
{
    private int _fd;

    private FrameInjector(int fd) => _fd = fd;

    public static FrameInjector Open(string interfaceName)
    {
        var index = (int)LibC.IfNameToIndex(interfaceName);
        var fd = LibC.Socket(Linux.AfPacket, Linux.SockRaw | Linux.SockCloExec, 0);
        Assert.True(index > 0 && fd >= 0, $"AF_PACKET socket on {interfaceName}");
        var address = new SockAddrLl { Family = Linux.AfPacket, ProtocolBigEndian = Fd.Htons(Linux.EthPAll), IfIndex = index };
        Assert.Equal(0, LibC.Bind(fd, &address, (uint)sizeof(SockAddrLl)));
        return new FrameInjector(fd);
    }

    public void Send(byte[] frame)
    {
        fixed (byte* p = frame) Assert.Equal(frame.Length, (int)LibC.Send(_fd, p, (nuint)frame.Length, 0));
    }

    public void Dispose() => Fd.Close(ref _fd);
}
