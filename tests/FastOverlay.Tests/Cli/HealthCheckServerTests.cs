using System.Net;
using System.Net.Sockets;
using System.Text;
using FastOverlay.Cli;
using FastOverlay.Cli.Run;
using FastOverlay.Config;
using FastOverlay.Wire;

namespace FastOverlay.Tests.Cli;

/// <summary>
/// The health check server on loopback, probed with real HTTP: kube-proxy's answers (status, headers, body),
/// listeners following Reconcile, and clients that misbehave. Ports are free ephemeral ones picked per test.
/// </summary>
public sealed class HealthCheckServerTests
{
    private static readonly Ipv4Address Loopback = Ipv4Address.Parse("127.0.0.1");
    private static readonly Ipv4Prefix Subnet = Ipv4Prefix.Parse("10.244.1.0/24");
    private static readonly DateTimeOffset Now = new(2026, 3, 4, 5, 6, 7, 120, TimeSpan.Zero);

    private static ServiceConfig Web(ushort healthPort, params EndpointConfig[] endpoints) => new()
    {
        Name = "web",
        Namespace = "shop",
        Type = ServiceType.LoadBalancer,
        ExternalTrafficPolicy = TrafficPolicy.Local,
        HealthCheckNodePort = healthPort,
        Ports = [new("http", L4Protocol.Tcp, 80, 8080, 30080)],
        Endpoints = endpoints,
    };

    private static readonly EndpointConfig[] Mixed =
    [
        new(Ipv4Address.Parse("10.244.1.5"), "node1"),
        new(Ipv4Address.Parse("10.244.1.5"), "node1"),
        new(Ipv4Address.Parse("10.244.1.6"), null),
        new(Ipv4Address.Parse("10.244.2.7"), "node2"),
        new(Ipv4Address.Parse("10.244.2.8"), null),
        new(Ipv4Address.Parse("10.244.1.9"), "node1", Ready: false, Serving: true, Terminating: true),
    ];

