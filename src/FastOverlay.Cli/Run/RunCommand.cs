using System.CommandLine;
using FastOverlay.Config;
using FastOverlay.Control;
using FastOverlay.Ports;

namespace FastOverlay.Cli.Run;

/// <summary>
/// `fastoverlay run --config FILE`: one node's data plane on real interfaces until SIGINT or SIGTERM. With
/// --etcd-endpoints (or an "Etcd" section in the file) the node joins through etcd as flanneld does (issue 9).
/// </summary>
internal static class RunCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var config = new Option<FileInfo>("--config") { Description = "The node's configuration: flannel's net-conf.json plus Node and Peers; in etcd mode the Node (and \"Etcd\") only. Required without --etcd-endpoints" };
        var stats = new Option<double>("--stats") { Description = "Print counters every this many seconds (0: only at exit)", DefaultValueFactory = _ => 0 };
        var buffers = new Option<int>("--pool-buffers") { Description = "Packet buffers of 2 KiB each for the whole node, divided among the workers", DefaultValueFactory = _ => 16384 };
        var ring = new Option<PacketRingVersion>("--pod-ring") { Description = "Receive ring of pod ports: V2 (a frame is seen at once) or V3 (blocks, up to 1 ms later)", DefaultValueFactory = _ => PacketRingVersion.V2 };
        // flanneld's flags, same names and meanings (flannel main.go).
        var endpoints = new Option<string>("--etcd-endpoints") { Description = "etcd mode: comma-separated etcd URLs (flanneld's flag)" };
        var prefix = new Option<string>("--etcd-prefix") { Description = "etcd prefix of the network config and leases (default /coreos.com/network)" };
        var caFile = new Option<string>("--etcd-cafile") { Description = "CA bundle (PEM) to verify etcd's certificate" };
        var certFile = new Option<string>("--etcd-certfile") { Description = "client certificate (PEM) for etcd" };
        var keyFile = new Option<string>("--etcd-keyfile") { Description = "client key (PEM) for etcd" };
        var username = new Option<string>("--etcd-username") { Description = "etcd user (etcd auth)" };
        var password = new Option<string>("--etcd-password") { Description = "etcd password" };
        var publicIp = new Option<string>("--public-ip") { Description = "this node's underlay address, published in its lease (default: --iface's address)" };
        var iface = new Option<string>("--iface") { Description = "the underlay interface (overrides Node.Underlay)" };
        var servicesPrefix = new Option<string>("--services-prefix") { Description = "etcd mode: the prefix of the Services to serve, one key per Service (<prefix><namespace>/<name>, the JSON of one \"Services\" element)", DefaultValueFactory = _ => Control.Services.EtcdServiceStore.DefaultPrefix };
        var noEtcdServices = new Option<bool>("--no-etcd-services") { Description = "etcd mode: do not watch --services-prefix; serve the file's Services only" };
        var subnetFile = new Option<string>("--subnet-file") { Description = "where to write flannel's subnet.env for the CNI plugin", DefaultValueFactory = _ => Control.Subnets.SubnetFile.DefaultPath };
        var workers = new Option<int>("--workers") { Description = "Forwarding threads, each with its own sockets: flows are spread by PACKET_FANOUT_HASH and SO_REUSEPORT (default: one per CPU)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var noVnet = new Option<bool>("--no-vnet-header") { Description = "Pod ports without PACKET_VNET_HDR (pods then need TSO/GSO off): the pre-offload path, a kill switch" };
        var noCoalesce = new Option<bool>("--no-coalesce") { Description = "Do not merge TCP segments into super-frames toward pods (a kill switch; they still get NEEDS_CSUM frames)" };
        var apiSocket = Api.ClientCommands.SocketOption();
        apiSocket.Description = "Serve the node API (status, pods, counters, trace) on this Unix socket, mode 0600";
        var podState = new Option<string>("--pod-state") { Description = "Where pods added through the API are kept across restarts", DefaultValueFactory = _ => ApiSettings.DefaultPodState };
        var metrics = new Option<string>("--metrics-address") { Description = "Serve Prometheus metrics on IP:PORT at /metrics (none: off)", DefaultValueFactory = _ => Metrics.MetricsHost.DefaultAddress };
        var healthz = new Option<int>("--healthz-port") { Description = "kube-proxy's health port on the public IP: /healthz and /livez (0: off)", DefaultValueFactory = _ => HealthCheckServer.DefaultHealthzPort };
        var idleSpin = new Option<int>("--idle-spin-us") { Description = "How long a forwarding thread keeps polling after its last packet before it sleeps in poll(2), in microseconds (0: sleep at once)", DefaultValueFactory = _ => (int)new IdleOptions().Spin.TotalMicroseconds };
        var command = new Command("run", "Run one node on real interfaces: pods on AF_PACKET veth ports, VXLAN over a UDP socket on PublicIP:Port. Prints 'ready' once forwarding; SIGHUP reloads the config now")
        {
            config, stats, buffers, ring, endpoints, prefix, caFile, certFile, keyFile, username, password, publicIp, iface, servicesPrefix, noEtcdServices, subnetFile, noVnet, noCoalesce, workers, apiSocket, podState, metrics,
            healthz, idleSpin,
        };
        command.SetAction(result =>
        {
            var workerCount = result.GetValue(workers);
            if (workerCount < 1)
            {
                error.WriteLine("fastoverlay: --workers must be at least 1");
                return NodeRunner.ExitBadConfig;
            }
            if (result.GetValue(healthz) is < 0 or > ushort.MaxValue)
            {
                error.WriteLine("fastoverlay: --healthz-port must be a port number (0: off)");
                return NodeRunner.ExitBadConfig;
            }
            if (result.GetValue(idleSpin) < 0)
            {
                error.WriteLine("fastoverlay: --idle-spin-us must be 0 or more");
                return NodeRunner.ExitBadConfig;
            }
            var podOptions = new AfPacketOptions
            {
                Ring = result.GetValue(ring),
                VnetHeader = !result.GetValue(noVnet),
                Coalesce = !result.GetValue(noCoalesce),
            };
            var ports = new SocketPortFactory(podOptions, workers: workerCount);
            var api = new ApiSettings(result.GetValue(apiSocket)!, result.GetValue(podState)!, podOptions, result.GetValue(metrics) ?? "",
                SubnetFile: result.GetResult(subnetFile) is { Implicit: false } ? result.GetValue(subnetFile) : null, HealthzPort: result.GetValue(healthz),
                Idle: new IdleOptions { Spin = TimeSpan.FromMicroseconds(result.GetValue(idleSpin)) });
            var path = result.GetValue(config)?.FullName;
            var flags = new EtcdFlags
            {
                Endpoints = result.GetValue(endpoints),
                Prefix = result.GetValue(prefix),
                CaFile = result.GetValue(caFile),
                CertFile = result.GetValue(certFile),
                KeyFile = result.GetValue(keyFile),
                Username = result.GetValue(username),
                Password = result.GetValue(password),
                PublicIp = result.GetValue(publicIp),
                Iface = result.GetValue(iface),
                SubnetFile = result.GetValue(subnetFile)!,
                ServicesPrefix = result.GetValue(servicesPrefix)!,
                NoEtcdServices = result.GetValue(noEtcdServices),
            };
            if (flags.Endpoints is not null || path is not null && HasEtcdSection(path))
                return new EtcdNodeRunner(output, error, api).Run(path, flags, result.GetValue(stats), result.GetValue(buffers), ports, workerCount);
            if (path is null)
            {
                error.WriteLine("fastoverlay: run needs --config FILE, or --etcd-endpoints to join a cluster through etcd");
                return NodeRunner.ExitBadConfig;
            }
            return new NodeRunner(output, error, api).Run(path, result.GetValue(stats), result.GetValue(buffers), ports, workerCount);
        });
        return command;
    }

    private static bool HasEtcdSection(string path)
    {
        try
        {
            return EtcdNodeFile.HasEtcdSection(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
