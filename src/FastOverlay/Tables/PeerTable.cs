using System.Numerics;
using System.Runtime.CompilerServices;
using FastOverlay.Wire;

namespace FastOverlay.Tables;

/// <summary>
/// The immutable set of peers, indexed by public IP for the decap check. Route values point at a peer by its
/// index here, so routes and peers are published together in one <see cref="FastOverlay.Pipeline.ForwardingState"/>.
/// </summary>
public sealed class PeerTable
{
    private readonly Peer[] _peers;
    private readonly uint[] _keys;
    private readonly int[] _values;
    private readonly int _mask;

    public static readonly PeerTable Empty = new([]);

    public PeerTable(IReadOnlyList<Peer> peers)
    {
        _peers = [.. peers];
        var size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(4, _peers.Length * 2));
        _keys = new uint[size];
        _values = new int[size];
        _mask = size - 1;
        for (var i = 0; i < _peers.Length; i++)
        {
            var ip = _peers[i].PublicIp.Value;
            if (ip == 0) throw new ArgumentException($"peer {_peers[i].Name}: public IP 0.0.0.0");
            var slot = Slot(ip);
            while (_keys[slot] != 0)
            {
                if (_keys[slot] == ip) throw new ArgumentException($"peers {_peers[_values[slot] - 1].Name} and {_peers[i].Name} share public IP {_peers[i].PublicIp}");
                slot = (slot + 1) & _mask;
            }
            _keys[slot] = ip;
            _values[slot] = i + 1;
        }
    }

    public int Count => _peers.Length;
    public Peer this[int index] => _peers[index];
    public ReadOnlySpan<Peer> All => _peers;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Slot(uint ip) => (int)(BitOperations.Crc32C(0u, ip) & (uint)_mask);

    /// <summary>Index of the peer with this public IP, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int FindByPublicIp(uint publicIp)
    {
        var slot = Slot(publicIp);
        while (true)
        {
            var key = _keys[slot];
            if (key == publicIp) return _values[slot] - 1;
            if (key == 0) return -1;
            slot = (slot + 1) & _mask;
        }
    }
}
