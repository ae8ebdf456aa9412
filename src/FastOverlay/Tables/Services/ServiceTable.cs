using System.Runtime.CompilerServices;

namespace FastOverlay.Tables.Services;

/// <summary>
/// Every Service port this node load-balances, as one immutable version the data path reads without locks: the
/// control plane builds the next one off the forwarding threads (<see cref="ServiceTableBuilder"/>) and swaps a
/// reference, as for routes. Lookups are hash probes whose cost does not grow with the number of Services.
/// </summary>
public sealed class ServiceTable
{
    /// <summary>Address-only entries of <see cref="Addresses"/>: what a bare service address is.</summary>
    public const int ClusterAddress = 1, ExternalAddress = 2;

    public static readonly ServiceTable Empty = new(0, [], ServiceKeyMap.None, ServiceKeyMap.None, ServiceKeyMap.None, ServiceKeyMap.None, ServiceKeyMap.None, 0, 0, new Dictionary<uint, int>(), 0);

    internal ServiceTable(uint epoch, ServicePort[] ports, ServiceKeyMap clusterPorts, ServiceKeyMap externalPorts, ServiceKeyMap nodePorts,
        ServiceKeyMap addresses, ServiceKeyMap backendSources, uint nodeIp, uint hairpinAddress, Dictionary<uint, int> byId, uint nextId)
    {
        Epoch = epoch;
        Ports = ports;
        ClusterPorts = clusterPorts;
        ExternalPorts = externalPorts;
        NodePorts = nodePorts;
        Addresses = addresses;
        BackendSources = backendSources;
        NodeIp = nodeIp;
        HairpinAddress = hairpinAddress;
        // Ids are small and dense (handed out in order), so a flat array is the cheapest per-packet lookup.
        _byId = new int[nextId + 1];
        Array.Fill(_byId, -1);
        foreach (var (id, index) in byId) _byId[id] = index;
        NextId = nextId;
    }

    private readonly int[] _byId;

    /// <summary>Bumped by every build: a flow validated at this epoch needs no second look at its backend.</summary>
    public uint Epoch { get; }
    public ServicePort[] Ports { get; }
    /// <summary>(protocol, ClusterIP, port) to a port index.</summary>
    public ServiceKeyMap ClusterPorts { get; }
    /// <summary>(protocol, LoadBalancer or external IP, port) to a port index.</summary>
    public ServiceKeyMap ExternalPorts { get; }
    /// <summary>(protocol, NodePort) with address 0 to a port index; valid on <see cref="NodeIp"/>.</summary>
    public ServiceKeyMap NodePorts { get; }
    /// <summary>Every service address (key with port and protocol 0) to <see cref="ClusterAddress"/> or <see cref="ExternalAddress"/>.</summary>
    public ServiceKeyMap Addresses { get; }
    /// <summary>(protocol, endpoint IP, target port) of every endpoint: a packet from one may be a reply to translate back.</summary>
    public ServiceKeyMap BackendSources { get; }
    public uint NodeIp { get; }
    /// <summary>Where flows are SNATed to (hairpin, externalTrafficPolicy Cluster); replies come back to it.</summary>
    public uint HairpinAddress { get; }
    internal uint NextId { get; }

    public bool IsEmpty => Ports.Length == 0;

    /// <summary>The port with this stable id in this version, or null (the Service or port is gone).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ServicePort? FindById(uint id)
    {
        var ids = _byId;
        if (id >= (uint)ids.Length) return null;
        var i = ids[id];
        return i < 0 ? null : Ports[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsServiceAddress(uint address) => Addresses.Find(ServiceKeyMap.Key(address, 0, 0)) >= 0;
}
