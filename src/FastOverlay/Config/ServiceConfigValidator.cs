using FastOverlay.Wire;

namespace FastOverlay.Config;

/// <summary>
/// The rules of one Service on its own (Kubernetes' API validation where it applies: pkg/apis/core/validation
/// ValidateService and ValidateEndpointSlice), and of <see cref="ServiceOptionsConfig"/>. What Services must not
/// share is <see cref="ServiceClaims"/>'. Every error is a <see cref="ConfigException"/> naming the field.
/// </summary>
/// <param name="network">The cluster's pod network: a Service address inside it would shadow a pod.</param>
/// <param name="nodeIp">This node's PublicIP, where NodePorts are served: no Service may claim it as its own address.</param>
/// <param name="vxlanPort">Backend.Port: a UDP NodePort on it would take the tunnel's traffic on the same address.</param>
public sealed class ServiceConfigValidator(ServiceOptionsConfig options, Ipv4Prefix network, Ipv4Address? nodeIp = null, ushort? vxlanPort = null)
{
    public ServiceOptionsConfig Options => options;

    /// <summary>Each Service (<c>Services[i]</c>), then what they share: the first Service to claim an address or port keeps it.</summary>
    public void CheckAll(IReadOnlyList<ServiceConfig> services, string arrayPath = "Services")
    {
        var claims = new ServiceClaims();
        for (var i = 0; i < services.Count; i++)
        {
            var path = $"{arrayPath}[{i}]";
            CheckService(services[i], path);
            claims.Claim(services[i], path);
        }
    }

    /// <summary>One Service on its own; <paramref name="path"/> prefixes the field names ("" for none).</summary>
    public void CheckService(ServiceConfig s, string path)
    {
        if (!KubernetesNames.IsDns1035Label(s.Name)) throw new ConfigException(Join(path, "Name"), $"'{s.Name}' is not a Service name: {KubernetesNames.Dns1035LabelRule}");
        if (!KubernetesNames.IsDns1123Label(s.Namespace)) throw new ConfigException(Join(path, "Namespace"), $"'{s.Namespace}' is not a namespace: {KubernetesNames.Dns1123LabelRule}");
        if (s.Type == ServiceType.ExternalName)
        {
            CheckExternalName(s, path);
            return;
        }
        if (s.ExternalName is not null)
            throw new ConfigException(Join(path, "ExternalName"), $"only for Type ExternalName (this Service is {s.Type})");
        if (s.ClusterIp is { } clusterIp) CheckServiceAddress(clusterIp, Join(path, "ClusterIP"));
        else if (s.Type != ServiceType.ClusterIP)
            throw new ConfigException(Join(path, "ClusterIP"), $"may not be \"None\" for {s.Type} Services (Kubernetes' rule: a headless Service has no virtual address to serve)");
        CheckPorts(s, path);
        CheckPolicies(s, path);
        CheckAddressList(s.ExternalIps, Join(path, "ExternalIPs"));
        if (s.LoadBalancerIps.Count > 0 && s.Type != ServiceType.LoadBalancer)
            throw new ConfigException(Join(path, "LoadBalancerIPs"), $"only for Type LoadBalancer (this Service is {s.Type})");
        CheckAddressList(s.LoadBalancerIps, Join(path, "LoadBalancerIPs"));
        // Kubernetes' ValidateService: "may only be used when `type` is 'LoadBalancer'".
        if (s.LoadBalancerSourceRanges.Count > 0 && s.Type != ServiceType.LoadBalancer)
            throw new ConfigException(Join(path, "LoadBalancerSourceRanges"), $"only for Type LoadBalancer (this Service is {s.Type})");
        CheckEndpoints(s.Endpoints, Join(path, "Endpoints"));
    }

