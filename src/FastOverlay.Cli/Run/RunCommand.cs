using System.CommandLine;
using FastOverlay.Control;
using FastOverlay.Ports;

namespace FastOverlay.Cli.Run;

/// <summary>`fastoverlay run --config FILE`: one node's data plane on real interfaces until SIGINT or SIGTERM.</summary>
internal static class RunCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var config = new Option<FileInfo>("--config") { Description = "The node's configuration: flannel's net-conf.json plus Node and Peers", Required = true };
        var stats = new Option<double>("--stats") { Description = "Print counters every this many seconds (0: only at exit)", DefaultValueFactory = _ => 0 };
        var buffers = new Option<int>("--pool-buffers") { Description = "Packet buffers of 2 KiB each", DefaultValueFactory = _ => 16384 };
        var ring = new Option<PacketRingVersion>("--pod-ring") { Description = "Receive ring of pod ports: V2 (a frame is seen at once) or V3 (blocks, up to 1 ms later)", DefaultValueFactory = _ => PacketRingVersion.V2 };
        var noVnet = new Option<bool>("--no-vnet-header") { Description = "Pod ports without PACKET_VNET_HDR (pods then need TSO/GSO off): the pre-offload path, a kill switch" };
        var noCoalesce = new Option<bool>("--no-coalesce") { Description = "Do not merge TCP segments into super-frames toward pods (a kill switch; they still get NEEDS_CSUM frames)" };
        var command = new Command("run", "Run one node on real interfaces: pods on AF_PACKET veth ports, VXLAN over a UDP socket on PublicIP:Port. Prints 'ready' once forwarding; SIGHUP reloads the config now")
        {
            config, stats, buffers, ring, noVnet, noCoalesce,
        };
        command.SetAction(result =>
        {
            var runner = new NodeRunner(output, error);
            var ports = new SocketPortFactory(new AfPacketOptions
            {
                Ring = result.GetValue(ring),
                VnetHeader = !result.GetValue(noVnet),
                Coalesce = !result.GetValue(noCoalesce),
            });
            return runner.Run(result.GetValue(config)!.FullName, result.GetValue(stats), result.GetValue(buffers), ports);
        });
        return command;
    }
}
