using FastOverlay.Tables;
using FastOverlay.Wire;

namespace FastOverlay.Pipeline;

/// <summary>
/// What the stages of one forwarder share: its pool, its tables, the version of the forwarding state this poll
/// reads, the clock reading of this poll, its tally and its transmit queues. Owned by one thread.
/// </summary>
internal sealed class NodeContext
{
    public NodeContext(string name, PacketPool pool, NodeOptions options)
    {
        Name = name;
        Pool = pool;
        Arp = new ArpCache(options.ArpCacheCapacity, NodeOptions.Ticks(options.ArpReachableTime), NodeOptions.Ticks(options.ArpExpireTime));
        Pending = new ArpPendingQueue(options.ArpPendingAddresses, options.ArpPendingPerAddress, NodeOptions.Ticks(options.ArpRetransmitTime));
        Icmp = new IcmpRateLimiter(options.IcmpErrorsPerSecond, Math.Max(1, options.IcmpErrorsPerSecond / 20));
        Tx = new TxQueues(this);
        // Released packets and generated replies re-enter the pipeline here; sized for a burst of ARP replies
        // that each release a full per-address queue.
        Resume = new PacketBurst(PacketBurst.DefaultCapacity * 4);
    }

    public readonly string Name;
    public readonly PacketPool Pool;
    public readonly ArpCache Arp;
    public readonly ArpPendingQueue Pending;
    public readonly IcmpRateLimiter Icmp;
    public readonly TxQueues Tx;
    public readonly PacketBurst Resume;
    public readonly CounterTally Tally = new();
    public readonly PortBindings Bindings = new();
    public ForwardingState State = null!;
    /// <summary>Where this worker posts the neighbours it learns, and the others' (null with one worker).</summary>
    public NeighbourExchange? Exchange;
    public int Worker;
    public long Now;
    public PacketTracer? Tracer;

    public NodeOptions Node => State.Node;

    /// <summary>Frees a packet and counts why. The one place a packet is dropped.</summary>
    public void Drop(int handle, DropReason reason)
    {
        Tally.Drop(reason);
        Tracer?.Record(Name, TraceEvent.Drop, handle, Pool.Meta(handle).InPort, reason: reason);
        Pool.Free(handle);
    }

    /// <summary>Queues a packet for the pipeline's next pass (released from ARP, or generated here).</summary>
    public void Reenter(int handle, NextStage next, uint address)
    {
        var b = Resume;
        if (b.Count == b.Capacity)
        {
            Drop(handle, DropReason.TxFull);
            return;
        }
        var i = b.Count++;
        b.Handles[i] = handle;
        b.Next[i] = next;
        b.L3Offset[i] = Ethernet.HeaderLength;
        b.Address[i] = address;
        b.OutPort[i] = ushort.MaxValue;
    }

    /// <summary>Sends an ARP request from the gateway for <paramref name="target"/> on one pod port, or on all (-1).</summary>
    public void SendArpRequest(uint target, int port)
    {
        var ports = State.Ports;
        for (var p = 1; p < ports.Length; p++)
        {
            if (ports[p] is null || (port >= 0 && p != port) || p == State.ExternalPort) continue;
            var h = Pool.Allocate();
            if (h < 0)
            {
                Tally.Drop(DropReason.PoolExhausted);
                return;
            }
            var length = ArpPacket.WriteFrame(Pool.WritableFrame(h), MacAddress.Broadcast, ArpPacket.OpRequest, Node.GatewayMac, Node.GatewayIp, MacAddress.Zero, target);
            Pool.SetLength(h, length);
            Pool.Meta(h).Flags = PacketFlags.Generated;
            Tally.Add(Counter.ArpRequestsSent);
            Tracer?.Record(Name, TraceEvent.ArpRequestSent, h, p, target);
            Tx.Enqueue(h, p);
        }
    }
}
