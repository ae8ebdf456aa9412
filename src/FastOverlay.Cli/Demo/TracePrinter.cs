using FastOverlay.Cli.Trace;
using FastOverlay.Cluster;
using FastOverlay.Pipeline;

namespace FastOverlay.Cli.Demo;

/// <summary>Prints the hops of a walk from the pipeline's trace, one line per thing that happened.</summary>
internal sealed class TracePrinter(InMemoryCluster cluster, PacketTracer tracer, TextWriter output)
{
    private readonly HopDescriber _hops = new(node => cluster.Nodes.FirstOrDefault(n => n.Name == node)?.State, tracer);

    public void PrintWalk(ClusterDemo.WalkResult walk)
    {
        output.WriteLine(walk.Title);
        var step = 0;
        foreach (var record in walk.Hops)
        {
            var line = _hops.Describe(record);
            if (line is null) continue;
            output.WriteLine($"  {++step,3}  {record.Node,-8} {line}");
        }
        output.WriteLine(walk.Delivered ? "  => delivered" : "  => NOT delivered");
        output.WriteLine();
    }

    public string PortName(string node, int port) => _hops.PortName(node, port);
}
