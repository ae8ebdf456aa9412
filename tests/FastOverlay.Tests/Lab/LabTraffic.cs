using System.Globalization;
using System.Text.Json;

namespace FastOverlay.Tests.Lab;

internal readonly record struct IperfResult(bool Udp, double BitsPerSecond, long Packets, long LostPackets, double LostPercent, string Json)
{
    public override string ToString() => Udp
        ? $"UDP {BitsPerSecond / 1e6:F1} Mbit/s, {Packets} packets, {LostPackets} lost ({LostPercent:F2} %)"
        : $"TCP {BitsPerSecond / 1e6:F1} Mbit/s";
}

/// <summary>Traffic between the lab's pods: ping and iperf3, always with deadlines.</summary>
internal static class LabTraffic
{
    private static int s_nextPort = 5201;

    /// <summary>
    /// ping -c count from a pod to a pod (p21) or an address: succeeds only when all replies came back within the
    /// deadline. With -w, ping also stops at the first ICMP error.
    /// </summary>
    public static CmdResult Ping(this LabRun lab, string from, string to, int count = 3, int deadlineSeconds = 10) =>
        lab.Exec(from, TimeSpan.FromSeconds(deadlineSeconds + 10), "ping", "-q", "-n", "-c", count.ToString(CultureInfo.InvariantCulture), "-i", "0.2",
            "-w", deadlineSeconds.ToString(CultureInfo.InvariantCulture), Address(to));

    /// <summary>A pod name (p11 ... p22) as its address; anything else is taken as an address already.</summary>
    public static string Address(string podOrAddress) =>
        podOrAddress is ['p', >= '1' and <= '2', >= '1' and <= '2'] ? LabRun.PodIp(podOrAddress) : podOrAddress;

    public static void AssertPing(this LabRun lab, string from, string to)
    {
        var r = lab.Ping(from, to);
        Assert.True(r.Ok, $"ping {from} -> {to} ({LabRun.PodIp(to)}) failed in {lab.Mode} mode: {r}");
        lab.WriteLine($"ping {from} -> {to}: ok");
    }

    /// <summary>
    /// One iperf3 test from client to server (or server to client with reverse): UDP at a fixed rate, or TCP at full
    /// speed. The server takes one test and exits.
    /// </summary>
    public static IperfResult Iperf(this LabRun lab, string client, string server, bool udp, bool reverse = false, int seconds = 2, string bandwidth = "10M")
    {
        var port = Interlocked.Increment(ref s_nextPort).ToString(CultureInfo.InvariantCulture);
        using var srv = lab.Spawn(server, "iperf3", "-s", "-1", "-p", port);
        WaitListening(lab, server, port);
        var args = new List<string> { "iperf3", "-c", LabRun.PodIp(server), "-p", port, "-t", seconds.ToString(CultureInfo.InvariantCulture), "-J", "--connect-timeout", "5000" };
        if (udp) args.AddRange(["-u", "-b", bandwidth, "-l", "1000"]);
        if (reverse) args.Add("-R");
        var r = lab.Exec(client, TimeSpan.FromSeconds(seconds + 30), [.. args]);
        var what = $"iperf3 {(udp ? "UDP" : "TCP")} {(reverse ? server + " -> " + client : client + " -> " + server)} in {lab.Mode} mode";
        Assert.True(r.Ok, $"{what} failed: {r}\nserver: {srv.Output}");
        var result = Parse(r.Stdout, udp);
        lab.WriteLine($"{what}: {result}");
        return result;
    }

    /// <summary>UDP at a modest rate must arrive nearly whole; a userspace forwarder on a shared 2-core machine may lose a little.</summary>
    public static void AssertUdp(this LabRun lab, string client, string server, bool reverse = false)
    {
        // Two seconds: the first datagrams may wait on ARP (three parked per address, like the kernel's unres_qlen).
        var r = lab.Iperf(client, server, udp: true, reverse: reverse, seconds: 2);
        Assert.True(r.Packets > 500, $"UDP {client}/{server}: only {r.Packets} packets counted: {r}");
        Assert.True(r.LostPercent < 5, $"UDP {client}/{server} lost too much: {r}");
    }

    /// <summary>
    /// TCP at full speed must reach a real rate, not merely connect: 100 Mbit/s is far below what any working path
    /// does here (the kernel's and FastOverlay's do gigabits) and far above what a path that drops super-frames or
    /// corrupts checksums gets (0 to a few Mbit/s of retransmissions).
    /// </summary>
    public static void AssertTcp(this LabRun lab, string client, string server, bool reverse = false)
    {
        var r = lab.Iperf(client, server, udp: false, reverse: reverse);
        Assert.True(r.BitsPerSecond >= 100e6, $"TCP {client}/{server} in {lab.Mode} mode (offloads {lab.Offloads}) below 100 Mbit/s: {r.BitsPerSecond / 1e6:F1} Mbit/s");
    }

    /// <summary>A fixed amount of TCP (iperf3 -n), for traffic that a capture decodes whole.</summary>
    public static void TcpBytes(this LabRun lab, string client, string server, string bytes, bool reverse = false)
    {
        var port = Interlocked.Increment(ref s_nextPort).ToString(CultureInfo.InvariantCulture);
        using var srv = lab.Spawn(server, "iperf3", "-s", "-1", "-p", port);
        WaitListening(lab, server, port);
        var args = new List<string> { "iperf3", "-c", LabRun.PodIp(server), "-p", port, "-n", bytes, "--connect-timeout", "5000" };
        if (reverse) args.Add("-R");
        var r = lab.Exec(client, TimeSpan.FromSeconds(30), [.. args]);
        Assert.True(r.Ok, $"iperf3 TCP -n {bytes} {client}/{server} failed: {r}\nserver: {srv.Output}");
    }

    internal static void WaitListening(LabRun lab, string ns, string port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            var ss = lab.Exec(ns, "ss", "-Hltn", $"sport = :{port}");
            if (ss.Ok && ss.Stdout.Contains("LISTEN", StringComparison.Ordinal)) return;
            Thread.Sleep(50);
        }
        Assert.Fail($"iperf3 server in {ns} not listening on {port}");
    }

    internal static IperfResult Parse(string json, bool udp)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        if (root.TryGetProperty("error", out var error)) Assert.Fail($"iperf3: {error.GetString()}");
        var end = root.GetProperty("end");
        if (!udp)
            return new IperfResult(false, end.GetProperty("sum_received").GetProperty("bits_per_second").GetDouble(), 0, 0, 0, json);
        var sum = end.GetProperty("sum");
        return new IperfResult(true, sum.GetProperty("bits_per_second").GetDouble(), sum.GetProperty("packets").GetInt64(),
            sum.GetProperty("lost_packets").GetInt64(), sum.GetProperty("lost_percent").GetDouble(), json);
    }
}
