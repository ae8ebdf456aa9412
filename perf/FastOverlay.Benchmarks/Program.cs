using BenchmarkDotNet.Running;
using FastOverlay.Benchmarks;

// dotnet run -c Release --project perf/FastOverlay.Benchmarks -- --filter '*'            (everything)
// dotnet run -c Release --project perf/FastOverlay.Benchmarks -- --filter '*Route*'      (one area)
BenchmarkSwitcher.FromAssembly(typeof(BenchConfig).Assembly).Run(args, new BenchConfig());
