using System.Text.Json;

namespace FastOverlay.Cli.Cni;

/// <summary>
/// A CNI error result (spec 1.0.0, "Error"): printed on stdout as {"cniVersion","code","msg","details"} with a
/// non-zero exit. The well-known codes are the spec's; 100 and up are this plugin's own.
/// </summary>
internal sealed class CniError(int code, string message, string? details = null) : Exception(message)
{
    public const int IncompatibleVersion = 1;
    public const int UnsupportedField = 2;
    public const int UnknownContainer = 3;
    public const int InvalidEnvironment = 4;
    public const int IoFailure = 5;
    public const int DecodeFailure = 6;
    public const int InvalidConfig = 7;
    public const int TryAgainLater = 11;
    /// <summary>CHECK found the pod not as ADD left it.</summary>
    public const int PodBroken = 100;
    /// <summary>A step of ADD or DEL failed (ip, the IPAM plugin, the daemon refusing the port).</summary>
    public const int SetupFailed = 101;

    public int Code { get; } = code;
    public string? Details { get; } = details;

    public string ToJson(string cniVersion) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["cniVersion"] = cniVersion,
        ["code"] = Code,
        ["msg"] = Message,
        ["details"] = Details,
    });
}
