using FastOverlay.Wire;

namespace FastOverlay.Config;

/// <summary>
/// The relations between fields, checked before anything is opened. Each rule throws a
/// <see cref="ConfigException"/> naming the offending field; the first broken rule wins.
/// </summary>
internal static class ConfigValidator
{
    public static void Validate(OverlayConfig config, IInterfaceCatalog interfaces)
    {
        var network = config.Network;
        if (config.SubnetLen <= network.Length)
            throw new ConfigException("SubnetLen", $"{config.SubnetLen} must be longer than Network's /{network.Length}, or there is room for only one node");
        CheckInside(config.SubnetMin, "SubnetMin", network);
        CheckInside(config.SubnetMax, "SubnetMax", network);
        if (config.SubnetMin is { } min && config.SubnetMax is { } max && min.Value > max.Value)
            throw new ConfigException("SubnetMax", $"{max} is below SubnetMin {min}");

        var node = config.Node;
        CheckName(node.Name, "Node.Name");
        CheckPublicIp(node.PublicIp, "Node.PublicIP", network);
        CheckSubnet(node.Subnet, "Node.Subnet", config);
        CheckVtepMac(node.VtepMac, "Node.VtepMAC");
        if (node.Underlay is { } underlay) CheckInterface(underlay, "Node.Underlay", interfaces);
        if (node.HostInterface is { } host)
        {
            CheckInterface(host, "Node.HostInterface", interfaces);
            if (host == node.Underlay) throw new ConfigException("Node.HostInterface", $"'{host}' is the underlay (Node.Underlay)");
        }

        var names = new Dictionary<string, string>(StringComparer.Ordinal) { [node.Name] = "Node.Name" };
        var publicIps = new Dictionary<Ipv4Address, string> { [node.PublicIp] = "Node.PublicIP" };
        var macs = new Dictionary<MacAddress, string> { [node.VtepMac] = "Node.VtepMAC" };
        var subnets = new List<(Ipv4Prefix Subnet, string Path)> { (node.Subnet, "Node.Subnet") };
        for (var i = 0; i < config.Peers.Count; i++)
        {
            var peer = config.Peers[i];
            var path = $"Peers[{i}]";
            CheckName(peer.Name, $"{path}.Name");
            Unique(names, peer.Name, $"{path}.Name", $"'{peer.Name}'");
            CheckPublicIp(peer.PublicIp, $"{path}.PublicIP", network);
            Unique(publicIps, peer.PublicIp, $"{path}.PublicIP", peer.PublicIp.ToString());
            CheckSubnet(peer.Subnet, $"{path}.Subnet", config);
            foreach (var (other, otherPath) in subnets)
            {
                if (other.Overlaps(peer.Subnet)) throw new ConfigException($"{path}.Subnet", $"{peer.Subnet} overlaps {otherPath} {other}");
            }
            subnets.Add((peer.Subnet, $"{path}.Subnet"));
            CheckVtepMac(peer.VtepMac, $"{path}.VtepMAC");
            Unique(macs, peer.VtepMac, $"{path}.VtepMAC", peer.VtepMac.ToString());
        }

        var gatewayMac = node.GatewayMac ?? throw new ConfigException("Node.GatewayMAC", "not resolved");
        if (gatewayMac.IsMulticast || gatewayMac == MacAddress.Zero) throw new ConfigException("Node.GatewayMAC", $"{gatewayMac} is not a unicast address");
        if (macs.TryGetValue(gatewayMac, out var taken)) throw new ConfigException("Node.GatewayMAC", $"{gatewayMac} is also {taken}");
        CheckPods(node, gatewayMac, interfaces);

        ServiceConfigValidator.CheckOptions(config.ServiceOptions, network);
        new ServiceConfigValidator(config.ServiceOptions, network, node.PublicIp, config.Backend.Port).CheckAll(config.Services);
    }

