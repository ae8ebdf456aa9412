namespace FastOverlay.Tests.Lab;

/// <summary>Flows across endpoint changes: what kube-proxy's conntrack keeps, and what it must not keep.</summary>
public sealed partial class ServiceLabTests
{
    [SkippableFact]
    public void Fifty_TCP_flows_on_one_backend_survive_the_removal_of_another_and_the_addition_of_a_third_and_new_flows_never_reach_the_removed_one()
    {
        ServiceLab.Require();
        using var lab = LabRun.Up("fastoverlay", output);
        const string Kept = "p21", Removed = "p12", Added = "p22";   // kept across nodes, removed beside the client
        lab.Serve(Kept, Removed, Added);
        const string Pool = "10.96.0.90";
        var port = new[] { ServiceLab.Port("http", "TCP", Http, ServiceLab.ServerTcpPort) };
        lab.ApplyServices(new { Name = "pool", ClusterIP = Pool, Ports = port, Endpoints = ServiceLab.Endpoints(Kept, Removed) });

        // p11 connects until 50 connections landed on the kept backend (closing those on the other), then echoes a
        // line on every one of them, round after round, while the Endpoints change twice.
        var trigger = Path.Combine(lab.StateDir, "hold-done");
        using var hold = lab.SvcHold("p11", Pool, Http, want: Kept, count: 50, trigger);
        Assert.True(hold.WaitForOutput("HOLDING 50", TimeSpan.FromSeconds(120)), $"p11 did not get 50 connections on {Kept}: {hold.Output}");
        var holding = hold.Output.Split('\n').First(l => l.StartsWith("HOLDING", StringComparison.Ordinal));
        output.WriteLine(holding);
        Assert.Contains($"{Removed}:", holding, StringComparison.Ordinal);   // the other backend did take connections

        // Removed: new connections all go to the one left, although the removed pod still listens.
        lab.ApplyServices(new { Name = "pool", ClusterIP = Pool, Ports = port, Endpoints = ServiceLab.Endpoints(Kept) });
        AssertSpread(lab.SvcTcp("p11", Pool, Http, count: 10), "p11", Kept);
        AssertSpread(lab.SvcTcp("p22", Pool, Http, count: 5), "p22", Kept);
        // Added: Maglev now gives about half of all flows to the new backend. The held ones must stay where their
        // connection is (re-chosen, they would meet a RST there); new ones spread over both, never to the removed.
        lab.ApplyServices(new { Name = "pool", ClusterIP = Pool, Ports = port, Endpoints = ServiceLab.Endpoints(Kept, Added) });
        AssertSpread(lab.SvcTcp("p11", Pool, Http, count: 20), "p11", Kept, Added);
        Thread.Sleep(500);   // more echo rounds with the last table in force on both nodes

        File.WriteAllText(trigger, "");
        Assert.True(hold.Process.WaitForExit(TimeSpan.FromSeconds(60)), $"the echo rounds did not finish: {hold.Output}");
        hold.Process.WaitForExit();
        output.WriteLine(hold.Output.Split('\n').Last(l => l.StartsWith("ECHO", StringComparison.Ordinal)));
        Assert.True(hold.Process.ExitCode == 0, $"held connections failed to echo across the endpoint changes (exit {hold.Process.ExitCode}):\n{hold.Output}");
        Assert.Matches(@"ECHO rounds=\d+ ok=\d+ failed=0", hold.Output);
    }

    [SkippableFact]
    public void UDP_from_a_fixed_source_port_follows_endpoints_from_one_to_none_to_another_and_never_reaches_the_deleted_one()
    {
        ServiceLab.Require();
        using var lab = LabRun.Up("fastoverlay", output);
        const string First = "p21", Second = "p12";   // the first across nodes, the second beside the client
        lab.Serve(First, Second);   // the deleted one keeps listening: a stale flow to it would be answered
        const string Fixed = "10.96.0.80";
        const int SourcePort = 40053;
        var port = new[] { ServiceLab.Port("dns", "UDP", Dns, ServiceLab.ServerUdpPort) };
        lab.ApplyServices(new { Name = "fixed", ClusterIP = Fixed, Ports = port, Endpoints = ServiceLab.Endpoints(First) });

        // kube-proxy's stale-conntrack bug class (kubernetes#48370, #105657, #139628; e2e conntrack.go): one client
        // 5-tuple, reused every 200 ms, across the endpoint changes 1 -> 0 -> 1.
        using var client = lab.SvcUdpLoop("p11", Fixed, Dns, SourcePort);
        LabScenarios.Eventually(() => ServiceTraffic.Answers(client).Count(a => a.Backend == First) >= 5, TimeSpan.FromSeconds(20),
            () => $"the fixed-port client got no answers from {First}: {client.Output}");

        var emptyApplied = lab.ApplyServices(new { Name = "fixed", ClusterIP = Fixed, Ports = port, Endpoints = Array.Empty<object>() });
        Thread.Sleep(2000);
        var secondWritten = DateTime.UtcNow;
        lab.ApplyServices(new { Name = "fixed", ClusterIP = Fixed, Ports = port, Endpoints = ServiceLab.Endpoints(Second) });
        LabScenarios.Eventually(() => ServiceTraffic.Answers(client).Count(a => a.Backend == Second && a.SentUtc > secondWritten) >= 10, TimeSpan.FromSeconds(15),
            () => $"the fixed-port client did not reach {Second} after it became the endpoint: {Tail(client)}");
        client.Interrupt(TimeSpan.FromSeconds(3));
        var answers = ServiceTraffic.Answers(client);
        output.WriteLine(string.Join('\n', answers.Where(a => a.SentUtc > emptyApplied.AddSeconds(-3))));

        // Sent once no node had the deleted endpoint: never answered by it.
        var stale = answers.Where(a => a.SentUtc > emptyApplied && a.Backend == First).ToList();
        Assert.True(stale.Count == 0, $"{stale.Count} datagrams sent after {First} left the Endpoints were still answered by it: {string.Join(" | ", stale)}");
        // Without endpoints: refused (ICMP port unreachable on the connected socket), nothing answered.
        var empty = answers.Where(a => a.SentUtc > emptyApplied && a.SentUtc < secondWritten).ToList();
        Assert.True(empty.Count >= 5 && empty.All(a => !a.Ok) && empty.Any(a => a.Outcome == "REFUSED"), $"without endpoints: {string.Join(" | ", empty)}");
        // The new endpoint within a few seconds of the change (the reload takes ~1.5 s), and then every answer from it.
        var firstNew = answers.First(a => a.Backend == Second);
        Assert.True(firstNew.SentUtc - secondWritten < TimeSpan.FromSeconds(4),
            $"the first answer from {Second} came {(firstNew.SentUtc - secondWritten).TotalSeconds:F1} s after the change");
        var later = answers.Where(a => a.SentUtc > firstNew.SentUtc).ToList();
        Assert.True(later.Count >= 9 && later.All(a => a.Backend == Second), $"after {Second}'s first answer: {string.Join(" | ", later)}");
        Assert.All(answers.Where(a => a.Ok), a => Assert.Equal($"{LabRun.PodIp("p11")}:{SourcePort}", $"{a.SeenIp}:{a.SeenPort}"));
    }

    private static string Tail(BackgroundProcess p)
    {
        var text = p.Output;
        return text.Length <= 3000 ? text : "..." + text[^3000..];
    }
}
