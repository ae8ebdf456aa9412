namespace FastOverlay.Tests.Cli;

/// <summary>
/// A node API socket and pod state file of a test's own: `fastoverlay run` defaults to /run/fastoverlay, which
/// parallel tests (and a real daemon on the machine) would share.
/// </summary>
internal static class ApiPaths
{
    public static string[] Args()
    {
        var id = Guid.NewGuid().ToString("N")[..12];
        return ["--api-socket", Path.Combine(Path.GetTempPath(), $"fo-api-{id}.sock"), "--pod-state", Path.Combine(Path.GetTempPath(), $"fo-pods-{id}.json"), "--metrics-address", "none"];
    }

    public static string Text() => string.Join(' ', Args());
}
