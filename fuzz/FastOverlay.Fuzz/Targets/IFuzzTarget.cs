namespace FastOverlay.Fuzz.Targets;

/// <summary>One entry point that takes bytes from outside the node.</summary>
public interface IFuzzTarget
{
    string Name { get; }
    string Description { get; }

    /// <summary>Feeds one input through the real pipeline; throws <see cref="InvariantViolation"/> (or anything) on a bug.</summary>
    void Run(ReadOnlySpan<byte> input);
}

public static class FuzzTargets
{
    public static IReadOnlyList<string> Names { get; } = ["pod-frame", "underlay", "arp", "config"];

    public static IFuzzTarget Create(string name) => name switch
    {
        "pod-frame" => new PodFrameTarget(),
        "underlay" => new UnderlayTarget(),
        "arp" => new ArpTarget(),
        "config" => new ConfigTarget(),
        _ => throw new ArgumentException($"unknown fuzz target '{name}' (known: {string.Join(", ", Names)})", nameof(name)),
    };
}
