using FastOverlay.Ports.Native;

namespace FastOverlay.Ports;

/// <summary>
/// Writes a classic BPF program (linux/filter.h, Documentation/networking/filter.rst) with forward labels. The
/// kernel's checker (bpf_check_classic) accepts only forward jumps, and a conditional jump reaches at most 255
/// instructions ahead (jt/jf are one byte); <c>ja</c> takes a 32-bit offset. Code that needs to reach further
/// than 255 goes through a <c>ja</c> (a trampoline); <see cref="Build"/> throws if it did not.
/// </summary>
internal sealed class BpfAssembler
{
    // Opcode classes, sizes, modes, operations and sources (bpf_common.h).
    public const ushort Ld = 0x00, Ldx = 0x01, St = 0x02, Alu = 0x04, Jmp = 0x05, Ret = 0x06, Misc = 0x07;
    public const ushort W = 0x00, H = 0x08, B = 0x10;
    public const ushort Imm = 0x00, Abs = 0x20, Ind = 0x40, Mem = 0x60, Msh = 0xa0;
    public const ushort Or = 0x40, Lsh = 0x60;
    public const ushort Ja = 0x00, Jeq = 0x10, Jgt = 0x20, Jge = 0x30, Jset = 0x40;
    public const ushort K = 0x00, X = 0x08;
    public const ushort Tax = 0x00;
    /// <summary>SKF_AD_OFF + SKF_AD_PKTTYPE: a load from here reads skb->pkt_type (PACKET_HOST = 0, ...).</summary>
    public const uint AncillaryPacketType = 0xFFFFF000 + 4;
    /// <summary>BPF_MAXINSNS: the kernel refuses longer classic programs.</summary>
    public const int MaxInstructions = 4096;

    private readonly List<SockFilter> _code = [];
    private readonly List<int> _labels = [];
    private readonly List<(int At, int Label, bool True)> _fixups = [];

    public int Count => _code.Count;

    public int NewLabel()
    {
        _labels.Add(-1);
        return _labels.Count - 1;
    }

    public void Mark(int label) => _labels[label] = _code.Count;

    public void Emit(ushort code, uint k = 0) => _code.Add(new SockFilter { Code = code, K = k });

    public void Return(uint k) => Emit(Ret | K, k);

    /// <summary>A conditional jump against the constant <paramref name="k"/>; -1 for a target means the next instruction.</summary>
    public void Jump(ushort operation, uint k, int whenTrue, int whenFalse)
    {
        if (whenTrue >= 0) _fixups.Add((_code.Count, whenTrue, true));
        if (whenFalse >= 0) _fixups.Add((_code.Count, whenFalse, false));
        Emit((ushort)(Jmp | operation | K), k);
    }

    /// <summary>An unconditional jump, which reaches any later instruction.</summary>
    public void Always(int label)
    {
        _fixups.Add((_code.Count, label, true));
        Emit(Jmp | Ja);
    }

    public SockFilter[] Build()
    {
        var code = _code.ToArray();
        foreach (var (at, label, whenTrue) in _fixups)
        {
            var target = _labels[label];
            if (target <= at) throw new InvalidOperationException($"BPF label {label} used at {at} is not placed after it");
            var offset = target - at - 1;
            ref var instruction = ref code[at];
            if (instruction.Code == (Jmp | Ja)) instruction.K = (uint)offset;
            else if (offset > byte.MaxValue) throw new InvalidOperationException($"BPF conditional jump at {at} is {offset} instructions long");
            else if (whenTrue) instruction.JumpTrue = (byte)offset;
            else instruction.JumpFalse = (byte)offset;
        }
        return code;
    }
}
