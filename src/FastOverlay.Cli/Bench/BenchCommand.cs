using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using FastOverlay.Bench;

namespace FastOverlay.Cli.Bench;

/// <summary>
/// `fastoverlay bench`: each full path for a few seconds on in-memory rings, one thread, printing Mpps, ns per
/// packet and bytes allocated per packet. The quick figure for people who do not want to wait for
/// BenchmarkDotNet; the suite in perf/ is the careful one.
/// </summary>
internal static class BenchCommand
{
    public sealed record Result(string Path, int PacketSize, int Burst, int Routes, long Packets, double Seconds, double Mpps, double NsPerPacket, double AllocatedBytesPerPacket);

    public static Command Create(TextWriter output)
    {
        var seconds = new Option<double>("--seconds") { Description = "Measured time per path", DefaultValueFactory = _ => 2.0 };
        var burst = new Option<int>("--burst") { Description = "Packets per burst", DefaultValueFactory = _ => 256 };
        var size = new Option<int>("--size") { Description = "Frame size in bytes (without FCS)", DefaultValueFactory = _ => 64 };
        var routes = new Option<int>("--routes") { Description = "Extra routes in the table (lookups must stay flat)", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print one JSON document instead of a table" };
        var paths = new Option<BenchPath[]>("--path") { Description = "Paths to run (default: all)", AllowMultipleArgumentsPerToken = true };
        var packets = new Option<long>("--packets") { Description = "Run a fixed number of packets per path instead of --seconds (for instruction counts with perf stat)" };
        var command = new Command("bench", "Run each full forwarding path on in-memory rings and print Mpps, ns per packet and bytes allocated per packet")
        {
            seconds, burst, size, routes, json, paths, packets,
        };
        command.SetAction(result =>
        {
            var selected = result.GetValue(paths) is { Length: > 0 } p ? p : Enum.GetValues<BenchPath>();
            var results = selected.Select(path => Measure(path, result.GetValue(burst), result.GetValue(size), result.GetValue(routes), TimeSpan.FromSeconds(result.GetValue(seconds)), result.GetValue(packets))).ToList();
            if (result.GetValue(json)) WriteJson(output, results);
            else WriteTable(output, results);
            return 0;
        });
        return command;
    }

    public static Result Measure(BenchPath path, int burst, int size, int routes, TimeSpan duration, long fixedPackets = 0)
    {
        var bench = new PathBench(path, burst, size, routes);
        // Warm-up until tiered compilation has produced optimized code for the loop (with --packets, as many
        // packets as will be measured, at least 1M and at most 2M, so a fixed-work run stays deterministic and a loaded
        // machine still reaches tier-1 code before the measured run).
        if (fixedPackets > 0) bench.Run(Math.Clamp(fixedPackets, 1_000_000, 2_000_000));
        else
        {
            var warmUntil = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 2;
            while (Stopwatch.GetTimestamp() < warmUntil) bench.RunBurst();
        }

        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var start = Stopwatch.GetTimestamp();
        var deadline = start + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        long packets = 0;
        var rounds = 0;
        if (fixedPackets > 0) packets = bench.Run(fixedPackets);
        else
        {
            while (true)
            {
                packets += bench.RunBurst();
                if ((++rounds & 15) == 0 && Stopwatch.GetTimestamp() >= deadline) break;
            }
        }
        var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        if (bench.Node.Counters.TotalDrops != 0) throw new InvalidOperationException($"bench path {path} dropped packets: the fixture is wrong");
        return new Result(path.ToString(), size, burst, bench.RouteCount, packets, elapsed, packets / elapsed / 1e6, elapsed * 1e9 / packets, (double)allocated / packets);
    }

    private static void WriteTable(TextWriter output, List<Result> results)
    {
        output.WriteLine($"{Machine()}");
        output.WriteLine($"{"path",-18} {"size",6} {"burst",6} {"routes",8} {"Mpps",8} {"ns/pkt",8} {"B/pkt",6}");
        foreach (var r in results)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.Path,-18} {r.PacketSize,6} {r.Burst,6} {r.Routes,8} {r.Mpps,8:0.00} {r.NsPerPacket,8:0.0} {r.AllocatedBytesPerPacket,6:0.##}"));
    }

    private static void WriteJson(TextWriter output, List<Result> results)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("machine", Machine());
            w.WriteString("date", DateTimeOffset.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            w.WriteStartArray("results");
            foreach (var r in results)
            {
                w.WriteStartObject();
                w.WriteString("path", r.Path);
                w.WriteNumber("packetSize", r.PacketSize);
                w.WriteNumber("burst", r.Burst);
                w.WriteNumber("routes", r.Routes);
                w.WriteNumber("packets", r.Packets);
                w.WriteNumber("seconds", Math.Round(r.Seconds, 3));
                w.WriteNumber("mpps", Math.Round(r.Mpps, 3));
                w.WriteNumber("nsPerPacket", Math.Round(r.NsPerPacket, 2));
                w.WriteNumber("allocatedBytesPerPacket", Math.Round(r.AllocatedBytesPerPacket, 4));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }

    private static string Machine() =>
        $"{Environment.ProcessorCount} cores, {RuntimeInformation.ProcessArchitecture}, {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, AVX2 {System.Runtime.Intrinsics.X86.Avx2.IsSupported}, AVX-512 {System.Runtime.Intrinsics.X86.Avx512F.IsSupported}";
}