    [Fact]
    public async Task A_Local_service_with_local_ready_endpoints_answers_200_as_kube_proxy_does()
    {
        var port = FreePort();
        using var server = HealthCheckServer.Start(Loopback, 0, TextWriter.Null, new FixedTime());
        server.Reconcile([Web(port, Mixed)], "node1", Subnet);
        using var http = new HttpClient();

        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/any/path?x=1"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.ToString());
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
        // Two distinct ready local addresses: 10.244.1.5 (twice, as with two ports) and 10.244.1.6 (no node name, in the subnet).
        Assert.Equal("2", Assert.Single(response.Headers.GetValues("X-Load-Balancing-Endpoint-Weight")));
        Assert.Equal("{\n\t\"service\": {\n\t\t\"namespace\": \"shop\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 2,\n\t\"serviceProxyHealthy\": true\n}",
            await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Without_local_ready_endpoints_the_answer_is_503_with_the_same_body()
    {
        var port = FreePort();
        using var server = HealthCheckServer.Start(Loopback, 0, TextWriter.Null);
        // Remote, outside the subnet, or only terminating: none counts.
        server.Reconcile([Web(port, Mixed)], "node3", Ipv4Prefix.Parse("10.244.3.0/24"));
        using var http = new HttpClient();

        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("0", Assert.Single(response.Headers.GetValues("X-Load-Balancing-Endpoint-Weight")));
        Assert.Contains("\t\"localEndpoints\": 0,\n", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reconcile_opens_moves_updates_and_closes_health_ports()
    {
        var (first, second, other) = (FreePort(), FreePort(), FreePort());
        using var server = HealthCheckServer.Start(Loopback, 0, TextWriter.Null);
        var cluster = Web(other) with { Name = "cluster-policy", ExternalTrafficPolicy = TrafficPolicy.Cluster };
        server.Reconcile([Web(first), cluster], "node1", Subnet);
        Assert.Equal(new Dictionary<string, int> { ["shop/web"] = first }, server.ServicePorts);
        Assert.Equal(503, await Status(first));
        Assert.False(Connects(other), "a Cluster-policy Service has no health check on this node");

        // New endpoints change the answer on the open port.
        server.Reconcile([Web(first, Mixed)], "node1", Subnet);
        Assert.Equal(200, await Status(first));

        // A new port: the old one closes, the new one answers.
        server.Reconcile([Web(second, Mixed)], "node1", Subnet);
        Assert.False(Connects(first));
        Assert.Equal(200, await Status(second));

        server.Reconcile([], "node1", Subnet);
        Assert.Empty(server.ServicePorts);
        Assert.False(Connects(second));
    }

    [Fact]
    public async Task A_port_taken_by_someone_else_is_logged_and_opened_at_a_later_reconcile()
    {
        var port = FreePort();
        var log = new StringWriter();
        using var server = HealthCheckServer.Start(Loopback, 0, TextWriter.Synchronized(log));
        using (var squatter = new TcpListener(IPAddress.Loopback, port))
        {
            squatter.Start();
            server.Reconcile([Web(port, Mixed)], "node1", Subnet);
            Assert.Empty(server.ServicePorts);
            Assert.Contains($"cannot serve the health check of shop/web on 127.0.0.1:{port}", log.ToString(), StringComparison.Ordinal);
        }
        server.Reconcile([Web(port, Mixed)], "node1", Subnet);
        Assert.Equal(200, await Status(port));
    }

    [Fact]
    public async Task The_proxy_health_port_answers_healthz_and_livez_as_kube_proxy_and_404_otherwise()
    {
        var port = FreePort();
        var time = new FixedTime();
        using var server = HealthCheckServer.Start(Loopback, port, TextWriter.Null, time);
        Assert.Equal(port, server.HealthzEndpoint!.Port);
        using var http = new HttpClient();

        Assert.Equal("{\"lastUpdated\":\"2026-03-04T05:06:07.12Z\",\"currentTime\":\"2026-03-04T05:06:07.12Z\",\"nodeEligible\":true,\"healthy\":true}",
            await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/healthz")));
        server.Reconcile([], "node1", Subnet);
        time.Now = Now.AddSeconds(30);
        using var healthz = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/healthz?verbose"));
        Assert.Equal(HttpStatusCode.OK, healthz.StatusCode);
        Assert.Equal("nosniff", Assert.Single(healthz.Headers.GetValues("X-Content-Type-Options")));
        Assert.Equal("{\"lastUpdated\":\"2026-03-04T05:06:37.12Z\",\"currentTime\":\"2026-03-04T05:06:37.12Z\",\"nodeEligible\":true,\"healthy\":true," +
            "\"status\":{\"IPv4\":{\"lastUpdated\":\"2026-03-04T05:06:07.12Z\",\"healthy\":true}}}", await healthz.Content.ReadAsStringAsync());
        Assert.DoesNotContain("nodeEligible", await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/livez")), StringComparison.Ordinal);
        using var missing = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("404 page not found\n", await missing.Content.ReadAsStringAsync());
        Assert.Equal("2026-03-04T05:06:07Z", HealthCheckAnswers.GoTime(new DateTimeOffset(2026, 3, 4, 5, 6, 7, TimeSpan.Zero)));
    }

    [Fact]
    public async Task Garbage_slow_and_many_clients_do_not_hold_up_anyone()
    {
        var (healthz, service) = (FreePort(), FreePort());
        using var server = HealthCheckServer.Start(Loopback, healthz, TextWriter.Null);
        server.Reconcile([Web(service, Mixed)], "node1", Subnet);

        // 300 clients that connect and say nothing, on both ports.
        var idle = Enumerable.Range(0, 300).Select(i => Connect(i % 2 == 0 ? healthz : service)).ToList();
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            Assert.Equal(200, await Status(service));
            Assert.Equal(200, await Status(healthz, "/healthz"));
            Assert.True(clock.ElapsedMilliseconds < 2000, $"answers took {clock.ElapsedMilliseconds} ms behind idle clients");

            Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", Raw(service, [0x16, 0x03, 0x01, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]), StringComparison.Ordinal);
            Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", Raw(service, Encoding.ASCII.GetBytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")), StringComparison.Ordinal);
            Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", Raw(healthz, Encoding.ASCII.GetBytes(("GET /healthz HTTP/1.1\r\nX: " + new string('a', 8192))[..8192])), StringComparison.Ordinal);
            var head = Raw(service, Encoding.ASCII.GetBytes("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"));
            Assert.StartsWith("HTTP/1.1 200 OK\r\n", head, StringComparison.Ordinal);
            Assert.EndsWith("\r\n\r\n", head, StringComparison.Ordinal);
            // A bare-LF request, as some probes send.
            Assert.StartsWith("HTTP/1.1 200 OK\r\n", Raw(service, Encoding.ASCII.GetBytes("GET / HTTP/1.0\n\n")), StringComparison.Ordinal);
        }
        finally
        {
            foreach (var socket in idle) socket.Dispose();
        }
        // A half request and a hang-up: nothing breaks.
        using (var half = Connect(service)) half.Send("GET / HT"u8.ToArray());
        Assert.Equal(200, await Status(service));
    }

    [Fact]
    public void Dispose_closes_every_port()
    {
        var (healthz, service) = (FreePort(), FreePort());
        var server = HealthCheckServer.Start(Loopback, healthz, TextWriter.Null);
        server.Reconcile([Web(service)], "node1", Subnet);
        Assert.True(Connects(healthz) && Connects(service));
        server.Dispose();
        Assert.False(Connects(healthz));
        Assert.False(Connects(service));
        // A late reconcile (a lease lost during shutdown) opens nothing again.
        server.Reconcile([Web(service)], "node1", Subnet);
        Assert.False(Connects(service));
    }

    [Fact]
    public void The_healthz_port_flag_must_be_a_port()
    {
        var error = new StringWriter();
        var rc = Program.BuildCommand(new StringWriter(), error).Parse(["run", "--config", "/nonexistent.json", "--healthz-port", "70000"]).Invoke();
        Assert.Equal(2, rc);
        Assert.Equal("fastoverlay: --healthz-port must be a port number (0: off)", error.ToString().Trim());
    }

    private static ushort FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return (ushort)((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private static async Task<int> Status(int port, string path = "/")
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}{path}"));
        return (int)response.StatusCode;
    }

    private static Socket Connect(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Connect(IPAddress.Loopback, port);
        return socket;
    }

    private static bool Connects(int port)
    {
        try
        {
            using var socket = Connect(port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Sends raw bytes and reads the answer until the server closes.</summary>
    private static string Raw(int port, byte[] request)
    {
        using var socket = Connect(port);
        socket.ReceiveTimeout = 5000;
        socket.Send(request);
        var answer = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = socket.Receive(buffer)) > 0) answer.Write(buffer, 0, n);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            // Closed with bytes of ours unread: the answer came before the reset.
        }
        return Encoding.ASCII.GetString(answer.ToArray());
    }

    private sealed class FixedTime : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = HealthCheckServerTests.Now;
        public override DateTimeOffset GetUtcNow() => Now;
    }
}
