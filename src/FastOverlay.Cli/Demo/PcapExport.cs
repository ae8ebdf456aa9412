using System.Diagnostics;
using FastOverlay.Capture;
using FastOverlay.Cluster;
using FastOverlay.Pipeline;

namespace FastOverlay.Cli.Demo;

/// <summary>Writes the frames a trace captured (pod side and every node port, underlay included) as pcapng.</summary>
internal static class PcapExport
{
    public static async Task<int> WriteAsync(InMemoryCluster cluster, PacketTracer tracer, FileInfo file)
    {
        var printer = new TracePrinter(cluster, tracer, TextWriter.Null);
        var wallStart = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        var tickStart = tracer.Records.Length > 0 ? tracer.Records[0].Timestamp : 0;
        await using var writer = new PcapNgWriter(file.Create());
        foreach (var r in tracer.Records.ToArray())
        {
            var (name, direction) = r.Event switch
            {
                TraceEvent.EndpointSent => ($"{r.Node}:eth0", PcapNgWriter.Direction.Outbound),
                TraceEvent.EndpointReceived => ($"{r.Node}:eth0", PcapNgWriter.Direction.Inbound),
                TraceEvent.Receive => ($"{r.Node}:{printer.PortName(r.Node, r.Port)}", PcapNgWriter.Direction.Inbound),
                TraceEvent.Transmit => ($"{r.Node}:{printer.PortName(r.Node, r.Port)}", PcapNgWriter.Direction.Outbound),
                _ => ((string?)null, PcapNgWriter.Direction.Unknown),
            };
            if (name is null) continue;
            var micros = wallStart + (r.Timestamp - tickStart) * 1_000_000 / Stopwatch.Frequency;
            writer.WritePacket(writer.Interface(name), micros, tracer.Frame(r), direction);
        }
        return writer.PacketCount;
    }
}
