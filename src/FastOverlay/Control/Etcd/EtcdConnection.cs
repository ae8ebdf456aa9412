using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Etcdserverpb;
using Grpc.Core;
using Grpc.Net.Client;

namespace FastOverlay.Control.Etcd;

/// <summary>
/// gRPC channels to etcd's members, one per endpoint, and the current one. We drive etcd's generated stubs (the
/// Etcdserverpb clients of the dotnet-etcd package) ourselves rather than through its EtcdClient: its watch manager
/// re-creates a cancelled watch from the compact revision on the next stream failure and reports stream failures
/// only on stderr, and its unary retry policy can hold a call for 15 s (shared/research/flannel-etcd.md §5); here
/// every call has a deadline, a failure moves to the next endpoint, and the watch lifecycle is ours.
/// </summary>
internal sealed class EtcdConnection : IDisposable
{
    private readonly EtcdOptions _options;
    private readonly GrpcChannel?[] _channels;
    private readonly object _gate = new();
    private int _current;
    private readonly X509Certificate2? _clientCertificate;
    private readonly X509Certificate2Collection? _roots;
    private string? _token;

    /// <summary>Reads the TLS files at once, so that a wrong path is an error at start, not a silent reconnect loop.</summary>
    public EtcdConnection(EtcdOptions options)
    {
        _options = options;
        _channels = new GrpcChannel?[options.Endpoints.Count];
        if (options.CertFile is { } cert) _clientCertificate = X509Certificate2.CreateFromPemFile(cert, options.KeyFile);
        if (options.CaFile is { } ca)
        {
            _roots = [];
            _roots.ImportFromPemFile(ca);
        }
    }

    public string Endpoint { get { lock (_gate) return _options.Endpoints[_current].ToString(); } }

    public KV.KVClient Kv => new(Channel());
    public Lease.LeaseClient Lease => new(Channel());
    public Watch.WatchClient Watch => new(Channel());

    public CallOptions Unary(CancellationToken cancel) => new(Headers(), DateTime.UtcNow + _options.CallTimeout, cancel);

    /// <summary>flannel watches WithRequireLeader: a member cut off from the leader cancels the watch instead of going silent.</summary>
    public CallOptions Streaming(CancellationToken cancel)
    {
        var headers = Headers();
        headers.Add("hasleader", "true");
        return new CallOptions(headers, cancellationToken: cancel);
    }

    /// <summary>After a failed call: try the next member next time; an auth error drops the token.</summary>
    public void Failed(RpcException e)
    {
        lock (_gate)
        {
            if (e.StatusCode == StatusCode.Unauthenticated || e.Status.Detail.Contains("auth token", StringComparison.Ordinal)) _token = null;
            if (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Internal or StatusCode.Unknown)
                _current = (_current + 1) % _channels.Length;
        }
    }

    private Metadata Headers()
    {
        var headers = new Metadata();
        if (_options.Username is not { } user) return headers;
        string? token;
        lock (_gate) token = _token;
        if (token is null)
        {
            // etcd's simple tokens expire after idle minutes; Failed() drops a rejected one and we log in again.
            var reply = new Auth.AuthClient(Channel()).Authenticate(
                new AuthenticateRequest { Name = user, Password = _options.Password ?? "" },
                deadline: DateTime.UtcNow + _options.CallTimeout);
            token = reply.Token;
            lock (_gate) _token = token;
        }
        headers.Add("token", token);
        return headers;
    }

    private GrpcChannel Channel()
    {
        lock (_gate)
        {
            return _channels[_current] ??= GrpcChannel.ForAddress(_options.Endpoints[_current], new GrpcChannelOptions
            {
                HttpHandler = Handler(),
                DisposeHttpClient = true,
                MaxReceiveMessageSize = 64 * 1024 * 1024,
            });
        }
    }

    private SocketsHttpHandler Handler()
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = _options.CallTimeout,
            // HTTP/2 pings find a member that vanished without closing the connection (dotnet-etcd #264's network cut).
            KeepAlivePingDelay = TimeSpan.FromSeconds(10),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            EnableMultipleHttp2Connections = true,
        };
        if (_clientCertificate is { } cert) handler.SslOptions.ClientCertificates = [cert];
        if (_roots is { } roots)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null) return false;
                if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None) return false;
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(new X509Certificate2(certificate));
            };
        }
        return handler;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            for (var i = 0; i < _channels.Length; i++)
            {
                _channels[i]?.Dispose();
                _channels[i] = null;
            }
        }
    }
}
