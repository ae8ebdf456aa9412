namespace FastOverlay.Pipeline.Stages;

/// <summary>
/// The end of every burst: packets with a next of Transmit go to their port's queue, drops are freed and
/// counted with their reason. Every handle the burst held is accounted for here, so none leaks.
/// </summary>
internal sealed class Transmit(NodeContext ctx)
{
    public void Run(PacketBurst burst)
    {
        for (var i = 0; i < burst.Count; i++)
        {
            switch (burst.Next[i])
            {
                case NextStage.Transmit:
                    ctx.Tx.Enqueue(burst.Handles[i], burst.OutPort[i]);
                    break;
                case NextStage.Consumed:
                    break;
                case NextStage.Drop:
                    ctx.Drop(burst.Handles[i], burst.Drop[i]);
                    break;
                default:
                    // A stage left a packet without a decision: a bug here, not bad input. Count it, never leak it.
                    ctx.Drop(burst.Handles[i], DropReason.None);
                    break;
            }
        }
        burst.Count = 0;
    }
}