    private static void CheckPods(NodeConfig node, MacAddress gatewayMac, IInterfaceCatalog interfaces)
    {
        var seenInterfaces = new Dictionary<string, string>(StringComparer.Ordinal);
        var seenIps = new Dictionary<Ipv4Address, string>();
        for (var i = 0; i < node.Pods.Count; i++)
        {
            var pod = node.Pods[i];
            var path = $"Node.Pods[{i}]";
            CheckInterface(pod.Interface, $"{path}.Interface", interfaces);
            Unique(seenInterfaces, pod.Interface, $"{path}.Interface", $"'{pod.Interface}'");
            if (pod.Interface == node.Underlay) throw new ConfigException($"{path}.Interface", $"'{pod.Interface}' is the underlay (Node.Underlay)");
            if (pod.Interface == node.HostInterface) throw new ConfigException($"{path}.Interface", $"'{pod.Interface}' is the host port (Node.HostInterface)");
            // The pitfall of REFERENCE.md: frames to an interface's own MAC are also taken by the node's kernel.
            if (interfaces.Mac(pod.Interface) == gatewayMac)
                throw new ConfigException("Node.GatewayMAC", $"{gatewayMac} is the MAC of {pod.Interface}: the node's kernel would also route every frame pods send to the gateway; pick another (or omit it for the default)");
            if (pod.Ip is not { } ip) continue;
            var ipPath = $"{path}.IP";
            var subnet = node.Subnet;
            if (!subnet.Contains(ip.Value)) throw new ConfigException(ipPath, $"{ip} is outside Node.Subnet {subnet}");
            if (ip.Value == subnet.Address) throw new ConfigException(ipPath, $"{ip} is Node.Subnet's network address (the VTEP address flannel gives flannel.1)");
            if (ip.Value == node.Gateway.Value) throw new ConfigException(ipPath, $"{ip} is the gateway, the first address of Node.Subnet");
            if (ip.Value == subnet.Last) throw new ConfigException(ipPath, $"{ip} is Node.Subnet's broadcast address");
            Unique(seenIps, ip, ipPath, ip.ToString());
        }
    }

    private static void Unique<T>(Dictionary<T, string> seen, T key, string path, string shown) where T : notnull
    {
        if (!seen.TryAdd(key, path)) throw new ConfigException(path, $"{shown} is also {seen[key]}");
    }

    private static void CheckName(string name, string path)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ConfigException(path, "must not be empty");
    }

    private static void CheckInside(Ipv4Address? address, string path, Ipv4Prefix network)
    {
        if (address is { } a && !network.Contains(a.Value)) throw new ConfigException(path, $"{a} is outside Network {network}");
    }

    private static void CheckPublicIp(Ipv4Address ip, string path, Ipv4Prefix network)
    {
        if (ip.Value == 0 || ip.Value >= 0xE000_0000u) throw new ConfigException(path, $"{ip} is not a unicast address");
        if (network.Contains(ip.Value)) throw new ConfigException(path, $"{ip} is inside Network {network}: the underlay address must be outside the overlay");
    }

    private static void CheckSubnet(Ipv4Prefix subnet, string path, OverlayConfig config)
    {
        if (!config.Network.Contains(subnet)) throw new ConfigException(path, $"{subnet} is outside Network {config.Network}");
        if (subnet.Length != config.SubnetLen) throw new ConfigException(path, $"{subnet} is a /{subnet.Length}, but SubnetLen is {config.SubnetLen}");
    }

    private static void CheckVtepMac(MacAddress mac, string path)
    {
        if (mac.IsMulticast || mac == MacAddress.Zero) throw new ConfigException(path, $"{mac} is not a unicast address");
    }

    /// <summary>dev_valid_name (net/core/dev.c): 1 to 15 bytes, not "." or "..", no '/', ':' or whitespace.</summary>
    private static void CheckInterface(string name, string path, IInterfaceCatalog interfaces)
    {
        var valid = name.Length is > 0 and < 16 && name is not ("." or "..") && !name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || c > 0x7E);
        if (!valid) throw new ConfigException(path, $"'{name}' is not a valid interface name (1 to 15 characters, no '/', ':' or spaces)");
        if (!interfaces.Exists(name)) throw new ConfigException(path, $"no interface '{name}' on this node (/sys/class/net/{name} does not exist)");
    }
}
