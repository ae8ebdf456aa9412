namespace FastOverlay.Pipeline;

/// <summary>
/// Which IPv4 and MAC address each pod port may send from, the anti-spoofing state flannel's bridge lacks. A
/// configured pod IP binds at once; otherwise the first ARP from the port with an unclaimed address of the subnet
/// binds it. The MAC binds from the first ARP that carries the bound address. Bindings live as long as the port:
/// Kubernetes gives every pod sandbox a new veth, so a new pod is a new port. Owned by the forwarder's thread.
/// </summary>
internal sealed class PortBindings
{
    private uint[] _ip = [];
    private ulong[] _mac = [];
    /// <summary>
    /// The host port: the node's stack sends from its own addresses and forwards for others (replies of a node
    /// service, traffic routed in from outside), so no source is pinned there, as the kernel does not pin cbr0's.
    /// </summary>
    private int _host = -1;

    public uint Ip(int port) => (uint)port < (uint)_ip.Length ? _ip[port] : 0;
    public ulong Mac(int port) => (uint)port < (uint)_mac.Length ? _mac[port] : 0;

    public void Attach(ForwardingState? previous, ForwardingState state)
    {
        var n = state.Ports.Length;
        var ip = new uint[n];
        var mac = new ulong[n];
        for (var p = 1; p < n; p++)
        {
            var same = previous is not null && p < previous.Ports.Length && ReferenceEquals(previous.Ports[p], state.Ports[p]) && p < _ip.Length;
            var configured = state.PortAddresses[p];
            ip[p] = configured != 0 ? configured : same ? _ip[p] : 0;
            mac[p] = same && ip[p] == _ip[p] ? _mac[p] : 0;
        }
        _ip = ip;
        _mac = mac;
        _host = state.HostPort;
    }

    /// <summary>The port that owns an address, or -1.</summary>
    public int Owner(uint address)
    {
        for (var p = 1; p < _ip.Length; p++)
        {
            if (_ip[p] == address) return p;
        }
        return -1;
    }

    /// <summary>
    /// Checks an ARP sender against the port's binding and binds what is still free. False means the ARP
    /// claims an address or MAC that is not this port's.
    /// </summary>
    public bool CheckArp(int port, uint senderIp, ulong senderMac, ulong ethernetSource)
    {
        if ((uint)port >= (uint)_ip.Length) return false;
        if (senderMac != ethernetSource) return false;
        if (senderIp == 0) return _mac[port] == 0 || _mac[port] == senderMac; // an RFC 5227 probe claims nothing
        var owner = Owner(senderIp);
        if (owner >= 0 && owner != port) return false;
        if (_ip[port] == 0) _ip[port] = senderIp;
        else if (_ip[port] != senderIp) return false;
        if (_mac[port] == 0) _mac[port] = senderMac;
        return _mac[port] == senderMac;
    }

    /// <summary>An IPv4 packet from a pod port: its source must be the port's address and MAC once bound.</summary>
    public bool CheckIpv4(int port, uint source, ulong ethernetSource)
    {
        if ((uint)port >= (uint)_ip.Length) return false;
        if (port == _host) return true;
        var ip = _ip[port];
        if (ip != 0 && ip != source) return false;
        var mac = _mac[port];
        return mac == 0 || mac == ethernetSource;
    }
}
