using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;

namespace FastOverlay.Cli.Api;

/// <summary>The daemon is not there (no socket, nobody listening) or will not let us in (permissions).</summary>
internal sealed class ApiUnavailableException(string message, bool permission = false) : Exception(message)
{
    public bool Permission { get; } = permission;
}

/// <summary>HTTP over the node API's Unix socket, for the CLI commands and the CNI plugin.</summary>
internal sealed class ApiClient(string socketPath, TimeSpan? timeout = null) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, cancel) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancel).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    {
        BaseAddress = new Uri("http://fastoverlay/"),
        Timeout = timeout ?? TimeSpan.FromSeconds(30),
    };

    public string SocketPath { get; } = socketPath;

    /// <summary>Sends a request; returns the status and the JSON body. Throws <see cref="ApiUnavailableException"/>.</summary>
    public (int Status, JsonElement Body) Send(HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = JsonContent.Create(body);
        try
        {
            using var response = _http.Send(request);
            using var reader = new StreamReader(response.Content.ReadAsStream());
            var text = reader.ReadToEnd();
            var json = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
            return ((int)response.StatusCode, json);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException s)
        {
            throw Unavailable(s);
        }
        catch (SocketException s)
        {
            throw Unavailable(s);
        }
        catch (TaskCanceledException)
        {
            throw new ApiUnavailableException($"fastoverlay did not answer on {SocketPath} within {_http.Timeout.TotalSeconds:0} s");
        }
    }

    public JsonElement Get(string path)
    {
        var (status, body) = Send(HttpMethod.Get, path);
        if (status / 100 != 2) throw new InvalidOperationException(ErrorText(status, body));
        return body;
    }

    public static string ErrorText(int status, JsonElement body) =>
        body.ValueKind == JsonValueKind.Object && body.TryGetProperty("error", out var e) ? e.GetString() ?? $"HTTP {status}" : $"HTTP {status}";

    private ApiUnavailableException Unavailable(SocketException s) => s.SocketErrorCode switch
    {
        SocketError.AccessDenied => new ApiUnavailableException($"permission denied on {SocketPath}: the node API is root's (mode 0600); run this as root", permission: true),
        _ => new ApiUnavailableException($"fastoverlay is not running (nothing answers on {SocketPath}: {s.Message})"),
    };

    public void Dispose() => _http.Dispose();
}
