namespace FastOverlay.Tables;

/// <summary>
/// Packets parked while their next hop is being resolved, like the kernel's per-neighbour arp_queue
/// (unres_qlen): a fixed number of addresses, a few packets each. When an address's queue is full the oldest
/// packet gives way, as in neigh_resolve_output; when the table is full the new packet is refused.
/// Requests are rate-limited per address (one per retransmit interval, at most <see cref="MaxProbes"/>), and an
/// address that never answers has its packets released as drops. Owned by one forwarder; no locks.
/// </summary>
public sealed class ArpPendingQueue
{
    public const int MaxProbes = 3;

    private readonly uint[] _address;
    private readonly int[] _count;
    private readonly int[] _probes;
    private readonly long[] _lastProbe;
    private readonly int[] _port;
    private readonly int[] _packets;
    private readonly int _perAddress;
    private int _used;

    public ArpPendingQueue(int addresses, int packetsPerAddress, long retransmitTicks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(addresses, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(packetsPerAddress, 1);
        _address = new uint[addresses];
        _count = new int[addresses];
        _probes = new int[addresses];
        _lastProbe = new long[addresses];
        _port = new int[addresses];
        _packets = new int[addresses * packetsPerAddress];
        _perAddress = packetsPerAddress;
        RetransmitTicks = retransmitTicks;
    }

    public long RetransmitTicks { get; }
    public int AddressCapacity => _address.Length;
    public int PacketsPerAddress => _perAddress;
    public int PendingAddresses => _used;

    public int PendingPackets
    {
        get
        {
            var total = 0;
            for (var i = 0; i < _address.Length; i++) total += _count[i];
            return total;
        }
    }

    public enum ParkResult : byte { Parked, ParkedDisplacedOldest, Refused }

    /// <summary>
    /// Parks a packet for <paramref name="address"/>. <paramref name="probe"/> tells the caller to send an ARP
    /// request now (first packet, or the retransmit interval passed). A displaced packet comes back in
    /// <paramref name="displaced"/> for the caller to free and count.
    /// </summary>
    public ParkResult Park(uint address, int packet, int probePort, long now, out bool probe, out int displaced)
    {
        displaced = -1;
        probe = false;
        // 0 marks a free slot: a packet parked under it could never be released, ticked or counted.
        if (address == 0) return ParkResult.Refused;
        var slot = Find(address);
        if (slot < 0)
        {
            slot = Find(0);
            if (slot < 0) return ParkResult.Refused;
            _address[slot] = address;
            _count[slot] = 0;
            _probes[slot] = 0;
            _lastProbe[slot] = now - RetransmitTicks; // due at once: the first packet triggers the first request
            _port[slot] = probePort;
            _used++;
        }
        var result = ParkResult.Parked;
        var baseIndex = slot * _perAddress;
        if (_count[slot] == _perAddress)
        {
            displaced = _packets[baseIndex];
            Array.Copy(_packets, baseIndex + 1, _packets, baseIndex, _perAddress - 1);
            _count[slot]--;
            result = ParkResult.ParkedDisplacedOldest;
        }
        _packets[baseIndex + _count[slot]++] = packet;
        // A new address probes at once: its _lastProbe is long.MinValue, and now - long.MinValue overflows
        // to a negative number for every now >= 0, so the interval test alone would never fire.
        if (_probes[slot] < MaxProbes && (_probes[slot] == 0 || now - _lastProbe[slot] >= RetransmitTicks))
        {
            _probes[slot]++;
            _lastProbe[slot] = now;
            probe = true;
        }
        return result;
    }

    /// <summary>Takes every packet parked for an address that just resolved. Returns how many were copied.</summary>
    public int Release(uint address, Span<int> packets)
    {
        var slot = address == 0 ? -1 : Find(address);
        if (slot < 0) return 0;
        var n = _count[slot];
        _packets.AsSpan(slot * _perAddress, n).CopyTo(packets);
        Free(slot);
        return n;
    }

    /// <summary>
    /// Walks the table: addresses due a retransmit are reported through <paramref name="probes"/>; those that
    /// used all probes and waited one more interval give up their packets into <paramref name="expired"/>.
    /// Returns the number of expired packets written.
    /// </summary>
    public int Tick(long now, Span<(uint Address, int Port)> probes, out int probeCount, Span<int> expired)
    {
        probeCount = 0;
        var n = 0;
        for (var slot = 0; slot < _address.Length; slot++)
        {
            if (_address[slot] == 0 || now - _lastProbe[slot] < RetransmitTicks) continue;
            if (_probes[slot] < MaxProbes)
            {
                if (probeCount == probes.Length) continue;
                probes[probeCount++] = (_address[slot], _port[slot]);
                _probes[slot]++;
                _lastProbe[slot] = now;
            }
            else if (n + _count[slot] <= expired.Length)
            {
                _packets.AsSpan(slot * _perAddress, _count[slot]).CopyTo(expired[n..]);
                n += _count[slot];
                Free(slot);
            }
        }
        return n;
    }

    /// <summary>Gives up every parked packet (shutdown). Returns how many were written.</summary>
    public int ReleaseAll(Span<int> packets)
    {
        var n = 0;
        for (var slot = 0; slot < _address.Length; slot++)
        {
            if (_address[slot] == 0 || n + _count[slot] > packets.Length) continue;
            _packets.AsSpan(slot * _perAddress, _count[slot]).CopyTo(packets[n..]);
            n += _count[slot];
            Free(slot);
        }
        return n;
    }

    private int Find(uint address)
    {
        for (var i = 0; i < _address.Length; i++)
        {
            if (_address[i] == address && (address != 0 || _count[i] == 0)) return i;
        }
        return -1;
    }

    private void Free(int slot)
    {
        _address[slot] = 0;
        _count[slot] = 0;
        _used--;
    }
}
