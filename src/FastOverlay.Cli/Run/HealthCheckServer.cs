using System.Net;
using System.Net.Sockets;
using FastOverlay.Config;
using FastOverlay.Wire;

namespace FastOverlay.Cli.Run;

/// <summary>
/// The health checks kube-proxy serves and cloud load balancers probe, on the node's public IP, served by the
/// kernel's TCP stack (the external guard never drops these ports):
///  - for each Service with externalTrafficPolicy Local and a healthCheckNodePort, that port answers 200 while
///    this node has ready endpoints of the Service (so the load balancer sends it traffic) and 503 while it has
///    none (kubernetes.io virtual-ips "External traffic policy"; counting as kube-proxy's LocalReadyEndpoints:
///    distinct ready local addresses; terminating ones do not count, so a draining node fails the check);
///  - the proxy health port (--healthz-port, 10256) answers /healthz and /livez.
///
/// <see cref="Reconcile"/> opens and closes listeners to match the Services, like kube-proxy's SyncServices: a
/// port that cannot be opened is logged and tried again at the next call. Every listener accepts on its own
/// loop and every connection is served on its own, with one deadline for the whole exchange and a bound on
/// open connections, so garbage, slow or many clients on one port never hold up another.
/// </summary>
internal sealed class HealthCheckServer : IDisposable
{
    public const int DefaultHealthzPort = 10256;
    private const int MaxConnections = 512;
    private const int MaxHeadBytes = 8192;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    private readonly IPAddress _address;
    private readonly TextWriter _log;
    private readonly TimeProvider _time;
    private readonly object _gate = new();
    private readonly Dictionary<string, Listener> _services = new(StringComparer.Ordinal);
    private Listener? _healthz;
    private int _connections;
    private long _lastUpdatedTicks;
    private bool _disposed;

    private HealthCheckServer(IPAddress address, TextWriter log, TimeProvider time)
    {
        _address = address;
        _log = log;
        _time = time;
    }

    /// <summary>Starts the proxy health port (unless <paramref name="healthzPort"/> is 0); Services come with <see cref="Reconcile"/>.</summary>
    public static HealthCheckServer Start(Ipv4Address address, int healthzPort, TextWriter log, TimeProvider? time = null)
    {
        var server = new HealthCheckServer(IPAddress.Parse(address.ToString()), log, time ?? TimeProvider.System);
        if (healthzPort != 0) server._healthz = server.Open("proxy health", healthzPort, (_, method, path) => server.ProxyAnswer(method, path));
        return server;
    }

    /// <summary>Where /healthz is served, or null (off, or the port could not be opened).</summary>
    public IPEndPoint? HealthzEndpoint => _healthz?.Endpoint;

    /// <summary>The health check ports open now, by Service (namespace/name).</summary>
    public IReadOnlyDictionary<string, int> ServicePorts
    {
        get { lock (_gate) return _services.ToDictionary(e => e.Key, e => e.Value.Endpoint.Port, StringComparer.Ordinal); }
    }

    /// <summary>
    /// Makes the open health check ports and their answers match <paramref name="services"/> (any thread). A local
    /// endpoint is one on <paramref name="nodeName"/>, or without a node name, one inside <paramref name="nodeSubnet"/>.
    /// After <see cref="Dispose"/> it does nothing: a lease lost during shutdown may still call it.
    /// </summary>
    public void Reconcile(IReadOnlyList<ServiceConfig> services, string nodeName, Ipv4Prefix nodeSubnet)
    {
        var wanted = new Dictionary<string, (ServiceConfig Service, ushort Port)>(StringComparer.Ordinal);
        foreach (var s in services)
        {
            if (s.ExternalTrafficPolicy == TrafficPolicy.Local && s.HealthCheckNodePort is { } port && port != 0 && s.Type != ServiceType.ExternalName)
                wanted[s.Key] = (s, port);
        }
        lock (_gate)
        {
            if (_disposed) return;
            Interlocked.Exchange(ref _lastUpdatedTicks, _time.GetUtcNow().UtcTicks);
            foreach (var (key, listener) in _services.ToList())
            {
                if (wanted.TryGetValue(key, out var w) && w.Port == listener.Endpoint.Port) continue;
                listener.Close();
                _services.Remove(key);
            }
            foreach (var (key, (service, port)) in wanted)
            {
                var local = LocalReadyEndpoints(service, nodeName, nodeSubnet);
                if (_services.TryGetValue(key, out var open))
                {
                    open.LocalEndpoints = local;
                    continue;
                }
                // Any path: kube-proxy's service handler does not look at it.
                var listener = Open($"health check of {key}", port,
                    (l, method, _) => HealthCheckAnswers.Service(method, service.Namespace, service.Name, l.LocalEndpoints, _time.GetUtcNow()), local);
                if (listener is not null) _services[key] = listener;
            }
        }
    }

