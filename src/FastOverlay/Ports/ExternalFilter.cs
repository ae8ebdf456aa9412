using FastOverlay.Config;
using FastOverlay.Ports.Native;
using static FastOverlay.Ports.BpfAssembler;

namespace FastOverlay.Ports;

/// <summary>How closely an <see cref="ExternalFilterProgram"/> matches its <see cref="ExternalTraffic"/>.</summary>
public enum ExternalFilterPrecision
{
    /// <summary>Exactly the NodePorts and frontends.</summary>
    Exact,
    /// <summary>The node's ports as one range per protocol; every TCP/UDP port of each external address.</summary>
    ExternalAddresses,
    /// <summary>The node's ports as one range per protocol; TCP/UDP to any address from the lowest external one to the highest.</summary>
    ExternalAddressRange,
}

/// <summary>A compiled filter for the external socket: attach with <see cref="ExternalPort.UpdateFilter(ExternalFilterProgram)"/>.</summary>
public sealed class ExternalFilterProgram
{
    internal ExternalFilterProgram(SockFilter[] code, ExternalFilterPrecision precision, string summary, bool passesNothing = false)
    {
        Code = code;
        Precision = precision;
        Summary = summary;
        PassesNothing = passesNothing;
    }

    internal SockFilter[] Code { get; }
    public int Length => Code.Length;
    public ExternalFilterPrecision Precision { get; }
    /// <summary>One line for the log; says when the filter is coarser than asked and why.</summary>
    public string Summary { get; }
    /// <summary>No NodePort and no frontend: the program rejects every frame.</summary>
    public bool PassesNothing { get; }
}

/// <summary>
/// Compiles <see cref="ExternalTraffic"/> into the classic BPF program the external AF_PACKET socket runs in the
/// kernel, so that only IPv4 TCP/UDP first fragments to a NodePort on the node's IP, or to a frontend, are
/// copied to userspace; VXLAN (UDP 8472 to the same IP) and the node's own traffic never are.
///
/// Every packet is reduced to two 32-bit values: the destination address and a key, protocol &lt;&lt; 16 | port.
/// The (address, key) pairs are grouped by one of them (whichever orientation is shorter): each group is a list
/// of outer values (contiguous runs as one range check) sharing the same inner set, checked the same way.
/// Frontends on the node's own IP join the node's NodePorts, so the node IP is decided in one place. When the
/// exact program is longer than the kernel's 4096 instructions it falls back to a coarser one and says so in
/// <see cref="ExternalFilterProgram.Summary"/>; userspace checks every frame against the real tables anyway.
/// </summary>
public static class ExternalFilter
{
    /// <summary>The snap length returned for a match: the whole frame (tcpdump's 262144, above any GRO frame).</summary>
    internal const uint AcceptLength = 0x40000;
    private const int ChecksPerChunk = 100;

    public static ExternalFilterProgram Compile(ExternalTraffic traffic, int maxInstructions = MaxInstructions)
    {
        var node = traffic.NodeIp.Value;
        var pairs = Pairs(traffic);
        if (pairs.Count == 0)
        {
            var nothing = new BpfAssembler();
            nothing.Return(0);
            return new ExternalFilterProgram(nothing.Build(), ExternalFilterPrecision.Exact, "nothing to receive: the filter passes no frame", passesNothing: true);
        }
        var addresses = pairs.Where(p => p.Ip != node).Select(p => p.Ip).Distinct().Count();
        var byIp = Exact(pairs, outerIsIp: true);
        var byKey = Exact(pairs, outerIsIp: false);
        var exact = byIp.Length <= byKey.Length ? byIp : byKey;
        if (exact.Length <= maxInstructions)
            return new ExternalFilterProgram(exact, ExternalFilterPrecision.Exact,
                $"exact: {traffic.TcpNodePorts.Count} TCP and {traffic.UdpNodePorts.Count} UDP NodePorts on {traffic.NodeIp}, {traffic.Frontends.Count} frontends on {addresses} other addresses ({exact.Length} BPF instructions)");

        var nodeRanges = NodeKeyRanges(pairs, node);
        var nodeText = nodeRanges.Count == 0 ? "nothing" : string.Join(" and ", nodeRanges.Select(r => $"{(L4Protocol)(r.Lo >> 16)} {r.Lo & 0xFFFF}-{r.Hi & 0xFFFF}".ToUpperInvariant()));
        var why = $"coarse: the exact filter needs {exact.Length} BPF instructions (the kernel takes {maxInstructions}); receiving {nodeText} on {traffic.NodeIp}";
        var perAddress = Coarse(pairs, node, nodeRanges, addressRange: false);
        if (perAddress.Length <= maxInstructions)
            return new ExternalFilterProgram(perAddress, ExternalFilterPrecision.ExternalAddresses,
                $"{why} and any TCP/UDP port of {addresses} external addresses ({perAddress.Length} instructions); userspace checks every frame");
        var range = Coarse(pairs, node, nodeRanges, addressRange: true);
        var ips = pairs.Where(p => p.Ip != node).Select(p => new Wire.Ipv4Address(p.Ip)).ToList();
        return new ExternalFilterProgram(range, ExternalFilterPrecision.ExternalAddressRange,
            $"{why} and any TCP/UDP to {ips.Min()}-{ips.Max()} ({addresses} external addresses; {range.Length} instructions); userspace checks every frame");
    }

