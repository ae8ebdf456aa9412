using System.Globalization;
using FastOverlay.Wire;

namespace FastOverlay.Control.Subnets;

/// <summary>
/// flannel's subnet.env (pkg/subnet/subnet.go WriteSubnetFile), read by the flannel CNI plugin: FLANNEL_NETWORK,
/// FLANNEL_SUBNET as the gateway address with the subnet's length (10.244.1.1/24), FLANNEL_MTU and FLANNEL_IPMASQ.
/// Written to a temporary file in the same directory and renamed over the old one, so a reader sees the old file
/// or the new one, never half of one. Read back at start to prefer the previous subnet (flannel PR #1505).
/// </summary>
public static class SubnetFile
{
    public const string DefaultPath = "/run/flannel/subnet.env";

    public static string Format(Ipv4Prefix network, Ipv4Prefix subnet, int mtu, bool ipMasq) => string.Create(CultureInfo.InvariantCulture,
        $"FLANNEL_NETWORK={network}\nFLANNEL_SUBNET={Ipv4Address.Format(subnet.Address + 1)}/{subnet.Length}\nFLANNEL_MTU={mtu}\nFLANNEL_IPMASQ={(ipMasq ? "true" : "false")}\n");

    public static void Write(string path, Ipv4Prefix network, Ipv4Prefix subnet, int mtu, bool ipMasq = false)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        // flannel writes "."+name beside the target and renames it; a unique suffix keeps two writers apart.
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(Format(network, subnet, mtu, ipMasq));
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The subnet of FLANNEL_SUBNET (the network of the gateway/len it holds), or null when absent or unreadable.</summary>
    public static Ipv4Prefix? ReadSubnet(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        foreach (var line in lines)
        {
            if (!line.StartsWith("FLANNEL_SUBNET=", StringComparison.Ordinal)) continue;
            var text = line["FLANNEL_SUBNET=".Length..].Trim();
            var slash = text.IndexOf('/', StringComparison.Ordinal);
            if (slash < 0 || !Ipv4Address.TryParse(text.AsSpan(0, slash), out var ip)) return null;
            if (!int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var length) || length > 32) return null;
            return new Ipv4Prefix(ip.Value & Ipv4Prefix.MaskOf(length), length);
        }
        return null;
    }
}
