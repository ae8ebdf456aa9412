using System.Globalization;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// One attempt of svc_tool.py, one line of its output: "NAME ip:port [...]" when a server answered, else REFUSED,
/// TIMEOUT, "ERROR errno" or "MISMATCH ...". With --stamp the line starts with the send time (Unix seconds).
/// </summary>
internal readonly record struct SvcAnswer(string Line, double SentAt)
{
    private static readonly string[] Failures = ["REFUSED", "TIMEOUT", "ERROR", "MISMATCH"];

    public static SvcAnswer Parse(string line, bool stamped)
    {
        if (!stamped) return new SvcAnswer(line.Trim(), 0);
        var space = line.IndexOf(' ', StringComparison.Ordinal);
        return new SvcAnswer(line[(space + 1)..].Trim(), double.Parse(line[..space], CultureInfo.InvariantCulture));
    }

    private string[] Words => Line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
    /// <summary>OK when a server answered, else the failure's word.</summary>
    public string Outcome => Words is [var first, ..] && Failures.Contains(first) ? first : Words.Length >= 2 ? "OK" : "EMPTY";
    public bool Ok => Outcome == "OK";
    /// <summary>The pod that answered (the servers are named after their pods).</summary>
    public string? Backend => Ok ? Words[0] : null;
    /// <summary>The client address as the server saw it (null for an answer that carries none, as an HTTP status).</summary>
    public string? SeenIp => Seen is { } seen ? seen[..seen.LastIndexOf(':')] : null;
    public int? SeenPort => Seen is { } seen ? int.Parse(seen[(seen.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture) : null;
    private string? Seen => Ok && Words[1].Contains(':', StringComparison.Ordinal) ? Words[1] : null;
    public DateTime SentUtc => DateTime.UnixEpoch.AddSeconds(SentAt);
    public override string ToString() => SentAt > 0 ? $"{SentUtc:HH:mm:ss.fff} {Line}" : Line;
}

internal sealed record SvcRun(CmdResult Result, IReadOnlyList<SvcAnswer> Answers)
{
    public IReadOnlyDictionary<string, int> ByBackend =>
        Answers.Where(a => a.Ok).GroupBy(a => a.Backend!).ToDictionary(g => g.Key, g => g.Count());
    public bool AllOk => Answers.Count > 0 && Answers.All(a => a.Ok);
    public override string ToString() => $"{Result.CommandLine} (exit {Result.ExitCode}): " +
        (Answers.Count > 0 ? string.Join(" | ", Answers) : Result.Output.Trim());
}

/// <summary>Clients of the Services lab: svc_tool.py in a namespace, each attempt parsed.</summary>
internal static class ServiceTraffic
{
    /// <summary>count TCP connections one after another from a namespace, each greeted and echoing one line.</summary>
    // 8 s lets a connection through three SYNs (0, 1 and 3 s): one CI run on a machine at load ~8 saw one of 20
    // connections time out at 3 s (two SYNs) and pass in three quiet reruns. A translation that is wrong stays wrong
    // on every retransmission, so the longer wait does not hide one; tests that expect a drop pass their own timeout.
    public static SvcRun SvcTcp(this LabRun lab, string from, string host, int port, int count = 1, double timeout = 8) =>
        Run(lab, from, count * (timeout * 3 + 1), ["tcp", host, Num(port), "--count", Num(count), "--timeout", Num(timeout)]);

    /// <summary>
    /// count datagrams, each from a socket (and source port) of its own, each waiting for its answer; with size, each
    /// datagram is padded to that many bytes and the padding must come back whole.
    /// </summary>
    public static SvcRun SvcUdp(this LabRun lab, string from, string host, int port, int count = 1, double timeout = 3, int size = 0) =>
        Run(lab, from, count * (timeout + 1), ["udp", host, Num(port), "--count", Num(count), "--timeout", Num(timeout), "--size", Num(size)]);

    /// <summary>One HTTP GET: the answer's line is "HTTP status first-line-of-body".</summary>
    public static SvcRun SvcHttp(this LabRun lab, string from, string url, double timeout = 3) =>
        Run(lab, from, timeout + 10, ["http", url, "--timeout", Num(timeout)]);

    /// <summary>
    /// A datagram every interval from one fixed source port on one connected socket, until killed: the 5-tuple a
    /// stale conntrack entry would hold on to. Read its lines with <see cref="Answers"/>.
    /// </summary>
    public static BackgroundProcess SvcUdpLoop(this LabRun lab, string from, string host, int port, int sourcePort, double interval = 0.2, double timeout = 0.5) =>
        lab.Spawn(from, "python3", "-u", ServiceLab.Tool, "udp", host, Num(port), "--count", "0", "--interval", Num(interval),
            "--timeout", Num(timeout), "--sport", Num(sourcePort), "--stamp");

    /// <summary>
    /// Connections until count of them greet with want, then echo rounds on all of them until trigger exists, then
    /// three more rounds; prints "HOLDING ..." once it holds them and "ECHO rounds= ok= failed=" at the end.
    /// </summary>
    public static BackgroundProcess SvcHold(this LabRun lab, string from, string host, int port, string want, int count, string trigger) =>
        lab.Spawn(from, "python3", "-u", ServiceLab.Tool, "hold", host, Num(port), "--want", want, "--count", Num(count), "--trigger", trigger);

    /// <summary>The lines of a stamped client (<see cref="SvcUdpLoop"/>) so far.</summary>
    public static List<SvcAnswer> Answers(BackgroundProcess process) =>
        [.. process.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => char.IsDigit(l[0])).Select(l => SvcAnswer.Parse(l, stamped: true))];

    /// <summary>
    /// iperf3 TCP from a pod to service:servicePort, the server (iperf3 -s -1) listening on targetPort in serverPod.
    /// </summary>
    public static IperfResult IperfToService(this LabRun lab, string client, string serverPod, string service, int servicePort, int targetPort, bool reverse = false, int seconds = 3)
    {
        using var server = lab.Spawn(serverPod, "iperf3", "-s", "-1", "-p", Num(targetPort));
        LabTraffic.WaitListening(lab, serverPod, Num(targetPort));
        var args = new List<string> { "iperf3", "-c", service, "-p", Num(servicePort), "-t", Num(seconds), "-J", "--connect-timeout", "5000" };
        if (reverse) args.Add("-R");
        var r = lab.Exec(client, TimeSpan.FromSeconds(seconds + 30), [.. args]);
        var what = $"iperf3 TCP {(reverse ? $"{serverPod} -> {client}" : $"{client} -> {serverPod}")} through {service}:{servicePort}";
        Assert.True(r.Ok, $"{what} failed: {r}\nserver: {server.Output}");
        var result = LabTraffic.Parse(r.Stdout, udp: false);
        lab.WriteLine($"{what}: {result}");
        return result;
    }

    private static SvcRun Run(LabRun lab, string from, double seconds, string[] args)
    {
        var r = lab.Exec(from, TimeSpan.FromSeconds(seconds + 15), ["python3", ServiceLab.Tool, .. args]);
        var answers = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => SvcAnswer.Parse(l, stamped: false)).ToList();
        var run = new SvcRun(r, answers);
        lab.WriteLine($"{from}: {string.Join(' ', args.TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal)))}: {Summary(run)}");
        return run;
    }

    private static string Summary(SvcRun run)
    {
        var outcomes = run.Answers.GroupBy(a => a.SeenIp is { } seen ? $"{a.Backend} (seen {seen})" : a.Ok ? a.Line : a.Outcome).Select(g => $"{g.Key} x{g.Count()}");
        return run.Answers.Count > 0 ? string.Join(", ", outcomes) : $"no answers: {run.Result}";
    }

    private static string Num(double value) => value.ToString(CultureInfo.InvariantCulture);
}
