using FastOverlay.Ports;
using Microsoft.Extensions.ObjectPool;

namespace FastOverlay.Pipeline;

/// <summary>
/// One transmit queue per output port, filled while a burst is processed and flushed with one
/// <see cref="IPacketPort.Transmit"/> call per port (l3fwd's send_packets_multi). Queues come from an
/// <see cref="ObjectPool{T}"/> as ports appear and go back when ports are removed, so a pod churn does not
/// allocate and a long-lived node does not hold queues for ports it no longer has.
/// </summary>
internal sealed class TxQueues(NodeContext ctx)
{
    private static readonly ObjectPool<PacketBurst> s_queuePool =
        new DefaultObjectPool<PacketBurst>(new QueuePolicy(), maximumRetained: 256);

    private PacketBurst?[] _queues = [];
    private IPacketPort?[] _ports = [];

    private sealed class QueuePolicy : PooledObjectPolicy<PacketBurst>
    {
        public override PacketBurst Create() => new(PacketBurst.DefaultCapacity);

        public override bool Return(PacketBurst obj)
        {
            obj.Reset();
            return true;
        }
    }

    /// <summary>Matches the queues to a new state's ports. Queued packets of a removed port are dropped.</summary>
    public void Attach(ForwardingState state)
    {
        var ports = state.Ports;
        if (_queues.Length < ports.Length) Array.Resize(ref _queues, ports.Length);
        for (var p = 0; p < _queues.Length; p++)
        {
            var port = p < ports.Length ? ports[p] : null;
            var old = p < _ports.Length ? _ports[p] : null;
            if (ReferenceEquals(port, old) && (port is null) == (_queues[p] is null)) continue;
            if (_queues[p] is { } q)
            {
                for (var i = 0; i < q.Count; i++) ctx.Drop(q.Handles[i], DropReason.PortRemoved);
                s_queuePool.Return(q);
                _queues[p] = null;
            }
            if (port is not null) _queues[p] = s_queuePool.Get();
        }
        _ports = (IPacketPort?[])ports.Clone();
    }

    public void Enqueue(int handle, int port)
    {
        if ((uint)port >= (uint)_queues.Length || _queues[port] is not { } q)
        {
            ctx.Drop(handle, DropReason.PortRemoved);
            return;
        }
        if (q.Count == q.Capacity) Flush(port);
        q.Handles[q.Count++] = handle;
    }

    public void FlushAll()
    {
        for (var p = 0; p < _queues.Length; p++)
        {
            if (_queues[p] is { Count: > 0 }) Flush(p);
        }
    }

    private void Flush(int port)
    {
        var q = _queues[port]!;
        var handles = q.Handles.AsSpan(0, q.Count);
        if (ctx.Tracer is { } tracer)
        {
            foreach (var h in handles) tracer.RecordFrame(ctx.Name, TraceEvent.Transmit, h, port, ctx.Pool.Frame(h));
        }
        var sent = _ports[port]!.Transmit(handles);
        ctx.Tally.Add(Counter.TxPackets, sent);
        for (var i = sent; i < handles.Length; i++) ctx.Drop(handles[i], DropReason.TxFull);
        q.Count = 0;
    }
}
