using System.Diagnostics;
using System.Globalization;
using FastOverlay.Cluster;
using FastOverlay.Config;
using FastOverlay.Pipeline;
using FastOverlay.Wire;

namespace FastOverlay.Cli.Demo;

/// <summary>
/// The main job: a 3-worker in-memory cluster running the real pipeline. Walks a packet through each path a
/// Kubernetes networking tutorial describes, printing every hop as the pipeline recorded it, then runs every pod
/// at full speed and prints packets per second per path and drops by reason.
/// </summary>
internal sealed class ClusterDemo(TextWriter output)
{
    public sealed record WalkResult(string Title, bool Delivered, IReadOnlyList<TraceRecord> Hops);

    public async Task<int> RunAsync(FileInfo? pcap, double seconds, CancellationToken cancel)
    {
        var spec = ClusterSpec.Seed();
        var cluster = InMemoryCluster.Create(spec);
        PrintCluster(cluster);

        var tracer = cluster.EnableTracing();
        var walks = RunWalks(cluster, tracer);
        var printer = new TracePrinter(cluster, tracer, output);
        foreach (var walk in walks) printer.PrintWalk(walk);
        if (tracer.Overflowed) output.WriteLine("(the trace buffer filled up: later hops are missing)");
        if (pcap is not null)
        {
            var frames = await PcapExport.WriteAsync(cluster, tracer, pcap);
            output.WriteLine($"Wrote {frames} frames of the walks to {pcap.FullName} (tshark -r {pcap.Name} -d udp.port=={spec.VxlanPort},vxlan)");
            output.WriteLine();
        }
        cluster.DisableTracing();

        var load = FullSpeed.Run(cluster, TimeSpan.FromSeconds(seconds), cancel);
        FullSpeed.Print(cluster, load, output);

        var failed = walks.Where(w => !w.Delivered).Select(w => w.Title).ToArray();
        if (failed.Length > 0)
        {
            output.WriteLine($"FAILED: not delivered: {string.Join(", ", failed)}");
            return 1;
        }
        return 0;
    }

    private void PrintCluster(InMemoryCluster cluster)
    {
        var spec = cluster.Spec;
        output.WriteLine($"In-memory cluster: network {spec.Network}, VXLAN VNI {spec.Vni} on UDP {spec.VxlanPort} (flannel's defaults)");
        for (var n = 0; n < cluster.Nodes.Length; n++)
        {
            var state = cluster.Nodes[n].State;
            var pods = cluster.Pods.Where(p => p.NodeName == state.Node.Name).Select(p => $"{p.Name} {p.Ip}");
            output.WriteLine($"  {state.Node.Name}: public IP {state.Node.PublicIp}, subnet {state.Node.Subnet}, gateway {Ipv4Address.Format(state.Node.GatewayIp)}, VTEP MAC {state.Node.VtepMac}");
            output.WriteLine($"         pods: {string.Join(", ", pods)}");
        }
        output.WriteLine();
    }

    /// <summary>
    /// Three walks on an idle cluster with every ARP cache empty: a ping between pods of one node, a ping to a pod
    /// on another node, and that ping's reply. Each walk is delivered only if the destination really got it.
    /// </summary>
    public static List<WalkResult> RunWalks(InMemoryCluster cluster, PacketTracer tracer)
    {
        var results = new List<WalkResult>();
        var web0 = cluster.Pod("web-0");
        var cache0 = cluster.Pod("cache-0");
        var api1 = cluster.Pod("api-1");

        // One trace for all walks (frames stay valid until the tracer is cleared); each walk is its slice.
        tracer.Clear();
        var (request, _) = Ping(cluster, tracer, web0, cache0, 1);
        results.Add(new WalkResult($"Walk 1: pod to pod on the same node: {Describe(web0)} → {Describe(cache0)}, ping", request.Delivered, request.Hops));

        var (request2, reply) = Ping(cluster, tracer, web0, api1, 2);
        results.Add(new WalkResult($"Walk 2: pod to pod on another node: {Describe(web0)} → {Describe(api1)}, ping", request2.Delivered, request2.Hops));
        results.Add(new WalkResult($"Walk 3: the reply, back across the nodes: {Describe(api1)} → {Describe(web0)}, ping reply", reply.Delivered, reply.Hops));

        var (toService, fromService) = ServiceEcho(cluster, tracer, web0, api1);
        results.Add(new WalkResult($"Walk 4: pod to a ClusterIP: {Describe(web0)} → Service default/api {ServiceVip}:{PodEndpoint.EchoPort}/UDP (endpoint {api1.Name}), DNAT then VXLAN", toService.Delivered, toService.Hops));
        results.Add(new WalkResult($"Walk 5: the endpoint's answer, reverse-NATed on the client's node: {Describe(api1)} → {Describe(web0)}, from the service address", fromService.Delivered, fromService.Hops));
        return results;
    }

