using System.Buffers.Binary;
using FastOverlay.Ports.Native;

namespace FastOverlay.Tests.Ports;

/// <summary>
/// A classic BPF interpreter with the kernel's rules (net/core/filter.c): the checks bpf_check_classic makes
/// before attaching (forward jumps inside the program, scratch slots 0-15, a return at the end, at most 4096
/// instructions) and the run-time semantics (a load past the end of the packet returns 0, i.e. drops; ancillary
/// loads at SKF_AD_OFF). Only SKF_AD_PKTTYPE is implemented among the ancillary values.
/// </summary>
internal static class ClassicBpf
{
    public static void Check(SockFilter[] program)
    {
        Assert.InRange(program.Length, 1, 4096);
        for (var pc = 0; pc < program.Length; pc++)
        {
            var i = program[pc];
            var cls = i.Code & 0x07;
            if (cls == 0x05)
            {
                var far = (i.Code & 0xF0) == 0x00 ? pc + 1 + (long)i.K : pc + 1 + Math.Max(i.JumpTrue, i.JumpFalse);
                Assert.True(far < program.Length, $"jump at {pc} leaves the program");
            }
            if (cls is 0x02 or 0x03 || (cls is 0x00 or 0x01 && (i.Code & 0xE0) == 0x60)) Assert.True(i.K < 16, $"scratch slot {i.K} at {pc}");
        }
        Assert.Equal(0x06, program[^1].Code & 0x07);
    }

    /// <summary>Runs the program over a frame as the kernel does for a packet socket; returns the snap length (0 = drop).</summary>
    public static uint Run(SockFilter[] program, ReadOnlySpan<byte> frame, byte packetType = 0)
    {
        Check(program);
        uint a = 0, x = 0;
        Span<uint> memory = stackalloc uint[16];
        for (var pc = 0; pc < program.Length; pc++)
        {
            var i = program[pc];
            var k = i.K;
            switch (i.Code & 0x07)
            {
                case 0x00: // LD
                    if (!Load(i.Code, k, x, frame, packetType, memory, out a)) return 0;
                    break;
                case 0x01: // LDX
                    switch (i.Code & 0xE0)
                    {
                        case 0x00: x = k; break;
                        case 0x60: x = memory[(int)k]; break;
                        case 0x80: x = (uint)frame.Length; break;
                        case 0xA0:
                            if (k >= frame.Length) return 0;
                            x = (uint)(4 * (frame[(int)k] & 0x0F));
                            break;
                        default: throw new InvalidOperationException($"ldx mode {i.Code:x}");
                    }
                    break;
                case 0x02: memory[(int)k] = a; break;
                case 0x03: memory[(int)k] = x; break;
                case 0x04:
                    a = Alu(i.Code, a, (i.Code & 0x08) != 0 ? x : k);
                    break;
                case 0x05:
                    var operand = (i.Code & 0x08) != 0 ? x : k;
                    switch (i.Code & 0xF0)
                    {
                        case 0x00: pc += (int)k; break;
                        case 0x10: pc += a == operand ? i.JumpTrue : i.JumpFalse; break;
                        case 0x20: pc += a > operand ? i.JumpTrue : i.JumpFalse; break;
                        case 0x30: pc += a >= operand ? i.JumpTrue : i.JumpFalse; break;
                        case 0x40: pc += (a & operand) != 0 ? i.JumpTrue : i.JumpFalse; break;
                        default: throw new InvalidOperationException($"jump {i.Code:x}");
                    }
                    break;
                case 0x06: return (i.Code & 0x18) == 0x10 ? a : k;
                case 0x07:
                    if ((i.Code & 0xF8) == 0x00) x = a;
                    else a = x;
                    break;
            }
        }
        throw new InvalidOperationException("fell off the end of the program");
    }

    private static bool Load(ushort code, uint k, uint x, ReadOnlySpan<byte> frame, byte packetType, Span<uint> memory, out uint a)
    {
        a = 0;
        var size = (code & 0x18) switch { 0x00 => 4, 0x08 => 2, _ => 1 };
        long offset;
        switch (code & 0xE0)
        {
            case 0x00: a = k; return true;
            case 0x60: a = memory[(int)k]; return true;
            case 0x80: a = (uint)frame.Length; return true;
            case 0x20: offset = k; break;
            case 0x40: offset = (long)x + k; break;
            default: throw new InvalidOperationException($"ld mode {code:x}");
        }
        if (offset >= 0xFFFFF000)
        {
            Assert.Equal(0xFFFFF004u, (uint)offset);
            a = packetType;
            return true;
        }
        if (offset + size > frame.Length) return false;
        var bytes = frame.Slice((int)offset, size);
        a = size switch { 4 => BinaryPrimitives.ReadUInt32BigEndian(bytes), 2 => BinaryPrimitives.ReadUInt16BigEndian(bytes), _ => bytes[0] };
        return true;
    }

    private static uint Alu(ushort code, uint a, uint operand) => (code & 0xF0) switch
    {
        0x00 => a + operand,
        0x10 => a - operand,
        0x20 => a * operand,
        0x40 => a | operand,
        0x50 => a & operand,
        0x60 => a << (int)operand,
        0x70 => a >> (int)operand,
        0x80 => (uint)-(int)a,
        0xA0 => a ^ operand,
        _ => throw new InvalidOperationException($"alu {code:x}"),
    };

    /// <summary>tcpdump -d's notation, for a failing test's message.</summary>
    public static string Disassemble(SockFilter[] program) =>
        string.Join('\n', program.Select((i, pc) => $"({pc:000}) code 0x{i.Code:x2} jt {i.JumpTrue} jf {i.JumpFalse} k 0x{i.K:x}"));
}
