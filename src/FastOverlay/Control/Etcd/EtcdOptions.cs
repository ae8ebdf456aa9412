namespace FastOverlay.Control.Etcd;

/// <summary>flanneld's etcd flags (main.go: --etcd-endpoints, --etcd-prefix, --etcd-cafile, --etcd-certfile, --etcd-keyfile, --etcd-username, --etcd-password).</summary>
public sealed record EtcdOptions
{
    public const string DefaultPrefix = "/coreos.com/network";

    public IReadOnlyList<Uri> Endpoints { get; init; } = [new Uri("http://127.0.0.1:2379")];
    public string Prefix { get; init; } = DefaultPrefix;
    public string? CaFile { get; init; }
    public string? CertFile { get; init; }
    public string? KeyFile { get; init; }
    public string? Username { get; init; }
    public string? Password { get; init; }
    /// <summary>The deadline of each unary call: no call waits longer on a dead member before the next endpoint is tried.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>flanneld's --etcd-endpoints: comma-separated URLs.</summary>
    public static IReadOnlyList<Uri> ParseEndpoints(string text)
    {
        var list = new List<Uri>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(part, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
                throw new ArgumentException($"'{part}' is not an http:// or https:// URL");
            list.Add(uri);
        }
        if (list.Count == 0) throw new ArgumentException("no endpoint given");
        return list;
    }
}
