using FastOverlay.Cli.Trace;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace FastOverlay.Cli.Api;

/// <summary>
/// The node API's resources (JSON over HTTP on the Unix socket):
/// <code>
/// GET    /v1/status                    node, source, lease, peers, pods, features, workers, uptime
/// GET    /v1/counters                  node counters, drops by reason, ARP entries, per-port packets and bytes
/// GET    /v1/pods                      the pods (file and API)
/// GET    /v1/services                  the Services' ports, endpoints and counters; the connection table's fill
/// PUT    /v1/pods/{interface}          {"ip":"10.244.1.5","mac":"..","containerId":".."}: add (idempotent)
/// DELETE /v1/pods/{interface}          remove (idempotent)
/// GET    /v1/trace?count=N&amp;timeout=S   the next N packets through the pipeline, hop by hop
/// </code>
/// Errors are {"error": "..."} with 400 (bad request), 409 (conflict), 503 (not forwarding yet: try again).
/// </summary>
internal static class NodeApiRoutes
{
    public sealed record PodRequest(string? Ip, string? Mac, string? ContainerId);

    public static void Map(WebApplication app, NodeApi api)
    {
        app.MapGet("/v1/status", () => Results.Json(StatusReport.Status(api)));
        app.MapGet("/v1/counters", () => Results.Json(StatusReport.Counters(api)));
        app.MapGet("/v1/pods", () => Results.Json(new { pods = StatusReport.Pods(api) }));
        app.MapGet("/v1/services", () => Results.Json(ServiceReport.Services(api)));
        app.MapPut("/v1/pods/{name}", (string name, PodRequest body) => Change(() =>
        {
            var added = api.Pods.Add(new ApiPod(name, body.Ip ?? "", body.Mac, body.ContainerId), api.Controller);
            return Results.Json(new { @interface = name, added }, statusCode: added ? 201 : 200);
        }));
        app.MapDelete("/v1/pods/{name}", (string name) => Change(() => Results.Json(new { @interface = name, removed = api.Pods.Remove(name, api.Controller) })));
        app.MapGet("/v1/trace", async (int? count, double? timeout) =>
        {
            if (api.Controller is not { } controller) return Error(503, "the node is not forwarding yet");
            var n = Math.Clamp(count ?? 10, 1, 1000);
            try
            {
                var trace = await controller.TraceAsync(n, TimeSpan.FromSeconds(Math.Clamp(timeout ?? 10, 0.1, 300))).ConfigureAwait(false);
                var packets = TraceReport.Packets(trace);
                return Results.Json(new
                {
                    requested = n,
                    timedOut = trace.TimedOut,
                    packets = packets.Select(p => new { number = p.Number, hops = p.Hops.Select(h => new { node = h.Node, text = h.Text }) }),
                });
            }
            catch (InvalidOperationException e)
            {
                return Error(409, e.Message);
            }
            catch (TimeoutException)
            {
                return Error(503, "the forwarder did not take the trace (is it running?)");
            }
        });
    }

    private static IResult Change(Func<IResult> change)
    {
        try
        {
            return change();
        }
        catch (PodChangeException e)
        {
            return Error(e.Status, e.Message);
        }
    }

    private static IResult Error(int status, string message) => Results.Json(new { error = message }, statusCode: status);
}
