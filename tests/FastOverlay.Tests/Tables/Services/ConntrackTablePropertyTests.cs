using FastOverlay.Pipeline;
using FastOverlay.Tables.Services;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace FastOverlay.Tests.Tables.Services;

/// <summary>
/// The conntrack table against a model that knows only the rules: which flows are live, in which timeout class,
/// since when. Capacities stay at or below the clock hand's budget, so the hand sees every flow on each insert
/// and the model can say exactly when an insert must succeed (a slot is free or expired) and when it must fail.
/// </summary>
public class ConntrackTablePropertyTests
{
    private const int Clients = 24;

    internal enum OpKind : byte { Insert, Remove, Observe, Advance }

    internal readonly record struct Op(OpKind Kind, int Client, byte Protocol, bool Reply, byte TcpFlags, int Advance)
    {
        public override string ToString() => Kind switch
        {
            OpKind.Insert => $"insert {Client}/{Protocol}",
            OpKind.Remove => $"remove {Client}",
            OpKind.Observe => $"observe {Client} {(Reply ? "reply" : "orig")} {TcpFlags:X2}",
            _ => $"+{Advance}",
        };
    }

    internal sealed record Case(int Capacity, Op[] Ops)
    {
        public override string ToString() => $"capacity {Capacity}: {string.Join("; ", Ops)}";
    }

    // Time advances in these steps (in timeout units of a second, ± a tick) so boundaries are hit exactly.
    private static readonly Gen<int> Advance = Gen.Frequency(
        (4, Gen.Constant(0)), (2, Gen.Choose(1, 3)), (2, Gen.Elements(-1, 1)), (1, Gen.Choose(4, 70)));

    private static readonly Gen<Op> Ops =
        from kind in Gen.Frequency(
            (5, Gen.Constant(OpKind.Insert)), (1, Gen.Constant(OpKind.Remove)),
            (4, Gen.Constant(OpKind.Observe)), (3, Gen.Constant(OpKind.Advance)))
        from client in Gen.Choose(0, Clients - 1)
        from protocol in Gen.Elements(ConntrackTableTests.Tcp, ConntrackTableTests.Udp, ConntrackTableTests.Icmp)
        from reply in Gen.Elements(true, false)
        from flags in Gen.Elements((byte)0, ConntrackTableTests.Ack, ConntrackTableTests.Fin, ConntrackTableTests.Rst, (byte)0x11)
        from advance in Advance
        select new Op(kind, client, protocol, reply, flags, advance);

    private static readonly Gen<Case> Cases =
        from capacity in Gen.Choose(1, ConntrackTable.ReclaimBudget)
        from n in Gen.Choose(1, 150)
        from ops in Gen.ArrayOf(Ops, n)
        select new Case(capacity, ops);

    // Timeouts in seconds: 5 syn, 40 established, 2 closing, 3 udp, 9 stream, 4 icmp.
    private static readonly ConntrackTimeouts Timeouts = new(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(40), TimeSpan.FromSeconds(2),
        TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(9), TimeSpan.FromSeconds(4));

    private sealed class ModelFlow
    {
        public int Index;
        public byte Protocol;
        public ConntrackFlags Flags;
        public long LastSeen;

        public long Timeout()
        {
            var reply = (Flags & ConntrackFlags.SeenReply) != 0;
            var closing = (Flags & ConntrackFlags.Rst) != 0 ||
                ((Flags & ConntrackFlags.OriginalFin) != 0 && (Flags & ConntrackFlags.ReplyFin) != 0);
            var span = Protocol switch
            {
                ConntrackTableTests.Tcp => closing ? Timeouts.TcpClosing : reply ? Timeouts.TcpEstablished : Timeouts.TcpSyn,
                ConntrackTableTests.Icmp => Timeouts.Icmp,
                _ => reply ? Timeouts.UdpStream : Timeouts.Udp,
            };
            return NodeOptions.Ticks(span);
        }
    }

