using System.Diagnostics;
using System.Globalization;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using Xunit.Abstractions;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// A manual measurement, not a test: datagrams per second from one underlay port to another across a veth pair
/// between two namespaces, for 1 and 4 flows (alternating or in runs), 1 and 8 transmit sockets, offloads on and off, and with receive
/// packet steering on B's veth off and on (RPS spreads receive processing by 4-tuple hash, as RSS does on a NIC).
/// Runs only with FO_UNDERLAY_BENCH=1 (perf/underlay/gso.sh); every normal run skips it. Nothing is asserted on
/// the numbers.
/// </summary>
[Collection("netns")]
[Trait("Category", "Manual")]
public sealed class UdpUnderlayThroughput(ITestOutputHelper output)
{
    private const int Burst = 64;

    [SkippableFact]
    public void Datagrams_per_second_by_flows_sockets_and_offloads()
    {
        Skip.If(Environment.GetEnvironmentVariable("FO_UNDERLAY_BENCH") != "1", "manual measurement: set FO_UNDERLAY_BENCH=1 (perf/underlay/gso.sh)");
        Skip.If(TestNamespace.Unavailable() is not null, TestNamespace.Unavailable());
        var seconds = double.Parse(Environment.GetEnvironmentVariable("FO_UNDERLAY_BENCH_SECONDS") ?? "2", CultureInfo.InvariantCulture);
        var repeats = int.Parse(Environment.GetEnvironmentVariable("FO_UNDERLAY_BENCH_REPEATS") ?? "3", CultureInfo.InvariantCulture);
        var datagram = int.Parse(Environment.GetEnvironmentVariable("FO_UNDERLAY_BENCH_DATAGRAM") ?? "1400", CultureInfo.InvariantCulture);
        var rig = Environment.GetEnvironmentVariable("FO_UNDERLAY_BENCH_RIG") ?? "veth";
        var lines = new List<string> { $"rig {rig}", "rps  gso  gro  flows  run  sockets     sent/s  received/s  Gbit/s  gso-msgs/s  gro-msgs/s" };
        using var link = new UnderlayLink(queues: rig == "nic" ? 2 : 1);
        if (rig == "nic")
        {
            // As on a NIC: GSO datagrams are cut into wire datagrams before they leave (no TSO/USO on ul0), and
            // B's veth runs GRO per receive queue in its own NAPI thread, which re-merges each 4-tuple's datagrams for
            // a UDP_GRO socket (veth_skb_is_eligible_for_gro, udp_gro_receive). Which queue is the sender's
            // transmit queue, picked by the 4-tuple hash (skb_tx_hash): the part RSS plays on a NIC.
            link.A.Exec("ethtool -K ul0 tso off tx-udp-segmentation off");
            link.B!.Exec("ethtool -K ul1 gro on");
            link.B.Exec("sh -c \"echo 1 > /sys/class/net/ul1/threaded\"");
        }
        foreach (var rps in rig == "nic" ? new[] { false } : new[] { false, true })
        {
            // Every CPU may process ul1's receive queue (or none: processing stays on the sending CPU).
            var mask = rps ? ((1L << Math.Min(Environment.ProcessorCount, 32)) - 1).ToString("x", CultureInfo.InvariantCulture) : "0";
            link.B!.Exec($"sh -c \"echo {mask} > /sys/class/net/ul1/queues/rx-0/rps_cpus\"");
            // Flows alternate frame by frame (run 1) or come in runs of 16 frames, as a pod's TSO frame split
            // into segments would. Offloads off (or GRO alone) only with alternating flows, without RPS.
            var configs = from offloads in new[] { (Gso: true, Gro: true), (Gso: false, Gro: false), (Gso: false, Gro: true) }
                          from flows in new[] { 1, 4 }
                          from run in new[] { 1, 16 }
                          from sockets in new[] { 1, 8 }
                          where (flows > 1 || run == 1) && (offloads.Gso || (!rps && run == 1))
                          select (offloads.Gso, offloads.Gro, flows, run, sockets);
            foreach (var (gso, gro, flows, run, sockets) in configs)
            {
                var runs = Enumerable.Range(0, repeats).Select(_ => Run(link, gso, gro, flows, run, sockets, datagram, seconds)).OrderBy(r => r.Received).ToList();
                var median = runs[runs.Count / 2];
                var line = string.Create(CultureInfo.InvariantCulture,
                    $"{(rps ? "on " : "off")}  {(gso ? "on " : "off")}  {(gro ? "on " : "off")}  {flows,5}  {run,3}  {sockets,7}  {median.Sent,9:F0}  {median.Received,10:F0}  {median.Received * datagram * 8 / 1e9,6:F2}  {median.Gso,10:F0}  {median.Gro,10:F0}");
                lines.Add(line);
                output.WriteLine(line);
            }
        }
        var path = Environment.GetEnvironmentVariable("FO_UNDERLAY_BENCH_OUT");
        if (path is not null) File.WriteAllLines(path, lines);
    }

    private static (double Sent, double Received, double Gso, double Gro) Run(UnderlayLink link, bool gso, bool gro, int flows, int run, int sockets, int datagram, double seconds)
    {
        var options = new UdpUnderlayOptions { Gso = gso, Gro = gro, TransmitSockets = sockets };
        // One pool per thread: a PacketPool belongs to one forwarder thread.
        var poolA = new PacketPool(4096);
        var poolB = new PacketPool(4096);
        using var a = link.A.Enter(() => new UdpUnderlayPort(UnderlayLink.AddressA, UnderlayLink.VxlanPort, poolA, default, options));
        using var b = link.B!.Enter(() => new UdpUnderlayPort(UnderlayLink.AddressB, UnderlayLink.VxlanPort, poolB, default, options));
        var template = UnderlayLink.Template(UnderlayLink.AddressB);
        var frames = Enumerable.Range(0, Burst).Select(i => UnderlayLink.Frame(template, (ushort)(50000 + i / run % flows), i, datagram)).ToArray();

        var stop = false;
        long received = 0;
        var receiver = new Thread(() =>
        {
            var handles = new int[Burst];
            while (!Volatile.Read(ref stop))
            {
                var n = b.Receive(handles);
                if (n == 0)
                {
                    PortDriver.WaitReadable(b.FileDescriptor, 1);
                    continue;
                }
                poolB.Free(handles.AsSpan(0, n));
                received += n;
            }
        });
        receiver.Start();
        var sendHandles = new int[Burst];
        var start = Stopwatch.GetTimestamp();
        var end = start + (long)(seconds * Stopwatch.Frequency);
        long sent = 0;
        while (Stopwatch.GetTimestamp() < end)
        {
            for (var i = 0; i < Burst; i++)
            {
                var h = poolA.Allocate();
                frames[i].CopyTo(poolA.WritableFrame(h));
                poolA.SetLength(h, frames[i].Length);
                sendHandles[i] = h;
            }
            var accepted = a.Transmit(sendHandles);
            poolA.Free(sendHandles.AsSpan(accepted));
            sent += accepted;
        }
        var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        Thread.Sleep(100);
        Volatile.Write(ref stop, true);
        receiver.Join();
        return (sent / elapsed, Volatile.Read(ref received) / elapsed, a.Counters.TxGsoMessages / elapsed, b.Counters.RxGroMessages / elapsed);
    }
}
