using System.Text.Json;
using FastOverlay.Cli.Api;
using FastOverlay.Cli.Metrics;
using FastOverlay.Config;
using FastOverlay.Control;
using FastOverlay.Ports;
using FastOverlay.Tests.Config;
using FastOverlay.Wire;
using Prometheus;

namespace FastOverlay.Tests.Control;

/// <summary>Services reach the forwarding state from the file and the store, and show in the API and the metrics.</summary>
public sealed class ServiceControllerTests
{
    private const string Web = """[ { "Name": "web", "ClusterIP": "10.96.0.10", "Ports": [ { "Name": "http", "Protocol": "TCP", "Port": 80, "TargetPort": 8080 } ], "Endpoints": [ { "IP": "10.244.1.2" }, { "IP": "10.244.2.7", "Node": "node2" } ] } ]""";

    private static ServiceConfig StoreService(string name, string vip) => new()
    {
        Name = name,
        ClusterIp = Ipv4Address.Parse(vip),
        Ports = [new ServicePortConfig(null, L4Protocol.Udp, 53, 53, null)],
        Endpoints = [new EndpointConfig(Ipv4Address.Parse("10.244.2.9"), "node2")],
    };

    [Fact]
    public void No_service_means_no_connection_table_and_the_first_service_allocates_it_once()
    {
        var ports = new RingPortFactory();
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.Example), ports, poolBuffers: 256);
        Assert.Null(controller.Conntrack);
        Assert.True(controller.Forwarder.State.Services.IsEmpty);

        controller.Apply(ConfigFixture.Load(ConfigFixture.With("Services", Web)));
        var conntrack = controller.Conntrack;
        Assert.NotNull(conntrack);
        Assert.Same(conntrack, controller.Forwarder.State.Conntrack);
        var port = Assert.Single(controller.Forwarder.State.Services.Ports);
        Assert.Equal("default/web:http", port.Label);
        Assert.True(port.Backends.Single(b => b.Ip == Ipv4Address.Parse("10.244.1.2").Value).Local);
        Assert.False(port.Backends.Single(b => b.Ip == Ipv4Address.Parse("10.244.2.7").Value).Local);

        // Removing every Service keeps the table (its flows expire), and a later Service reuses it.
        controller.Apply(ConfigFixture.Load(ConfigFixture.Example));
        Assert.True(controller.Forwarder.State.Services.IsEmpty);
        controller.Apply(ConfigFixture.Load(ConfigFixture.With("Services", Web)));
        Assert.Same(conntrack, controller.Conntrack);
    }

    [Fact]
    public void Store_services_merge_with_the_file_and_the_file_wins_a_name()
    {
        var ports = new RingPortFactory();
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.With("Services", Web)), ports, poolBuffers: 256);
        var id = controller.Forwarder.State.Services.Ports[0].Id;
        controller.SetStoreServices([StoreService("dns", "10.96.0.53"), StoreService("web", "10.96.0.99")]);

        var services = controller.Forwarder.State.Services;
        Assert.Equal(["default/web:http", "default/dns:UDP/53"], services.Ports.Select(p => p.Label));
        Assert.Equal(Ipv4Address.Parse("10.96.0.10").Value, services.Ports[0].ClusterIp);
        Assert.Equal(id, services.Ports[0].Id); // the kept port keeps its identity (and its flows)
        Assert.Equal(2, controller.StoreServices.Count);

        controller.SetStoreServices([]);
        Assert.Single(controller.Forwarder.State.Services.Ports);
    }

    [Fact]
    public async Task Api_and_metrics_report_the_services_and_the_connection_table()
    {
        var ports = new RingPortFactory();
        using var controller = NodeController.Start(ConfigFixture.Load(ConfigFixture.With("Services", Web)), ports, poolBuffers: 256, workers: 2);
        var state = Path.Combine(Path.GetTempPath(), $"fo-svc-{Guid.NewGuid():N}.json");
        try
        {
            var api = new NodeApi(new PodRegistry(state), new AfPacketOptions(), () => controller, "config");
            using var doc = JsonDocument.Parse(JsonSerializer.Serialize(ServiceReport.Services(api)));
            var service = Assert.Single(doc.RootElement.GetProperty("services").EnumerateArray().ToList());
            Assert.Equal("10.96.0.10", service.GetProperty("clusterIp").GetString());
            Assert.Equal(2, service.GetProperty("endpoints").GetArrayLength());
            Assert.Equal(2 * controller.Conntrack!.CapacityPerWorker, doc.RootElement.GetProperty("conntrack").GetProperty("capacity").GetInt64());

            var metrics = new NodeMetrics(api);
            using var stream = new MemoryStream();
            await metrics.Registry.CollectAndExportAsTextAsync(stream);
            var text = System.Text.Encoding.UTF8.GetString(stream.ToArray());
            Assert.Contains("fastoverlay_service_flows_total{namespace=\"default\",service=\"web\",port=\"http\",protocol=\"TCP\"} 0", text);
            Assert.Contains("fastoverlay_service_endpoints{namespace=\"default\",service=\"web\",port=\"http\",protocol=\"TCP\",condition=\"local\"} 1", text);
            Assert.Contains("fastoverlay_service_backend_flows_total{namespace=\"default\",service=\"web\",port=\"http\",protocol=\"TCP\",backend=\"10.244.2.7:8080\"} 0", text);
            Assert.Contains("fastoverlay_conntrack_capacity " + 2 * controller.Conntrack.CapacityPerWorker, text);

            // A Service that leaves loses its series.
            controller.Apply(ConfigFixture.Load(ConfigFixture.Example));
            stream.SetLength(0);
            await metrics.Registry.CollectAndExportAsTextAsync(stream);
            Assert.DoesNotContain("service=\"web\"", System.Text.Encoding.UTF8.GetString(stream.ToArray()));
        }
        finally
        {
            File.Delete(state);
        }
    }
}