    [Property(MaxTest = 200)]
    public Property Agrees_with_a_model_of_live_flows() => Prop.ForAll(Arb.From(Cases), c =>
    {
        var table = new ConntrackTable(c.Capacity, Timeouts, ConntrackTableTests.Seed);
        var second = NodeOptions.Ticks(TimeSpan.FromSeconds(1));
        var live = new Dictionary<int, ModelFlow>();
        long now = 1_000;
        long failures = 0;
        for (var step = 0; step < c.Ops.Length; step++)
        {
            var op = c.Ops[step];
            live.TryGetValue(op.Client, out var m);
            switch (op.Kind)
            {
                case OpKind.Insert when m is null:
                    var (o, r) = ConntrackTableTests.Flow(op.Client, op.Protocol);
                    var index = table.Insert(o, r, (uint)op.Client, 0, ConntrackFlags.None, now);
                    if (live.Count < c.Capacity)
                    {
                        Assert.True(index >= 0, $"insert failed with {live.Count} live of {c.Capacity}");
                        Assert.DoesNotContain(live.Values, f => f.Index == index);
                        live[op.Client] = new ModelFlow { Index = index, Protocol = op.Protocol, LastSeen = now };
                    }
                    else
                    {
                        Assert.Equal(-1, index);
                        failures++;
                    }
                    break;
                case OpKind.Remove when m is not null:
                    table.Remove(m.Index);
                    live.Remove(op.Client);
                    break;
                case OpKind.Observe when m is not null:
                    table.Observe(m.Index, op.Reply, op.TcpFlags, now);
                    if (op.Reply) m.Flags |= ConntrackFlags.SeenReply;
                    if ((op.TcpFlags & ConntrackTableTests.Fin) != 0) m.Flags |= op.Reply ? ConntrackFlags.ReplyFin : ConntrackFlags.OriginalFin;
                    if ((op.TcpFlags & ConntrackTableTests.Rst) != 0) m.Flags |= ConntrackFlags.Rst;
                    m.LastSeen = Math.Max(m.LastSeen, now);
                    break;
                case OpKind.Advance:
                    now += op.Advance < 0 ? 1 : op.Advance * second - (op.Advance > 0 ? 1 : 0);
                    break;
            }
            // Flows past their timeout are gone (the table may still hold them until it reclaims them).
            foreach (var (client, flow) in live.ToArray())
            {
                if (now - flow.LastSeen >= flow.Timeout()) live.Remove(client);
            }
            Assert.Equal(failures, table.InsertFailures);
            Assert.True(table.Count >= live.Count && table.Count <= c.Capacity);
            for (var client = 0; client < Clients; client++)
            {
                live.TryGetValue(client, out var expected);
                foreach (var protocol in (ReadOnlySpan<byte>)[ConntrackTableTests.Tcp, ConntrackTableTests.Udp, ConntrackTableTests.Icmp])
                {
                    var (o, r) = ConntrackTableTests.Flow(client, protocol);
                    var shouldFind = expected is not null && expected.Protocol == protocol;
                    var context = $"after step {step} ({op}), client {client}/{protocol}, model {(expected is null ? "none" : $"{expected.Index} {expected.Flags} last {expected.LastSeen}")}, now {now}";
                    Assert.True(shouldFind == table.TryFind(o, now, out var index, out var isReply, out var flow), context);
                    Assert.True(shouldFind == table.TryFind(r, now, out var replyIndex, out var replyIsReply, out _), context);
                    if (!shouldFind) continue;
                    Assert.Equal(expected!.Index, index);
                    Assert.Equal(index, replyIndex);
                    Assert.False(isReply);
                    Assert.True(replyIsReply);
                    Assert.Equal(expected.Flags, flow.Flags);
                    Assert.Equal(expected.LastSeen, flow.LastSeen);
                    Assert.Equal(expected.Timeout(), table.TimeoutTicks(flow));
                }
            }
            Assert.Equal(live.Count, table.CountLive(now));
        }
    });
}