    public static void CheckOptions(ServiceOptionsConfig o, Ipv4Prefix network, string path = "ServiceOptions")
    {
        if (o.NodePortMin < 1 || o.NodePortMax > 65535 || o.NodePortMin > o.NodePortMax)
            throw new ConfigException(Join(path, "NodePortRange"), $"{o.NodePortMin}-{o.NodePortMax} is not a port range within 1..65535 with lo <= hi");
        // Maglev's permutation (offset + j * skip) mod M visits every slot only when M is prime (NSDI'16 §3.4).
        if (o.MaglevTableSize is < 7 or > ServiceConfigParser.MaxMaglevTableSize || !IsPrime(o.MaglevTableSize))
            throw new ConfigException(Join(path, "MaglevTableSize"), $"{o.MaglevTableSize} is not a prime in 7..{ServiceConfigParser.MaxMaglevTableSize} (Maglev's permutations need a prime table size; 16381 or 65537 are usual)");
        if (o.ConntrackCapacity is < ServiceConfigParser.MinConntrackCapacity or > ServiceConfigParser.MaxConntrackCapacity)
            throw new ConfigException(Join(path, "ConntrackCapacity"), $"{o.ConntrackCapacity} is out of range ({ServiceConfigParser.MinConntrackCapacity}..{ServiceConfigParser.MaxConntrackCapacity})");
        foreach (var (name, seconds) in new[]
        {
            ("TcpSynTimeoutSeconds", o.TcpSynTimeoutSeconds), ("TcpEstablishedTimeoutSeconds", o.TcpEstablishedTimeoutSeconds),
            ("TcpClosingTimeoutSeconds", o.TcpClosingTimeoutSeconds), ("UdpTimeoutSeconds", o.UdpTimeoutSeconds),
            ("UdpStreamTimeoutSeconds", o.UdpStreamTimeoutSeconds), ("IcmpTimeoutSeconds", o.IcmpTimeoutSeconds),
        })
        {
            if (seconds < 1) throw new ConfigException(Join(path, name), $"{seconds} is out of range (at least 1 second)");
        }
        if (o.HairpinAddress is { } hairpin)
        {
            // Link-local is fine (Cilium's default is 169.254.42.1); it only must not be a pod's or nobody's.
            if (hairpin.Value == 0 || hairpin.Value >= 0xE000_0000u) throw new ConfigException(Join(path, "HairpinAddress"), $"{hairpin} is not a unicast address");
            if (network.Contains(hairpin.Value))
                throw new ConfigException(Join(path, "HairpinAddress"), $"{hairpin} is inside Network {network}: replies to it would be routed to a pod");
        }
    }

    /// <summary>Trial division: table sizes are at most 131071, so this is ~180 divisions, once per config load.</summary>
    internal static bool IsPrime(int n)
    {
        if (n < 2) return false;
        if (n % 2 == 0) return n == 2;
        for (var d = 3; (long)d * d <= n; d += 2)
        {
            if (n % d == 0) return false;
        }
        return true;
    }

    private static void CheckExternalName(ServiceConfig s, string path)
    {
        // kube-apiserver checks the name without a trailing dot (an absolute DNS name is allowed).
        if (s.ExternalName is not { } target) throw new ConfigException(Join(path, "ExternalName"), "required for Type ExternalName");
        if (!KubernetesNames.IsDns1123Subdomain(target.EndsWith('.') ? target[..^1] : target))
            throw new ConfigException(Join(path, "ExternalName"), $"'{target}' is not a DNS name: {KubernetesNames.Dns1123SubdomainRule}");
        if (s.ClusterIp is { } ip) throw new ConfigException(Join(path, "ClusterIP"), $"{ip}: may not be set for ExternalName Services (they are DNS's CNAME, never served)");
        if (s.ExternalIps.Count > 0) throw new ConfigException(Join(path, "ExternalIPs"), "not served for ExternalName Services (they are DNS's CNAME)");
        if (s.LoadBalancerIps.Count > 0) throw new ConfigException(Join(path, "LoadBalancerIPs"), "only for Type LoadBalancer (this Service is ExternalName)");
    }

