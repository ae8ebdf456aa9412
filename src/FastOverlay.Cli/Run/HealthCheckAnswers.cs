using System.Globalization;
using System.Text;
using System.Text.Json;

namespace FastOverlay.Cli.Run;

/// <summary>
/// kube-proxy's health answers, byte for byte where a load balancer might look (pkg/proxy/healthcheck:
/// service_health.go and proxy_health.go): the same status codes, headers and JSON, so cloud load balancers
/// configured for kube-proxy judge this node the same way. Also the minimal HTTP/1.1 framing around them:
/// one request per connection, answered and closed.
/// </summary>
internal static class HealthCheckAnswers
{
    /// <summary>What a service health check port answers, whatever the path: 200 with local endpoints, 503 without.</summary>
    public static byte[] Service(string method, string serviceNamespace, string name, int localEndpoints, DateTimeOffset now)
    {
        // service_health.go writes this with tabs (a dedented Go template), not compact JSON.
        var body = $"{{\n\t\"service\": {{\n\t\t\"namespace\": {Quote(serviceNamespace)},\n\t\t\"name\": {Quote(name)}\n\t}},\n" +
                   $"\t\"localEndpoints\": {localEndpoints.ToString(CultureInfo.InvariantCulture)},\n\t\"serviceProxyHealthy\": true\n}}";
        return Response(method, localEndpoints > 0 ? 200 : 503, "application/json", body, now,
            ("X-Load-Balancing-Endpoint-Weight", localEndpoints.ToString(CultureInfo.InvariantCulture)));
    }

    /// <summary>
    /// The node's proxy health port: /healthz and /livez as proxy_health.go answers them while healthy (the last
    /// update is reported as now, for compatibility, and per IP family as the last real one); anything else is
    /// Go's ServeMux 404.
    /// </summary>
    public static byte[] Proxy(string method, string path, DateTimeOffset? lastUpdated, DateTimeOffset now)
    {
        var query = path.IndexOf('?', StringComparison.Ordinal);
        if (query >= 0) path = path[..query];
        if (path is not ("/healthz" or "/livez"))
            return Response(method, 404, "text/plain; charset=utf-8", "404 page not found\n", now);
        var json = new StringBuilder();
        json.Append(CultureInfo.InvariantCulture, $"{{\"lastUpdated\":\"{GoTime(now)}\",\"currentTime\":\"{GoTime(now)}\",");
        if (path == "/healthz") json.Append("\"nodeEligible\":true,");
        json.Append("\"healthy\":true");
        if (lastUpdated is { } last) json.Append(CultureInfo.InvariantCulture, $",\"status\":{{\"IPv4\":{{\"lastUpdated\":\"{GoTime(last)}\",\"healthy\":true}}}}");
        json.Append('}');
        return Response(method, 200, "application/json", json.ToString(), now);
    }

    /// <summary>For a request head that is not HTTP: Go's server answers 400 and closes.</summary>
    public static byte[] BadRequest(DateTimeOffset now) => Response("GET", 400, "text/plain; charset=utf-8", "400 Bad Request", now);

    /// <summary>
    /// Parses "METHOD SP TARGET SP HTTP/1.x" from a complete request head. False for anything else, including
    /// HTTP/2 prefaces and bytes outside printable ASCII.
    /// </summary>
    public static bool TryParseRequestLine(ReadOnlySpan<byte> head, out string method, out string target)
    {
        method = target = "";
        var end = head.IndexOf((byte)'\n');
        if (end < 0) return false;
        var line = head[..end];
        if (line.Length > 0 && line[^1] == '\r') line = line[..^1];
        foreach (var b in line)
        {
            if (b < 0x20 || b > 0x7E) return false;
        }
        var text = Encoding.ASCII.GetString(line);
        var parts = text.Split(' ');
        if (parts.Length != 3 || parts[0].Length == 0 || !parts[1].StartsWith('/') || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal)) return false;
        method = parts[0];
        target = parts[1];
        return true;
    }

    private static byte[] Response(string method, int status, string contentType, string body, DateTimeOffset now, params (string Name, string Value)[] extra)
    {
        var payload = Encoding.UTF8.GetBytes(body);
        var head = new StringBuilder();
        head.Append(CultureInfo.InvariantCulture, $"HTTP/1.1 {status} {Reason(status)}\r\n");
        head.Append(CultureInfo.InvariantCulture, $"Content-Type: {contentType}\r\n");
        head.Append("X-Content-Type-Options: nosniff\r\n");
        foreach (var (name, value) in extra) head.Append(CultureInfo.InvariantCulture, $"{name}: {value}\r\n");
        head.Append(CultureInfo.InvariantCulture, $"Date: {now.UtcDateTime.ToString("r", CultureInfo.InvariantCulture)}\r\n");
        head.Append(CultureInfo.InvariantCulture, $"Content-Length: {payload.Length}\r\n");
        head.Append("Connection: close\r\n\r\n");
        var bytes = Encoding.ASCII.GetBytes(head.ToString());
        // HEAD gets the headers a GET would, without the body (RFC 9110 s9.3.2).
        return method == "HEAD" ? bytes : [.. bytes, .. payload];
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Status",
    };

    private static string Quote(string value) => JsonSerializer.Serialize(value);

    /// <summary>Go's time.Time in JSON: RFC 3339 with up to nanoseconds, trailing zeros dropped, Z for UTC.</summary>
    internal static string GoTime(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);
}
