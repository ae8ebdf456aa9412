using System.Globalization;
using FastOverlay.Wire;

namespace FastOverlay.Config;

/// <summary>What validation needs to know about the node's interfaces; injectable so unit tests need no root or veths.</summary>
public interface IInterfaceCatalog
{
    bool Exists(string name);

    /// <summary>The interface's MTU, or null when unknown.</summary>
    int? Mtu(string name);

    /// <summary>The interface's own MAC, or null when unknown.</summary>
    MacAddress? Mac(string name);
}

/// <summary>
/// Reads /sys/class/net/&lt;name&gt;. sysfs shows the network namespace it was mounted in, which `ip netns exec`
/// remounts for the command it runs, so this sees the namespace fastoverlay runs in.
/// </summary>
public sealed class SysfsInterfaceCatalog(string root = "/sys/class/net") : IInterfaceCatalog
{
    public bool Exists(string name) => Directory.Exists(Path.Combine(root, name));

    public int? Mtu(string name) =>
        Read(name, "mtu") is { } text && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var mtu) ? mtu : null;

    public MacAddress? Mac(string name) => Read(name, "address") is { } text && MacAddress.TryParse(text, out var mac) ? mac : null;

    private string? Read(string name, string attribute)
    {
        try
        {
            return File.ReadAllText(Path.Combine(root, name, attribute)).Trim();
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>Which interface holds an address, from the kernel's own list (getifaddrs) in the calling thread's network namespace.</summary>
public static class InterfaceAddresses
{
    /// <summary>The name of the interface that has <paramref name="address"/> assigned, or null.</summary>
    public static string? Holding(Ipv4Address address)
    {
        var text = address.ToString();
        foreach (var nic in System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces())
        {
            foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
            {
                if (unicast.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && unicast.Address.ToString() == text) return nic.Name;
            }
        }
        return null;
    }
}
