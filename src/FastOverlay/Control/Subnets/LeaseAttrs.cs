using System.Text;
using System.Text.Json;
using FastOverlay.Wire;

namespace FastOverlay.Control.Subnets;

/// <summary>
/// A lease's value (flannel pkg/lease/lease.go LeaseAttrs, vxlan's BackendData from pkg/backend/vxlan). Written
/// byte-for-byte as flanneld writes it; read as Go's decoder reads it (names case-insensitive, unknown fields
/// ignored), since other flannel versions write it too.
/// </summary>
public sealed record LeaseAttrs(Ipv4Address PublicIp, string BackendType, uint? Vni, MacAddress? VtepMac)
{
    public static LeaseAttrs Vxlan(Ipv4Address publicIp, uint vni, MacAddress vtepMac) => new(publicIp, "vxlan", vni, vtepMac);

    public bool IsVxlan => BackendType == "vxlan";

    /// <summary><c>{"PublicIP":"…","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"…"}}</c></summary>
    public byte[] ToJson()
    {
        var vtep = VtepMac ?? throw new InvalidOperationException("a vxlan lease needs a VtepMAC");
        return Encoding.UTF8.GetBytes($"{{\"PublicIP\":\"{PublicIp}\",\"PublicIPv6\":null,\"BackendType\":\"{BackendType}\",\"BackendData\":{{\"VNI\":{Vni ?? 1},\"VtepMAC\":\"{vtep}\"}}}}");
    }

    /// <summary>Null, with the reason, for a value flanneld itself could not use.</summary>
    public static LeaseAttrs? TryParse(ReadOnlySpan<byte> json, out string? problem)
    {
        problem = null;
        try
        {
            using var document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return Fail("not a JSON object", out problem);
            if (Get(root, "PublicIP") is not { ValueKind: JsonValueKind.String } ipText || !Ipv4Address.TryParse(ipText.GetString(), out var publicIp))
                return Fail("no valid PublicIP", out problem);
            var backendType = Get(root, "BackendType") is { ValueKind: JsonValueKind.String } bt ? bt.GetString() ?? "" : "";
            uint? vni = null;
            MacAddress? mac = null;
            if (Get(root, "BackendData") is { ValueKind: JsonValueKind.Object } data)
            {
                if (Get(data, "VNI") is { ValueKind: JsonValueKind.Number } v && v.TryGetUInt32(out var n)) vni = n;
                if (Get(data, "VtepMAC") is { ValueKind: JsonValueKind.String } m && MacAddress.TryParse(m.GetString(), out var parsed)) mac = parsed;
            }
            return new LeaseAttrs(publicIp, backendType, vni, mac);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return Fail($"not valid JSON ({e.Message})", out problem);
        }
    }

    private static LeaseAttrs? Fail(string why, out string? problem)
    {
        problem = why;
        return null;
    }

    private static JsonElement? Get(JsonElement o, string name)
    {
        foreach (var p in o.EnumerateObject())
        {
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)) return p.Value;
        }
        return null;
    }
}
