using System.Text.Json;

namespace FastOverlay.Cli.Api;

/// <summary>The readable forms of the API's documents for a person at the node.</summary>
internal static class TablePrinter
{
    public static void Status(JsonElement s, TextWriter o)
    {
        if (s.GetProperty("node") is { ValueKind: JsonValueKind.Object } n)
        {
            o.WriteLine($"node      {S(n, "name")}  public {S(n, "publicIp")}:{n.GetProperty("port")}  subnet {S(n, "subnet")}  gateway {S(n, "gateway")} ({S(n, "gatewayMac")})");
            o.WriteLine($"vxlan     VNI {n.GetProperty("vni")}, VTEP {S(n, "vtepMac")}, pod MTU {n.GetProperty("mtu")}");
        }
        else o.WriteLine("node      not forwarding (no lease held yet)");
        o.WriteLine($"source    {S(s, "source")}");
        if (s.GetProperty("lease") is { ValueKind: JsonValueKind.Object } l)
            o.WriteLine($"lease     {S(l, "subnet")} held {S(l, "held")}, expires {S(l, "expires")}, etcd {S(l, "endpoints")}");
        var f = s.GetProperty("features");
        o.WriteLine($"features  vnet header {S(f, "vnetHeader")}, coalesce {S(f, "coalesce")}, pod ring {S(f, "podRing")}, proxy ARP {S(f, "proxyArp")}");
        o.WriteLine($"workers   {s.GetProperty("workers")}    uptime {TimeSpan.FromSeconds(s.GetProperty("uptimeSeconds").GetDouble()):d\\.hh\\:mm\\:ss}");
        o.WriteLine();
        Peers(s.GetProperty("peers"), o);
        o.WriteLine();
        Pods(s.GetProperty("pods"), o);
    }

    public static void Peers(JsonElement peers, TextWriter o)
    {
        o.WriteLine($"{"PEER",-20} {"PUBLIC IP",-16} {"SUBNET",-19} VTEP MAC");
        foreach (var p in peers.EnumerateArray())
            o.WriteLine($"{S(p, "name"),-20} {S(p, "publicIp"),-16} {S(p, "subnet"),-19} {S(p, "vtepMac")}");
    }

    public static void Services(JsonElement body, TextWriter o)
    {
        o.WriteLine($"{"SERVICE",-28} {"PROTO",-5} {"ADDRESS",-22} {"NODEPORT",-8} {"FLOWS",8} {"PACKETS",10} ENDPOINTS");
        foreach (var s in body.GetProperty("services").EnumerateArray())
        {
            var endpoints = string.Join(", ", s.GetProperty("endpoints").EnumerateArray().Select(e =>
                $"{S(e, "address")}{(e.GetProperty("local").GetBoolean() ? " local" : "")}{(e.GetProperty("ready").GetBoolean() ? "" : e.GetProperty("terminating").GetBoolean() ? " terminating" : " not-ready")}"));
            var address = $"{S(s, "clusterIp")}:{S(s, "servicePort")}";
            o.WriteLine($"{S(s, "namespace") + "/" + S(s, "name") + ":" + S(s, "port"),-28} {S(s, "protocol"),-5} {address,-22} {S(s, "nodePort"),-8} {S(s, "flows"),8} {S(s, "packets"),10} {(endpoints.Length == 0 ? "(none)" : endpoints)}");
        }
        if (body.TryGetProperty("conntrack", out var ct) && ct.ValueKind == JsonValueKind.Object)
            o.WriteLine($"connection tracking: {S(ct, "entries")} of {S(ct, "capacity")} entries, {S(ct, "insertFailures")} new flows refused (table full)");
    }

    public static void Pods(JsonElement pods, TextWriter o)
    {
        o.WriteLine($"{"POD INTERFACE",-16} {"IP",-16} {"MAC",-18} {"FROM",-7} PORT");
        foreach (var p in pods.EnumerateArray())
        {
            var port = p.GetProperty("port");
            var portText = port.ValueKind == JsonValueKind.Object ? $"rx {port.GetProperty("rxFrames")} tx {port.GetProperty("txFrames")}; {S(port, "offloads")}" : "-";
            o.WriteLine($"{S(p, "interface"),-16} {S(p, "ip"),-16} {S(p, "mac"),-18} {S(p, "source"),-7} {portText}");
        }
    }

    public static void Trace(JsonElement t, TextWriter o)
    {
        foreach (var packet in t.GetProperty("packets").EnumerateArray())
        {
            o.WriteLine($"packet {packet.GetProperty("number")}");
            var step = 0;
            foreach (var hop in packet.GetProperty("hops").EnumerateArray()) o.WriteLine($"  {++step,3}  {S(hop, "node"),-8} {S(hop, "text")}");
            o.WriteLine();
        }
        if (t.GetProperty("timedOut").GetBoolean()) o.WriteLine($"(fewer than {t.GetProperty("requested")} packets went through before the timeout)");
    }

    /// <summary>A field as text: strings bare, other values as JSON writes them (true, not True), "-" when absent.</summary>
    private static string S(JsonElement e, string name) =>
        !e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? "-" : v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText();
}
