using System.Buffers.Binary;
using FastOverlay.Pipeline;
using FastOverlay.Ports;
using FastOverlay.Wire;

namespace FastOverlay.Cluster;

/// <summary>
/// The in-memory underlay between nodes: an L3 fabric that delivers each outer frame to the node owning its outer
/// destination IP. A full mesh of <see cref="SpscRing{T}"/>s (one per ordered pair of nodes) keeps every ring
/// single-producer single-consumer, so nodes may run on separate threads.
/// </summary>
public sealed class UnderlayFabric
{
    private readonly uint[] _addresses;
    private readonly SpscRing<int>[,] _links;
    private readonly PacketPool _pool;
    private long _unroutable;

    public UnderlayFabric(PacketPool pool, IReadOnlyList<Ipv4Address> nodeAddresses, int linkCapacity = 4096)
    {
        _pool = pool;
        _addresses = new uint[nodeAddresses.Count];
        for (var i = 0; i < _addresses.Length; i++) _addresses[i] = nodeAddresses[i].Value;
        _links = new SpscRing<int>[_addresses.Length, _addresses.Length];
        for (var i = 0; i < _addresses.Length; i++)
            for (var j = 0; j < _addresses.Length; j++)
                _links[i, j] = new SpscRing<int>(linkCapacity);
    }

    /// <summary>Frames whose outer destination is no node: the fabric drops them like a router without a route.</summary>
    public long Unroutable => Volatile.Read(ref _unroutable);

    public IPacketPort PortFor(int node, string name) => new FabricPort(this, node, name);

    private int NodeOf(uint address)
    {
        for (var i = 0; i < _addresses.Length; i++)
        {
            if (_addresses[i] == address) return i;
        }
        return -1;
    }

    private sealed class FabricPort(UnderlayFabric fabric, int node, string name) : IPacketPort
    {
        private int _next;

        public string Name { get; } = name;

        public int Receive(Span<int> handles)
        {
            var count = 0;
            var nodes = fabric._addresses.Length;
            // Round-robin over the inbound links so one busy peer cannot starve the others.
            for (var k = 0; k < nodes && count < handles.Length; k++)
            {
                var from = (_next + k) % nodes;
                count += fabric._links[from, node].Dequeue(handles[count..]);
            }
            _next = (_next + 1) % nodes;
            return count;
        }

        public int Transmit(ReadOnlySpan<int> handles)
        {
            for (var i = 0; i < handles.Length; i++)
            {
                var frame = fabric._pool.Frame(handles[i]);
                var to = frame.Length >= Ethernet.HeaderLength + Ipv4Header.MinLength
                    ? fabric.NodeOf(BinaryPrimitives.ReadUInt32BigEndian(frame[(Ethernet.HeaderLength + Ipv4Header.OffsetDestination)..]))
                    : -1;
                if (to < 0)
                {
                    Interlocked.Increment(ref fabric._unroutable);
                    fabric._pool.Free(handles[i]);
                    continue;
                }
                if (!fabric._links[node, to].TryEnqueue(handles[i])) return i;
            }
            return handles.Length;
        }
    }
}