    public static readonly Ipv4Address ServiceVip = Ipv4Address.Parse("10.96.0.10");

    /// <summary>The api Service: a ClusterIP for UDP echo whose one endpoint is <paramref name="endpoint"/>.</summary>
    public static ServiceConfig ApiService(PodEndpoint endpoint) => new()
    {
        Name = "api",
        ClusterIp = ServiceVip,
        Ports = [new ServicePortConfig("echo", L4Protocol.Udp, PodEndpoint.EchoPort, PodEndpoint.EchoPort, null)],
        Endpoints = [new EndpointConfig(endpoint.Ip, endpoint.NodeName)],
    };

    /// <summary>One UDP echo through a ClusterIP: the request is DNATed on the client's node, the echo comes back translated.</summary>
    private static ((bool Delivered, List<TraceRecord> Hops) Request, (bool Delivered, List<TraceRecord> Hops) Reply) ServiceEcho(InMemoryCluster cluster, PacketTracer tracer, PodEndpoint from, PodEndpoint endpoint)
    {
        cluster.SetServices([ApiService(endpoint)]);
        var echoesBefore = from.UdpEchoesReceived;
        var first = tracer.Records.Length;
        for (var attempt = 0; attempt < 3 && from.SendUdp(ServiceVip.Value, PodEndpoint.EchoPort, 1) == 0; attempt++) cluster.RunUntilIdle();
        cluster.RunUntilIdle();
        var records = tracer.Records[first..].ToArray();
        var split = Array.FindIndex(records, r => r.Node == endpoint.Name && r.Event == TraceEvent.EndpointReceived);
        var requestHops = split < 0 ? records.ToList() : records[..(split + 1)].ToList();
        var replyHops = split < 0 ? [] : records[(split + 1)..].ToList();
        return ((split >= 0, requestHops), (from.UdpEchoesReceived == echoesBefore + 1, replyHops));
    }

    private static string Describe(PodEndpoint pod) => $"{pod.Name} ({pod.Ip} on {pod.NodeName})";

    private static ((bool Delivered, List<TraceRecord> Hops) Request, (bool Delivered, List<TraceRecord> Hops) Reply) Ping(InMemoryCluster cluster, PacketTracer tracer, PodEndpoint from, PodEndpoint to, ushort sequence)
    {
        var repliesBefore = from.EchoRepliesReceived;
        var first = tracer.Records.Length;
        // The first attempt finds no neighbour entry and sends ARP instead; once ARP settles, the ping goes.
        for (var attempt = 0; attempt < 3 && !from.SendEcho(to.Ip.Value, 0x4242, sequence); attempt++) cluster.RunUntilIdle();
        cluster.RunUntilIdle();
        var records = tracer.Records[first..].ToArray();
        var split = Array.FindIndex(records, r => r.Node == to.Name && r.Event == TraceEvent.EndpointReceived && IsEcho(tracer.Frame(r), Icmpv4.TypeEchoRequest));
        var requestHops = split < 0 ? records.ToList() : records[..(split + 1)].ToList();
        var replyHops = split < 0 ? [] : records[(split + 1)..].ToList();
        var replyDelivered = from.EchoRepliesReceived == repliesBefore + 1;
        return ((split >= 0, requestHops), (replyDelivered, replyHops));
    }

    private static bool IsEcho(ReadOnlySpan<byte> frame, byte type)
    {
        if (Ethernet.Parse(frame, out var et, out var l3) != DropReason.None || et != Ethernet.TypeIpv4) return false;
        var ip = frame[l3..];
        if (Ipv4Header.Validate(ip, out var ihl, out _) != DropReason.None || Ipv4Header.Protocol(ip) != Ipv4Header.ProtocolIcmp) return false;
        return ip.Length > ihl && ip[ihl] == type;
    }
}

internal static class Formatting
{
    public static string Rate(double perSecond) => perSecond >= 1e6
        ? (perSecond / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + " Mpps"
        : (perSecond / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + " kpps";

}