    internal static uint Key(L4Protocol protocol, ushort port) => (uint)protocol << 16 | port;

    /// <summary>The exact program in one orientation (tests hold both to the same answers).</summary>
    internal static SockFilter[] CompileExact(ExternalTraffic traffic, bool outerIsIp) => Exact(Pairs(traffic), outerIsIp);

    private static HashSet<(uint Ip, uint Key)> Pairs(ExternalTraffic traffic)
    {
        var node = traffic.NodeIp.Value;
        var pairs = new HashSet<(uint Ip, uint Key)>();
        foreach (var port in traffic.TcpNodePorts) pairs.Add((node, Key(L4Protocol.Tcp, port)));
        foreach (var port in traffic.UdpNodePorts) pairs.Add((node, Key(L4Protocol.Udp, port)));
        foreach (var f in traffic.Frontends) pairs.Add((f.Ip.Value, Key(f.Protocol, f.Port)));
        return pairs;
    }

    private static SockFilter[] Exact(HashSet<(uint Ip, uint Key)> pairs, bool outerIsIp)
    {
        var inner = new Dictionary<uint, List<uint>>();
        foreach (var (ip, key) in pairs)
        {
            var (o, i) = outerIsIp ? (ip, key) : (key, ip);
            if (!inner.TryGetValue(o, out var list)) inner[o] = list = [];
            list.Add(i);
        }
        // Outer values with the same inner set share one block: many LoadBalancer IPs that all serve TCP 80/443,
        // or one port served on many addresses.
        var groups = new Dictionary<string, (List<uint> Outer, List<(uint Lo, uint Hi)> Inner)>(StringComparer.Ordinal);
        foreach (var (o, list) in inner.OrderBy(e => e.Key))
        {
            list.Sort();
            var signature = string.Join(',', list);
            if (!groups.TryGetValue(signature, out var group)) groups[signature] = group = ([], Ranges(list));
            group.Outer.Add(o);
        }
        var asm = new BpfAssembler();
        Prelude(asm, loadKey: !outerIsIp);
        foreach (var (outer, innerRanges) in groups.Values)
            Group(asm, Ranges(outer), innerRanges, innerIsKey: outerIsIp);
        asm.Return(0);
        return asm.Build();
    }

    private static SockFilter[] Coarse(HashSet<(uint Ip, uint Key)> pairs, uint node, List<(uint Lo, uint Hi)> nodeRanges, bool addressRange)
    {
        var asm = new BpfAssembler();
        Prelude(asm, loadKey: false);
        // The node's IP first, always: what it does not take is dropped there, so the address range below can
        // never catch VXLAN or other traffic to the node itself.
        Group(asm, [(node, node)], nodeRanges, innerIsKey: true);
        var others = pairs.Where(p => p.Ip != node).Select(p => p.Ip).Distinct().Order().ToList();
        if (others.Count > 0) Group(asm, addressRange ? [(others[0], others[^1])] : Ranges(others), null, innerIsKey: false);
        asm.Return(0);
        return asm.Build();
    }

    private static List<(uint Lo, uint Hi)> NodeKeyRanges(HashSet<(uint Ip, uint Key)> pairs, uint node)
    {
        var keys = pairs.Where(p => p.Ip == node).Select(p => p.Key).ToList();
        return [.. keys.GroupBy(k => k >> 16).OrderBy(g => g.Key).Select(g => (g.Min(), g.Max()))];
    }