    private void CheckPorts(ServiceConfig s, string path)
    {
        if (s.Ports.Count == 0 && s.ClusterIp is not null) throw new ConfigException(Join(path, "Ports"), "required: at least one port (only a headless Service may have none)");
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        var ports = new Dictionary<(L4Protocol, ushort), string>();
        var nodePorts = new Dictionary<(L4Protocol, ushort), string>();
        var exposesNodePorts = s.Type is ServiceType.NodePort or ServiceType.LoadBalancer;
        for (var i = 0; i < s.Ports.Count; i++)
        {
            var port = s.Ports[i];
            var at = Join(path, $"Ports[{i}]");
            if (port.Name is { } name)
            {
                if (!KubernetesNames.IsDns1123Label(name)) throw new ConfigException($"{at}.Name", $"'{name}' is not a port name: {KubernetesNames.Dns1123LabelRule}");
                if (!names.TryAdd(name, at)) throw new ConfigException($"{at}.Name", $"'{name}' is also {names[name]}.Name");
            }
            else if (s.Ports.Count > 1)
            {
                throw new ConfigException($"{at}.Name", "required when a Service has more than one port (Kubernetes' rule: EndpointSlices match ports by name)");
            }
            if (port.Port == 0) throw new ConfigException($"{at}.Port", "0 is out of range (1..65535)");
            if (port.TargetPort == 0) throw new ConfigException($"{at}.TargetPort", "0 is out of range (1..65535)");
            if (!ports.TryAdd((port.Protocol, port.Port), at))
                throw new ConfigException($"{at}.Port", $"{port.Port}/{Name(port.Protocol)} is also {ports[(port.Protocol, port.Port)]}.Port");
            if (port.NodePort is not { } nodePort)
            {
                if (s.Type == ServiceType.NodePort)
                    throw new ConfigException($"{at}.NodePort", $"required for a NodePort Service: nothing allocates one here; pick a port in {options.NodePortMin}-{options.NodePortMax}");
                continue;
            }
            if (!exposesNodePorts) throw new ConfigException($"{at}.NodePort", $"only for Type NodePort or LoadBalancer (this Service is {s.Type})");
            CheckNodePort(nodePort, port.Protocol, $"{at}.NodePort");
            if (!nodePorts.TryAdd((port.Protocol, nodePort), at))
                throw new ConfigException($"{at}.NodePort", $"{nodePort}/{Name(port.Protocol)} is also {nodePorts[(port.Protocol, nodePort)]}.NodePort");
        }
        if (s.HealthCheckNodePort is not { } health) return;
        var healthPath = Join(path, "HealthCheckNodePort");
        // kube-apiserver: "may only be set when type is 'LoadBalancer' and externalTrafficPolicy is 'Local'".
        if (s.Type != ServiceType.LoadBalancer || s.ExternalTrafficPolicy != TrafficPolicy.Local)
            throw new ConfigException(healthPath, "may only be set when Type is LoadBalancer and ExternalTrafficPolicy is Local (it tells the load balancer which nodes have local endpoints)");
        CheckNodePort(health, L4Protocol.Tcp, healthPath);
        if (nodePorts.TryGetValue((L4Protocol.Tcp, health), out var clash)) throw new ConfigException(healthPath, $"{health}/TCP is also {clash}.NodePort");
    }

    private void CheckNodePort(ushort port, L4Protocol protocol, string path)
    {
        if (port < options.NodePortMin || port > options.NodePortMax)
            throw new ConfigException(path, $"{port} is outside ServiceOptions.NodePortRange {options.NodePortMin}-{options.NodePortMax}");
        if (protocol == L4Protocol.Udp && port == vxlanPort)
            throw new ConfigException(path, $"{port}/UDP is Backend.Port, the VXLAN port on the same node address");
    }

