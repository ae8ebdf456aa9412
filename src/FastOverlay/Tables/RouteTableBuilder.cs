using FastOverlay.Wire;

namespace FastOverlay.Tables;

/// <summary>
/// Builds the next version of a <see cref="RouteTable"/> from a published one. Chunks and groups of the base
/// version are never written: the first write to one copies it (copy on write), the rest are shared.
/// The entry update rules are rte_lpm's: an add overwrites entries whose depth is not greater than its own;
/// a delete rewrites the entries it owned (same depth) with the next shorter covering rule.
/// </summary>
public sealed class RouteTableBuilder
{
    private readonly uint[][] _chunks;
    private readonly long[] _chunkUniform;
    private readonly bool[] _chunkOwned;
    private readonly List<uint[]?> _groups;
    private readonly HashSet<int> _groupsOwned = [];
    private readonly Stack<int> _freeGroups = new();
    private readonly Dictionary<Ipv4Prefix, uint> _rules;
    private readonly Dictionary<uint, uint[]> _uniformChunks = [];

    public RouteTableBuilder(RouteTable baseTable)
    {
        _chunks = (uint[][])baseTable.Chunks.Clone();
        _chunkUniform = (long[])baseTable.ChunkUniform.Clone();
        _chunkOwned = new bool[RouteTable.ChunkCount];
        _groups = [.. baseTable.Groups];
        for (var i = _groups.Count - 1; i >= 0; i--)
            if (_groups[i] is null) _freeGroups.Push(i);
        _rules = new Dictionary<Ipv4Prefix, uint>(baseTable.Rules);
        for (var i = 0; i < RouteTable.ChunkCount; i++)
            if (_chunkUniform[i] >= 0) _uniformChunks.TryAdd((uint)_chunkUniform[i], _chunks[i]);
    }

    internal static RouteTable CreateEmpty()
    {
        var zero = GC.AllocateArray<uint>(RouteTable.ChunkEntries, pinned: true);
        var chunks = new uint[RouteTable.ChunkCount][];
        Array.Fill(chunks, zero);
        return new RouteTable(chunks, new long[RouteTable.ChunkCount], [], []);
    }

    public int Count => _rules.Count;

    /// <summary>Adds a route, or replaces the value of an existing one.</summary>
    public void Add(Ipv4Prefix prefix, uint value)
    {
        if (value > RouteTable.MaxValue) throw new ArgumentOutOfRangeException(nameof(value), value, $"route values are 24-bit (at most {RouteTable.MaxValue})");
        _rules[prefix] = value;
        var entry = Entry(value, prefix.Length);
        if (prefix.Length <= 24)
            AddShort(prefix, entry);
        else
            AddLong(prefix, entry);
    }

    public bool Remove(Ipv4Prefix prefix)
    {
        if (!_rules.Remove(prefix)) return false;
        var replacement = CoveringEntry(prefix);
        if (prefix.Length <= 24)
            RemoveShort(prefix, replacement);
        else
            RemoveLong(prefix, replacement);
        return true;
    }

    public void Clear()
    {
        foreach (var prefix in _rules.Keys.ToArray()) Remove(prefix);
    }

    public RouteTable Build()
    {
        var table = new RouteTable((uint[][])_chunks.Clone(), (long[])_chunkUniform.Clone(), [.. _groups], new Dictionary<Ipv4Prefix, uint>(_rules));
        // Everything is published now: later writes through this builder must copy again.
        Array.Clear(_chunkOwned);
        _groupsOwned.Clear();
        return table;
    }

    private static uint Entry(uint value, int depth) => RouteTable.ValidBit | ((uint)depth << RouteTable.DepthShift) | value;

    private static bool Overwritable(uint entry, int depth) =>
        (entry & RouteTable.ValidBit) == 0 || ((entry >> RouteTable.DepthShift) & RouteTable.DepthMask) <= (uint)depth;

    private static bool OwnedBy(uint entry, int depth) =>
        (entry & RouteTable.ValidBit) != 0 && (entry & RouteTable.ExtendedBit) == 0 &&
        ((entry >> RouteTable.DepthShift) & RouteTable.DepthMask) == (uint)depth;

    /// <summary>The entry of the longest remaining rule strictly shorter than the prefix that covers it (0 if none).</summary>
    private uint CoveringEntry(Ipv4Prefix prefix)
    {
        for (var length = prefix.Length - 1; length >= 0; length--)
        {
            if (_rules.TryGetValue(new Ipv4Prefix(prefix.Address, length), out var value))
                return Entry(value, length);
        }
        return 0;
    }

    private void AddShort(Ipv4Prefix prefix, uint entry)
    {
        var first = prefix.Address >> 8;
        var count = 1u << (24 - prefix.Length);
        ForEachChunkRange(first, count, entry, prefix.Length, add: true);
    }

    private void RemoveShort(Ipv4Prefix prefix, uint replacement)
    {
        var first = prefix.Address >> 8;
        var count = 1u << (24 - prefix.Length);
        ForEachChunkRange(first, count, replacement, prefix.Length, add: false);
    }

