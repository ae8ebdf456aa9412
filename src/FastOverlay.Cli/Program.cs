using System.CommandLine;
using FastOverlay.Cli.Api;
using FastOverlay.Cli.Bench;
using FastOverlay.Cli.Demo;
using FastOverlay.Cli.Run;

namespace FastOverlay.Cli;

public static class Program
{
    public static int Main(string[] args) =>
        // A container runtime runs CNI plugins with CNI_COMMAND set: this binary, copied to /opt/cni/bin as
        // `fastoverlay`, is then the plugin (see Cni/ and the README).
        Environment.GetEnvironmentVariable("CNI_COMMAND") is { Length: > 0 }
            ? Cni.CniPlugin.Invoke(Console.In, Console.Out)
            : BuildCommand(Console.Out).Parse(args).Invoke();

    internal static RootCommand BuildCommand(TextWriter output, TextWriter? error = null)
    {
        var root = new RootCommand("FastOverlay: a userspace VXLAN overlay data plane for Kubernetes pod networking, wire-compatible with flannel.");
        var demo = DemoCommand.Create(output);
        root.Subcommands.Add(demo);
        root.Subcommands.Add(BenchCommand.Create(output));
        root.Subcommands.Add(RunCommand.Create(output, error ?? Console.Error));
        foreach (var command in ClientCommands.Create(output, error ?? Console.Error)) root.Subcommands.Add(command);
        // With no subcommand the program runs the demo, with the demo's options.
        foreach (var option in demo.Options) root.Options.Add(option);
        root.Action = demo.Action;
        return root;
    }
}
