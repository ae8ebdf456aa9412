using System.CommandLine;

namespace FastOverlay.Cli.Demo;

internal static class DemoCommand
{
    public static Command Create(TextWriter output)
    {
        var pcap = new Option<FileInfo?>("--pcap") { Description = "Also write every frame of the walks, at every hop, to this pcapng file" };
        var seconds = new Option<double>("--seconds") { Description = "How long the full-speed phase runs", DefaultValueFactory = _ => 3.0 };
        var command = new Command("demo", "Start an in-memory cluster (3 workers, 8 pods), walk packets through every path, then run all pods at full speed")
        {
            pcap,
            seconds,
        };
        command.SetAction(async (result, cancel) =>
        {
            var demo = new ClusterDemo(output);
            return await demo.RunAsync(result.GetValue(pcap), result.GetValue(seconds), cancel);
        });
        return command;
    }
}