    /// <summary>
    /// Leaves the destination address in A and the key in M[0]. Drops what is not for this host (pkt_type, so a
    /// promiscuous interface does not hand us other hosts' frames), not IPv4, a later fragment (no ports in it:
    /// the first fragment is enough for userspace to decide), or neither TCP nor UDP. The IPv4 header length
    /// comes from the "4*([14]&amp;0xf)" load, so options do not hide the port.
    /// </summary>
    private static void Prelude(BpfAssembler asm, bool loadKey)
    {
        var drop = asm.NewLabel();
        var transport = asm.NewLabel();
        asm.Emit(Ld | B | Abs, AncillaryPacketType);
        asm.Jump(Jeq, 0, -1, drop);
        asm.Emit(Ld | H | Abs, 12);
        asm.Jump(Jeq, Wire.Ethernet.TypeIpv4, -1, drop);
        asm.Emit(Ld | H | Abs, 20);
        asm.Jump(Jset, 0x1FFF, drop, -1);
        asm.Emit(Ld | B | Abs, 23);
        asm.Jump(Jeq, (uint)L4Protocol.Tcp, transport, -1);
        asm.Jump(Jeq, (uint)L4Protocol.Udp, transport, drop);
        asm.Mark(drop);
        asm.Return(0);
        asm.Mark(transport);
        asm.Emit(Alu | Lsh | K, 16);
        asm.Emit(St, 0);
        asm.Emit(Ldx | B | Msh, 14);
        asm.Emit(Ld | H | Ind, 16);
        asm.Emit(Misc | Tax);
        asm.Emit(Ld | Mem, 0);
        asm.Emit(Alu | Or | X);
        asm.Emit(St, 0);
        LoadValue(asm, key: loadKey);
    }

    /// <summary>A = the key (from M[0]) or the destination address (IPv4 bytes 16-19, frame offset 30).</summary>
    private static void LoadValue(BpfAssembler asm, bool key)
    {
        if (key) asm.Emit(Ld | Mem, 0);
        else asm.Emit(Ld | W | Abs, 30);
    }

    /// <summary>
    /// If A is one of <paramref name="outer"/>: load the inner value (the key, or else the address) and accept if it is one of
    /// <paramref name="inner"/> (null: accept at once), else drop. Otherwise fall through to the next group, A
    /// unchanged. Checks come in chunks of 100 so every conditional jump stays within 255 instructions; a chunk
    /// that is not the last reaches the block through a trampoline, and each inner chunk has its own accept.
    /// </summary>
    private static void Group(BpfAssembler asm, List<(uint Lo, uint Hi)> outer, List<(uint Lo, uint Hi)>? inner, bool innerIsKey)
    {
        var block = asm.NewLabel();
        var next = asm.NewLabel();
        for (var start = 0; start < outer.Count; start += ChecksPerChunk)
        {
            var last = start + ChecksPerChunk >= outer.Count;
            var target = last ? block : asm.NewLabel();
            foreach (var range in outer.Skip(start).Take(ChecksPerChunk)) RangeJump(asm, range, target);
            if (last)
            {
                asm.Always(next);
                break;
            }
            var after = asm.NewLabel();
            asm.Always(after);
            asm.Mark(target);
            asm.Always(block);
            asm.Mark(after);
        }
        asm.Mark(block);
        if (inner is null || inner.Count == 0)
        {
            asm.Return(inner is null ? AcceptLength : 0);
            asm.Mark(next);
            return;
        }
        LoadValue(asm, key: innerIsKey);
        for (var start = 0; start < inner.Count; start += ChecksPerChunk)
        {
            var accept = asm.NewLabel();
            foreach (var range in inner.Skip(start).Take(ChecksPerChunk)) RangeJump(asm, range, accept);
            var more = asm.NewLabel();
            if (start + ChecksPerChunk >= inner.Count) asm.Return(0);
            else asm.Always(more);
            asm.Mark(accept);
            asm.Return(AcceptLength);
            asm.Mark(more);
        }
        asm.Mark(next);
    }

    /// <summary>Jumps to <paramref name="target"/> if A is in the range; one jeq, or jge + jgt.</summary>
    private static void RangeJump(BpfAssembler asm, (uint Lo, uint Hi) range, int target)
    {
        if (range.Lo == range.Hi)
        {
            asm.Jump(Jeq, range.Lo, target, -1);
            return;
        }
        var below = asm.NewLabel();
        asm.Jump(Jge, range.Lo, -1, below);
        asm.Jump(Jgt, range.Hi, -1, target);
        asm.Mark(below);
    }

    /// <summary>Sorted distinct values as runs of consecutive ones.</summary>
    private static List<(uint Lo, uint Hi)> Ranges(IEnumerable<uint> values)
    {
        var ranges = new List<(uint Lo, uint Hi)>();
        foreach (var v in values.Distinct().Order())
        {
            if (ranges.Count > 0 && ranges[^1].Hi != uint.MaxValue && ranges[^1].Hi + 1 == v) ranges[^1] = (ranges[^1].Lo, v);
            else ranges.Add((v, v));
        }
        return ranges;
    }
}
