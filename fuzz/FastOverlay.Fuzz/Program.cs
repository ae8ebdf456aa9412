using FastOverlay.Fuzz.Targets;
using SharpFuzz;

namespace FastOverlay.Fuzz;

/// <summary>
/// FastOverlay.Fuzz                      lists the targets, one per line
/// FastOverlay.Fuzz TARGET               runs TARGET under afl-fuzz (SharpFuzz's fork server, persistent loop)
/// FastOverlay.Fuzz TARGET PATH...       replays files or directories through TARGET once each, without AFL
///                                       (use a build that is not instrumented: dotnet run -c Release --project fuzz/FastOverlay.Fuzz -- ...)
/// Not a top-level program: the test project references this assembly and the CLI's Program side by side.
/// </summary>
public static class FuzzProgram
{
    public static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            foreach (var name in FuzzTargets.Names) Console.WriteLine(name);
            return 0;
        }
        if (!FuzzTargets.Names.Contains(args[0]))
        {
            Console.Error.WriteLine($"unknown target '{args[0]}'; targets: {string.Join(", ", FuzzTargets.Names)}");
            return 2;
        }
        return args.Length > 1 ? Replay(args[0], args[1..]) : Fuzz(args[0]);
    }

    private static int Replay(string name, string[] paths)
    {
        var target = FuzzTargets.Create(name);
        var failed = 0;
        var files = paths.SelectMany(p => Directory.Exists(p)
            ? Directory.GetFiles(p).Where(f => Path.GetFileName(f) != "README.txt").Order(StringComparer.Ordinal)
            : (IEnumerable<string>)[p]);
        foreach (var file in files)
        {
            try
            {
                target.Run(File.ReadAllBytes(file));
                Console.WriteLine($"ok    {file}");
            }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine($"CRASH {file}: {e.GetType().Name}: {e.Message}");
                Console.WriteLine(e.StackTrace);
            }
        }
        return failed == 0 ? 0 : 1;
    }

    private static int Fuzz(string name)
    {
        // The instrumented library must not run before Fuzzer.Run has mapped AFL's coverage bitmap, so the target
        // (whose constructor already drives the node) is made inside the first execution.
        var buffer = new byte[1 << 16];
        IFuzzTarget? target = null;
        Fuzzer.Run(stream =>
        {
            target ??= FuzzTargets.Create(name);
            var n = 0;
            int read;
            while (n < buffer.Length && (read = stream.Read(buffer, n, buffer.Length - n)) > 0) n += read;
            target.Run(buffer.AsSpan(0, n));
        });
        return 0;
    }
}
