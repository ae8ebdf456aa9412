namespace FastOverlay.Ports;

/// <summary>
/// Keeps the node's kernel from answering ARP on an interface the forwarder owns. A pod's ARP request reaches the
/// kernel on the veth's host end as well as our socket, and with arp_ignore 0 (the default) the kernel answers for
/// any address of the node on any interface, with the veth's own MAC: with a host port the subnet's first address
/// is the node's, so a pod asking for it would get the kernel's answer as well as ours, and the later one wins
/// (seen in the lab: replies to the node went to the veth's MAC and were dropped as WrongDestinationMac).
/// arp_ignore 8 answers nothing on the interface (ip-sysctl.rst); frames still reach our socket.
/// </summary>
public static class ArpIgnore
{
    /// <summary>Sets arp_ignore 8 on the interface in this network namespace; false (and nothing changed) where /proc/sys is not writable.</summary>
    public static bool Set(string interfaceName)
    {
        var path = $"/proc/sys/net/ipv4/conf/{interfaceName}/arp_ignore";
        try
        {
            if (!File.Exists(path)) return false;
            File.WriteAllText(path, "8");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