    private static void CheckPolicies(ServiceConfig s, string path)
    {
        // kube-apiserver: externalTrafficPolicy applies to external traffic only (NodePort, LoadBalancer, externalIPs).
        if (s.ExternalTrafficPolicy == TrafficPolicy.Local && s.Type == ServiceType.ClusterIP && s.ExternalIps.Count == 0)
            throw new ConfigException(Join(path, "ExternalTrafficPolicy"), "Local applies to external traffic only: Type NodePort or LoadBalancer, or ExternalIPs");
        if (s.SessionAffinity == SessionAffinity.ClientIP && s.SessionAffinityTimeoutSeconds is < 1 or > ServiceConfig.MaxAffinityTimeoutSeconds)
            throw new ConfigException(Join(path, "SessionAffinityTimeoutSeconds"), $"{s.SessionAffinityTimeoutSeconds} is out of range (1..{ServiceConfig.MaxAffinityTimeoutSeconds})");
    }

    private void CheckAddressList(IReadOnlyList<Ipv4Address> addresses, string path)
    {
        var seen = new Dictionary<Ipv4Address, int>();
        for (var i = 0; i < addresses.Count; i++)
        {
            var at = $"{path}[{i}]";
            CheckServiceAddress(addresses[i], at);
            if (!seen.TryAdd(addresses[i], i)) throw new ConfigException(at, $"{addresses[i]} is also {path}[{seen[addresses[i]]}]");
        }
    }

    /// <summary>A ClusterIP, external or load-balancer address: ordinary unicast, no pod's, not the node's own.</summary>
    private void CheckServiceAddress(Ipv4Address ip, string path)
    {
        CheckNotSpecial(ip, path);
        if (network.Contains(ip.Value)) throw new ConfigException(path, $"{ip} is inside Network {network}: it would shadow a pod's address");
        if (ip == nodeIp) throw new ConfigException(path, $"{ip} is this node's PublicIP: Services reach the node's address through NodePorts only");
    }

    private static void CheckEndpoints(IReadOnlyList<EndpointConfig> endpoints, string path)
    {
        var seen = new Dictionary<Ipv4Address, int>();
        for (var i = 0; i < endpoints.Count; i++)
        {
            var e = endpoints[i];
            var at = $"{path}[{i}]";
            CheckNotSpecial(e.Ip, $"{at}.IP");
            if (!seen.TryAdd(e.Ip, i)) throw new ConfigException($"{at}.IP", $"{e.Ip} is also {path}[{seen[e.Ip]}].IP");
            if (e.Node is { } node && !KubernetesNames.IsDns1123Subdomain(node))
                throw new ConfigException($"{at}.Node", $"'{node}' is not a node name: {KubernetesNames.Dns1123SubdomainRule}");
            // The EndpointSlice controller sets ready = serving && !terminating: both true never comes from Kubernetes.
            if (e.Ready && e.Terminating) throw new ConfigException($"{at}.Terminating", "true with Ready true: a terminating endpoint is never ready (it may still be Serving)");
            if (e.Ready && !e.Serving) throw new ConfigException($"{at}.Serving", "false with Ready true: a ready endpoint is serving");
        }
    }

    /// <summary>ValidateNonSpecialIP: not unspecified, loopback, link-local, multicast or reserved.</summary>
    private static void CheckNotSpecial(Ipv4Address ip, string path)
    {
        var v = ip.Value;
        var why = (v >> 24) == 0 ? "in 0.0.0.0/8 (this host)" : (v >> 24) == 127 ? "a loopback address" : (v >> 16) == 0xA9FE ? "a link-local address"
            : v >= 0xE000_0000u ? "a multicast, reserved or broadcast address" : null;
        if (why is not null) throw new ConfigException(path, $"{ip} is {why}");
    }

    private static string Join(string path, string key) => JsonFields.Join(path, key);

    internal static string Name(L4Protocol protocol) => protocol == L4Protocol.Tcp ? "TCP" : "UDP";
}
