using System.Text.Json;
using FastOverlay.Config;
using FastOverlay.Wire;

namespace FastOverlay.Control.Subnets;

/// <summary>
/// flannel's network configuration as it sits in etcd at <c>&lt;prefix&gt;/config</c> (flannel pkg/subnet/config.go,
/// <c>subnet.Config</c>), with <c>CheckNetworkConfig</c>'s defaults applied exactly: SubnetLen 24, or Network's
/// length + 2 when Network is smaller than a /22; SubnetMin the second subnet; SubnetMax the last one.
/// </summary>
public sealed record FlannelNetwork(Ipv4Prefix Network, int SubnetLen, Ipv4Address SubnetMin, Ipv4Address SubnetMax, BackendConfig Backend)
{
    public uint SubnetSize => 1u << (32 - SubnetLen);

    /// <summary>flannel's isSubnetConfigCompat: inside SubnetMin..SubnetMax and of length SubnetLen.</summary>
    public bool Fits(Ipv4Prefix subnet) =>
        subnet.Length == SubnetLen && subnet.Address >= SubnetMin.Value && subnet.Address <= SubnetMax.Value;

    /// <summary>
    /// Reads the config the way flannel's Go decoder does (field names match case-insensitively, unknown fields are
    /// ignored: the key is written by operators for flanneld, not for us), then checks it like CheckNetworkConfig.
    /// Errors are <see cref="ConfigException"/>s whose path starts with "etcd config".
    /// </summary>
    public static FlannelNetwork Parse(ReadOnlySpan<byte> json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new ConfigException("etcd config", $"not valid JSON: {e.Message}");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new ConfigException("etcd config", "expected a JSON object");
            if (Get(root, "EnableIPv4") is { ValueKind: JsonValueKind.False })
                throw new ConfigException("etcd config.EnableIPv4", "false is not supported: FastOverlay forwards IPv4 only");
            if (Get(root, "EnableIPv6") is { ValueKind: JsonValueKind.True })
                throw new ConfigException("etcd config.EnableIPv6", "true is not supported: FastOverlay forwards IPv4 only");
            var networkText = GetString(root, "Network") ?? throw new ConfigException("etcd config.Network", "required (flannel: \"please define a correct Network parameter\")");
            if (!Ipv4Prefix.TryParse(networkText, out var network)) throw new ConfigException("etcd config.Network", $"'{networkText}' is not an IPv4 CIDR prefix");
            var subnetLen = (int)(GetInt(root, "SubnetLen") ?? 0);
            if (subnetLen > 0)
            {
                if (subnetLen > 30) throw new ConfigException("etcd config.SubnetLen", "must be less than /31");
                if (subnetLen < network.Length + 2) throw new ConfigException("etcd config.SubnetLen", "Network must be able to accommodate at least four subnets");
            }
            else if (network.Length > 28) throw new ConfigException("etcd config.Network", "too small: the minimum useful network prefix is /28");
            else subnetLen = network.Length <= 22 ? 24 : network.Length + 2;

            var size = 1u << (32 - subnetLen);
            var min = Address(root, "SubnetMin") ?? network.Address + size;
            var max = Address(root, "SubnetMax") ?? network.Last + 1 - size;
            if (!network.Contains(min)) throw new ConfigException("etcd config.SubnetMin", "not in the range of the Network");
            if (!network.Contains(max)) throw new ConfigException("etcd config.SubnetMax", "not in the range of the Network");
            var mask = Ipv4Prefix.MaskOf(subnetLen);
            if ((min & mask) != min) throw new ConfigException("etcd config.SubnetMin", $"{Ipv4Address.Format(min)} is not on a SubnetLen boundary");
            if ((max & mask) != max) throw new ConfigException("etcd config.SubnetMax", $"{Ipv4Address.Format(max)} is not on a SubnetLen boundary");
            return new FlannelNetwork(network, subnetLen, new Ipv4Address(min), new Ipv4Address(max), ParseBackend(Get(root, "Backend")));
        }
    }

    private static BackendConfig ParseBackend(JsonElement? backend)
    {
        // flannel's parseBackendType returns "udp" for a missing Backend (its docs say vxlan): name what flannel
        // would run rather than silently forward VXLAN to nodes that expect udp.
        if (backend is not { ValueKind: JsonValueKind.Object } b)
            throw new ConfigException("etcd config.Backend", "missing: flanneld would run the \"udp\" backend; FastOverlay implements only \"vxlan\" (write {\"Type\":\"vxlan\"})");
        var type = GetString(b, "Type") ?? "";
        if (!string.Equals(type, "vxlan", StringComparison.OrdinalIgnoreCase))
            throw new ConfigException("etcd config.Backend.Type", $"'{type}' is not supported; FastOverlay implements flannel's vxlan backend");
        var vni = GetInt(b, "VNI") ?? 1;
        if (vni is < 0 or > VxlanHeader.MaxVni) throw new ConfigException("etcd config.Backend.VNI", $"{vni} is out of range (24 bits)");
        var port = GetInt(b, "Port") ?? 0;
        if (port is < 0 or > 65535) throw new ConfigException("etcd config.Backend.Port", $"{port} is out of range");
        var mtu = GetInt(b, "MTU");
        if (mtu is { } m && (m < ConfigLoader.MinMtu || m > ConfigLoader.MaxMtu))
            throw new ConfigException("etcd config.Backend.MTU", $"{m} is out of range ({ConfigLoader.MinMtu}..{ConfigLoader.MaxMtu})");
        if (Get(b, "DirectRouting") is { ValueKind: JsonValueKind.True })
            throw new ConfigException("etcd config.Backend.DirectRouting", "true is not supported: FastOverlay reaches every peer through VXLAN");
        if (Get(b, "GBP") is { ValueKind: JsonValueKind.True })
            throw new ConfigException("etcd config.Backend.GBP", "true is not supported");
        return new BackendConfig
        {
            Vni = (uint)vni,
            // flannel's Port 0 is the kernel's default, 8472 on Linux.
            Port = port == 0 ? VxlanHeader.LinuxPort : (ushort)port,
            Mtu = (int?)mtu,
        };
    }

    private static JsonElement? Get(JsonElement o, string name)
    {
        foreach (var p in o.EnumerateObject())
        {
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)) return p.Value.ValueKind == JsonValueKind.Null ? null : p.Value;
        }
        return null;
    }

    private static string? GetString(JsonElement o, string name) => Get(o, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        _ => throw new ConfigException($"etcd config.{name}", "expected a string"),
    };

    private static long? GetInt(JsonElement o, string name) => Get(o, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } v when v.TryGetInt64(out var n) => n,
        _ => throw new ConfigException($"etcd config.{name}", "expected an integer"),
    };

    private static uint? Address(JsonElement o, string name)
    {
        if (GetString(o, name) is not { } text) return null;
        return Ipv4Address.TryParse(text, out var a) ? a.Value : throw new ConfigException($"etcd config.{name}", $"'{text}' is not an IPv4 address");
    }
}
