using System.Net.NetworkInformation;
using System.Net.Sockets;
using FastOverlay.Config;
using FastOverlay.Control.Etcd;
using FastOverlay.Wire;

namespace FastOverlay.Cli.Run;

/// <summary>flanneld's own flags (main.go), so that a flanneld command line carries over; they override the file's "Etcd" and "Node".</summary>
internal sealed record EtcdFlags
{
    public string? Endpoints { get; init; }
    public string? Prefix { get; init; }
    public string? CaFile { get; init; }
    public string? CertFile { get; init; }
    public string? KeyFile { get; init; }
    public string? Username { get; init; }
    public string? Password { get; init; }
    public string? PublicIp { get; init; }
    public string? Iface { get; init; }
    public string SubnetFile { get; init; } = Control.Subnets.SubnetFile.DefaultPath;
    /// <summary>FastOverlay's own prefix (not flanneld's): one key per Service, &lt;prefix&gt;&lt;namespace&gt;/&lt;name&gt;.</summary>
    public string ServicesPrefix { get; init; } = Control.Services.EtcdServiceStore.DefaultPrefix;
    /// <summary>--no-etcd-services: serve the file's Services only.</summary>
    public bool NoEtcdServices { get; init; }

    /// <summary>The services prefix to watch, or null when --no-etcd-services. Throws ConfigException naming the flag.</summary>
    public string? ServicesStorePrefix()
    {
        if (NoEtcdServices) return null;
        if (ServicesPrefix.Trim('/').Length == 0 || ServicesPrefix.Any(char.IsWhiteSpace))
            throw new ConfigException("--services-prefix", $"'{ServicesPrefix}' is not a key prefix (e.g. {Control.Services.EtcdServiceStore.DefaultPrefix})");
        return ServicesPrefix;
    }

    /// <summary>Flags override the file; the default endpoint and prefix are flanneld's. Throws ConfigException naming the flag.</summary>
    public EtcdOptions Options(EtcdFileSettings? file)
    {
        IReadOnlyList<Uri> endpoints;
        try
        {
            endpoints = Endpoints is { } e ? EtcdOptions.ParseEndpoints(e)
                : file is { Endpoints.Count: > 0 } f ? EtcdOptions.ParseEndpoints(string.Join(',', f.Endpoints))
                : [new Uri("http://127.0.0.1:2379")];
        }
        catch (ArgumentException x)
        {
            throw new ConfigException(Endpoints is null ? "Etcd.Endpoints" : "--etcd-endpoints", x.Message);
        }
        if ((CertFile is null) != (KeyFile is null)) throw new ConfigException("--etcd-certfile", "--etcd-certfile and --etcd-keyfile go together");
        return new EtcdOptions
        {
            Endpoints = endpoints,
            Prefix = Prefix ?? file?.Prefix ?? EtcdOptions.DefaultPrefix,
            CaFile = CaFile,
            CertFile = CertFile,
            KeyFile = KeyFile,
            Username = Username,
            Password = Password,
        };
    }

    /// <summary>--public-ip, else Node.PublicIP, else the first IPv4 address of --iface / Node.Underlay (flanneld's order).</summary>
    public Ipv4Address ResolvePublicIp(NodeTemplate node, string? underlay)
    {
        if (PublicIp is { } text)
            return Ipv4Address.TryParse(text, out var ip) ? ip : throw new ConfigException("--public-ip", $"'{text}' is not an IPv4 address");
        if (node.PublicIp is { } fromFile) return fromFile;
        if (underlay is null) throw new ConfigException("--public-ip", "required: give --public-ip, Node.PublicIP, or --iface to take its address");
        var nic = NetworkInterface.GetAllNetworkInterfaces().FirstOrDefault(n => n.Name == underlay)
            ?? throw new ConfigException("--iface", $"no interface named '{underlay}'");
        var address = nic.GetIPProperties().UnicastAddresses.FirstOrDefault(a => a.Address.AddressFamily == AddressFamily.InterNetwork)
            ?? throw new ConfigException("--iface", $"'{underlay}' has no IPv4 address; give --public-ip");
        return Ipv4Address.Parse(address.Address.ToString());
    }
}