    private void ForEachChunkRange(uint first, uint count, uint entry, int depth, bool add)
    {
        var end = first + count;
        while (first < end)
        {
            var chunk = (int)(first >> RouteTable.ChunkBits);
            var offset = (int)(first & (RouteTable.ChunkEntries - 1));
            var n = (int)Math.Min(end - first, (uint)(RouteTable.ChunkEntries - offset));
            var uniform = _chunkUniform[chunk];
            if (n == RouteTable.ChunkEntries && uniform >= 0)
            {
                // A whole chunk of one value (e.g. under a default route) stays one shared array.
                var current = (uint)uniform;
                var applies = add ? Overwritable(current, depth) : OwnedBy(current, depth);
                if (applies) SetUniform(chunk, entry);
            }
            else
            {
                var entries = OwnChunk(chunk);
                for (var i = offset; i < offset + n; i++)
                {
                    var current = entries[i];
                    if ((current & RouteTable.ExtendedBit) != 0)
                    {
                        var group = OwnGroup((int)(current & RouteTable.ValueMask));
                        for (var j = 0; j < RouteTable.GroupEntries; j++)
                        {
                            if (add ? Overwritable(group[j], depth) : OwnedBy(group[j], depth))
                                group[j] = entry;
                        }
                    }
                    else if (add ? Overwritable(current, depth) : OwnedBy(current, depth))
                    {
                        entries[i] = entry;
                    }
                }
            }
            first += (uint)n;
        }
    }

    private void AddLong(Ipv4Prefix prefix, uint entry)
    {
        var index = prefix.Address >> 8;
        var chunk = (int)(index >> RouteTable.ChunkBits);
        var offset = (int)(index & (RouteTable.ChunkEntries - 1));
        var entries = OwnChunk(chunk);
        var current = entries[offset];
        uint[] group;
        if ((current & RouteTable.ExtendedBit) != 0)
        {
            group = OwnGroup((int)(current & RouteTable.ValueMask));
        }
        else
        {
            var groupIndex = AllocateGroup(current);
            group = _groups[groupIndex]!;
            entries[offset] = RouteTable.ValidBit | RouteTable.ExtendedBit | (uint)groupIndex;
        }
        var first = (int)(prefix.Address & 0xFF);
        var count = 1 << (32 - prefix.Length);
        for (var j = first; j < first + count; j++)
        {
            if (Overwritable(group[j], prefix.Length)) group[j] = entry;
        }
    }

    private void RemoveLong(Ipv4Prefix prefix, uint replacement)
    {
        var index = prefix.Address >> 8;
        var chunk = (int)(index >> RouteTable.ChunkBits);
        var offset = (int)(index & (RouteTable.ChunkEntries - 1));
        var current = _chunks[chunk][offset];
        if ((current & RouteTable.ExtendedBit) == 0) return;
        var groupIndex = (int)(current & RouteTable.ValueMask);
        var group = OwnGroup(groupIndex);
        var first = (int)(prefix.Address & 0xFF);
        var count = 1 << (32 - prefix.Length);
        for (var j = first; j < first + count; j++)
        {
            if (OwnedBy(group[j], prefix.Length)) group[j] = replacement;
        }
        // When no /25–/32 rule is left in the group every entry holds the same /0–/24 entry: fold it back.
        foreach (var e in group)
        {
            if ((e & RouteTable.ValidBit) != 0 && ((e >> RouteTable.DepthShift) & RouteTable.DepthMask) > 24) return;
        }
        OwnChunk(chunk)[offset] = group[0];
        _groups[groupIndex] = null;
        _groupsOwned.Remove(groupIndex);
        _freeGroups.Push(groupIndex);
    }

    private uint[] OwnChunk(int chunk)
    {
        if (_chunkOwned[chunk]) return _chunks[chunk];
        var copy = GC.AllocateUninitializedArray<uint>(RouteTable.ChunkEntries, pinned: true);
        _chunks[chunk].CopyTo(copy, 0);
        _chunks[chunk] = copy;
        _chunkOwned[chunk] = true;
        _chunkUniform[chunk] = -1;
        return copy;
    }

    private void SetUniform(int chunk, uint entry)
    {
        if (!_uniformChunks.TryGetValue(entry, out var shared))
        {
            shared = GC.AllocateUninitializedArray<uint>(RouteTable.ChunkEntries, pinned: true);
            Array.Fill(shared, entry);
            _uniformChunks[entry] = shared;
        }
        _chunks[chunk] = shared;
        _chunkUniform[chunk] = entry;
        _chunkOwned[chunk] = false;
    }

    private uint[] OwnGroup(int index)
    {
        var group = _groups[index]!;
        if (_groupsOwned.Contains(index)) return group;
        var copy = GC.AllocateUninitializedArray<uint>(RouteTable.GroupEntries, pinned: true);
        group.CopyTo(copy, 0);
        _groups[index] = copy;
        _groupsOwned.Add(index);
        return copy;
    }

    private int AllocateGroup(uint fill)
    {
        var group = GC.AllocateUninitializedArray<uint>(RouteTable.GroupEntries, pinned: true);
        Array.Fill(group, fill);
        int index;
        if (_freeGroups.Count > 0)
        {
            index = _freeGroups.Pop();
            _groups[index] = group;
        }
        else
        {
            index = _groups.Count;
            if (index > (int)RouteTable.ValueMask) throw new InvalidOperationException("route table: out of second-level groups (16M /25–/32 blocks)");
            _groups.Add(group);
        }
        _groupsOwned.Add(index);
        return index;
    }
}