    /// <summary>kube-proxy's LocalReadyEndpoints: distinct addresses, ready, on this node.</summary>
    internal static int LocalReadyEndpoints(ServiceConfig service, string nodeName, Ipv4Prefix nodeSubnet) =>
        service.Endpoints.Where(e => e.Ready && (e.Node is { } node ? node == nodeName : nodeSubnet.Contains(e.Ip.Value))).Select(e => e.Ip).Distinct().Count();

    private byte[] ProxyAnswer(string method, string path)
    {
        var ticks = Interlocked.Read(ref _lastUpdatedTicks);
        return HealthCheckAnswers.Proxy(method, path, ticks == 0 ? null : new DateTimeOffset(ticks, TimeSpan.Zero), _time.GetUtcNow());
    }

    private Listener? Open(string what, int port, Func<Listener, string, string, byte[]> answer, int localEndpoints = 0)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // As Go's net.Listen: a restarted node rebinds at once despite connections in TIME_WAIT.
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(_address, port));
            socket.Listen(128);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            _log.WriteLine($"fastoverlay: cannot serve the {what} on {_address}:{port}: {e.Message}; trying again at the next change");
            return null;
        }
        var listener = new Listener(socket, answer) { LocalEndpoints = localEndpoints };
        _ = Task.Run(() => AcceptLoop(listener));
        return listener;
    }

    private async Task AcceptLoop(Listener listener)
    {
        var token = listener.Cancel.Token;
        while (!token.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.Socket.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || token.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                // Out of descriptors, or a connection reset before accept: wait a little rather than spin.
                await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            if (Interlocked.Increment(ref _connections) > MaxConnections)
            {
                Interlocked.Decrement(ref _connections);
                client.Dispose();
                continue;
            }
            _ = Serve(client, listener);
        }
    }

    /// <summary>Reads one request head, answers, closes: all within <see cref="Deadline"/>, whatever the client does.</summary>
    private async Task Serve(Socket client, Listener listener)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(listener.Cancel.Token);
        deadline.CancelAfter(Deadline);
        var buffer = new byte[MaxHeadBytes];
        try
        {
            var length = 0;
            var end = -1;
            while (end < 0 && length < buffer.Length)
            {
                var n = await client.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, deadline.Token).ConfigureAwait(false);
                if (n == 0) return;
                length += n;
                end = HeadEnd(buffer.AsSpan(0, length));
            }
            var now = _time.GetUtcNow();
            var answer = end < 0 ? HealthCheckAnswers.BadRequest(now)
                : HealthCheckAnswers.TryParseRequestLine(buffer.AsSpan(0, end), out var method, out var target) ? listener.Answer(listener, method, target)
                : HealthCheckAnswers.BadRequest(now);
            await client.SendAsync(answer, SocketFlags.None, deadline.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // A slow, vanished or resetting client: nothing to answer.
        }
        finally
        {
            client.Dispose();
            Interlocked.Decrement(ref _connections);
        }
    }

    /// <summary>Where the request head ends (after CRLF CRLF, or a bare LF LF, which Go accepts too), or -1.</summary>
    private static int HeadEnd(ReadOnlySpan<byte> data)
    {
        var crlf = data.IndexOf("\r\n\r\n"u8);
        if (crlf >= 0) return crlf + 4;
        var lf = data.IndexOf("\n\n"u8);
        return lf >= 0 ? lf + 2 : -1;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _healthz?.Close();
            foreach (var listener in _services.Values) listener.Close();
            _services.Clear();
        }
    }

    /// <summary>One listening socket, its answer, and the local endpoint count the answer reads (written by Reconcile).</summary>
    private sealed class Listener(Socket socket, Func<Listener, string, string, byte[]> answer)
    {
        private volatile int _localEndpoints;

        public Socket Socket { get; } = socket;
        // Not linked to anything, so a closed listener leaves no registration behind; nothing to dispose.
        public CancellationTokenSource Cancel { get; } = new();
        public IPEndPoint Endpoint { get; } = (IPEndPoint)socket.LocalEndPoint!;
        public Func<Listener, string, string, byte[]> Answer { get; } = answer;

        public int LocalEndpoints
        {
            get => _localEndpoints;
            set => _localEndpoints = value;
        }

        public void Close()
        {
            Cancel.Cancel();
            Socket.Dispose();
        }
    }
}
