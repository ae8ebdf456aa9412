using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace FastOverlay.Cli.Api;

/// <summary>
/// `fastoverlay status | pods | peers | services | trace`: a person at the node asking the running daemon, through its socket.
/// Exit 1 with one plain line when the daemon is not running (or the socket is not ours to use).
/// </summary>
internal static class ClientCommands
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static IEnumerable<Command> Create(TextWriter output, TextWriter error)
    {
        var status = new Command("status", "The running node: its lease or config, peers, pods, features, uptime");
        var json = new Option<bool>("--json") { Description = "Print the API's JSON" };
        status.Options.Add(json);
        Wire(status, output, error, (client, r) =>
        {
            var body = client.Get("v1/status");
            if (r.GetValue(json)) output.WriteLine(JsonSerializer.Serialize(body, Indented));
            else TablePrinter.Status(body, output);
        });

        var pods = new Command("pods", "The node's pods: host interface, IP, MAC, where they came from, port offloads");
        Wire(pods, output, error, (client, _) => TablePrinter.Pods(client.Get("v1/pods").GetProperty("pods"), output));

        var peers = new Command("peers", "The other nodes this node sends VXLAN to");
        Wire(peers, output, error, (client, _) => TablePrinter.Peers(client.Get("v1/status").GetProperty("peers"), output));

        var services = new Command("services", "The Services this node load-balances: addresses, endpoints, flows");
        var servicesJson = new Option<bool>("--json") { Description = "Print the API's JSON" };
        services.Options.Add(servicesJson);
        Wire(services, output, error, (client, r) =>
        {
            var body = client.Get("v1/services");
            if (r.GetValue(servicesJson)) output.WriteLine(JsonSerializer.Serialize(body, Indented));
            else TablePrinter.Services(body, output);
        });

        var trace = new Command("trace", "Trace the next packets through the running node's pipeline, hop by hop");
        var count = new Option<int>("--count") { Description = "How many packets", DefaultValueFactory = _ => 10 };
        var wait = new Option<double>("--timeout") { Description = "Seconds to wait for them", DefaultValueFactory = _ => 10 };
        trace.Options.Add(count);
        trace.Options.Add(wait);
        var traceJson = new Option<bool>("--json") { Description = "Print the API's JSON" };
        trace.Options.Add(traceJson);
        Wire(trace, output, error, (client, r) =>
        {
            var body = client.Get(string.Create(CultureInfo.InvariantCulture, $"v1/trace?count={r.GetValue(count)}&timeout={r.GetValue(wait)}"));
            if (r.GetValue(traceJson)) output.WriteLine(JsonSerializer.Serialize(body, Indented));
            else TablePrinter.Trace(body, output);
        }, timeout: r => TimeSpan.FromSeconds(r.GetValue(wait) + 10));
        return [status, pods, peers, services, trace];
    }

    public static Option<string> SocketOption() => new("--api-socket")
    {
        Description = "The node API's Unix socket",
        DefaultValueFactory = _ => NodeApiHost.DefaultSocket,
    };

    private static void Wire(Command command, TextWriter output, TextWriter error, Action<ApiClient, ParseResult> run, Func<ParseResult, TimeSpan>? timeout = null)
    {
        var socket = SocketOption();
        command.Options.Add(socket);
        command.SetAction(r =>
        {
            using var client = new ApiClient(r.GetValue(socket)!, timeout?.Invoke(r));
            try
            {
                run(client, r);
                output.Flush();
                return 0;
            }
            catch (ApiUnavailableException e)
            {
                error.WriteLine($"fastoverlay: {e.Message}");
                return 1;
            }
            catch (InvalidOperationException e)
            {
                error.WriteLine($"fastoverlay: {e.Message}");
                return 1;
            }
        });
    }
}
