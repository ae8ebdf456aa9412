using System.Globalization;
using FastOverlay.Config;
using FastOverlay.Control;
using FastOverlay.Pipeline;
using FastOverlay.Ports;

namespace FastOverlay.Cli.Run;

/// <summary>The run command's output: one line per interval, a table at exit. Read from another thread than the forwarder's.</summary>
internal sealed class CounterPrinter(TextWriter output, NodeController controller)
{
    private long _lastRx;
    private long _lastTx;
    private TimeSpan _lastTime;

    public void PrintStart(OverlayConfig config)
    {
        var o = controller.Forwarder.State.Node;
        if (controller.Workers.Count > 1) output.WriteLine(Invariant($"workers: {controller.Workers.Count} (flows spread by PACKET_FANOUT_HASH on pod ports and SO_REUSEPORT on the underlay)"));
        output.WriteLine(Invariant($"node {o.Name}: public {o.PublicIp}:{o.VxlanPort}, subnet {o.Subnet}, gateway {Wire.Ipv4Address.Format(o.GatewayIp)} ({o.GatewayMac}), VTEP {o.VtepMac}, VNI {o.Vni}, MTU {o.InnerMtu}, {config.Peers.Count} peers, {config.Node.Pods.Count} pods"));
        foreach (var port in controller.Ports)
            output.WriteLine(port switch
            {
                AfPacketPort pod => $"port {port.Name}: {pod.OffloadSummary}",
                UdpUnderlayPort underlay => $"port {port.Name}: {underlay.OffloadSummary}",
                _ => $"port {port.Name}",
            });
    }

    public void PrintInterval(TimeSpan elapsed)
    {
        var c = controller.TotalCounters();
        var rx = c[Counter.RxPackets];
        var tx = c[Counter.TxPackets];
        var seconds = Math.Max((elapsed - _lastTime).TotalSeconds, 1e-9);
        output.WriteLine(Invariant($"stats {elapsed.TotalSeconds:0.0}s rx {rx} tx {tx} encap {c[Counter.Encapsulated]} decap {c[Counter.Decapsulated]} to-pods {c[Counter.DeliveredToPods]} drops {c.TotalDrops} rx/s {(rx - _lastRx) / seconds:0} tx/s {(tx - _lastTx) / seconds:0}"));
        foreach (var port in controller.Ports)
        {
            if (port is not ISocketPort socket) continue;
            socket.RefreshKernelStatistics();
            output.WriteLine($"stats port {port.Name} {socket.Counters}");
        }
        output.Flush();
        (_lastRx, _lastTx, _lastTime) = (rx, tx, elapsed);
    }

    public void PrintFinal(TimeSpan elapsed, long sleeps)
    {
        var forwarder = controller.Forwarder;
        var c = controller.TotalCounters();
        var workers = controller.Workers.Count;
        output.WriteLine(Invariant($"final counters of {forwarder.Name} after {elapsed.TotalSeconds:0.0} s{(workers > 1 ? $" ({workers} workers, summed)" : "")}"));
        foreach (var counter in Enum.GetValues<Counter>()) output.WriteLine(Invariant($"  {counter,-22} {c[counter],14}"));
        output.WriteLine(Invariant($"  {"IdleSleeps",-22} {sleeps,14}"));
        foreach (var (reason, count) in c.NonZeroDrops()) output.WriteLine(Invariant($"  drop {reason,-22} {count,9}  {DropReasons.Describe(reason)}"));
        foreach (var port in controller.Ports)
        {
            if (port is not ISocketPort socket) continue;
            socket.RefreshKernelStatistics();
            output.WriteLine($"  port {port.Name}: {socket.Counters}");
        }
        output.Flush();
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
