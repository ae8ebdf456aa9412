using System.Text.Json;
using FastOverlay.Config;
using FastOverlay.Control;
using FastOverlay.Wire;

namespace FastOverlay.Cli.Api;

/// <summary>A pod port the node API manages: what the CNI plugin registers for each container.</summary>
internal sealed record ApiPod(string Interface, string Ip, string? Mac = null, string? ContainerId = null);

/// <summary>Why a pod change was refused, with the HTTP status the API answers.</summary>
internal sealed class PodChangeException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// The pods added through the API, kept in a state file so they survive a restart of the daemon (the veths stay
/// when fastoverlay stops; the runtime does not call ADD again). Every change is applied to the controller first
/// (rebuild and swap) and written to the file only once it took; the file is replaced atomically (write a
/// temporary file, rename), so a crash leaves the old list or the new one, never half of either.
/// </summary>
internal sealed class PodRegistry(string stateFile)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };
    private readonly object _gate = new();
    private List<ApiPod> _pods = [];

    public string StateFile { get; } = stateFile;

    public IReadOnlyList<ApiPod> Pods
    {
        get { lock (_gate) return [.. _pods]; }
    }

    public IReadOnlyList<PodConfig> PodConfigs
    {
        get { lock (_gate) return ToConfigs(_pods); }
    }

    /// <summary>Loads the state file; a missing file is an empty list, an unreadable one is reported and ignored.</summary>
    public void Load(TextWriter log)
    {
        try
        {
            if (!File.Exists(StateFile)) return;
            var pods = JsonSerializer.Deserialize<List<ApiPod>>(File.ReadAllBytes(StateFile), Json) ?? [];
            lock (_gate) _pods = [.. pods.Where(p => p.Interface is { Length: > 0 } && Ipv4Address.TryParse(p.Ip, out _))];
            log.WriteLine($"api: {_pods.Count} pods from {StateFile}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            log.WriteLine($"api: ignoring {StateFile}: {e.Message}");
        }
    }

    /// <summary>Adds a pod, or does nothing if the same one is there. Returns false when nothing changed.</summary>
    public bool Add(ApiPod pod, NodeController? controller)
    {
        lock (_gate)
        {
            var running = controller ?? throw new PodChangeException(503, "the node is not forwarding yet (no lease held); try again later");
            var ip = Validate(pod, running.Config);
            var same = _pods.FirstOrDefault(p => p.Interface == pod.Interface);
            if (same is not null)
            {
                if (same.Ip == pod.Ip && (pod.Mac is null || same.Mac == pod.Mac)) return false;
                throw new PodChangeException(409, $"{pod.Interface} is already registered with {same.Ip}{(same.Mac is null ? "" : $" ({same.Mac})")}; remove it first");
            }
            if (running.Config.Node.Pods.Any(p => p.Interface == pod.Interface))
                throw new PodChangeException(409, $"{pod.Interface} is a pod of the configuration file");
            var owner = running.Config.Node.Pods.Select(p => (p.Interface, Ip: p.Ip?.ToString())).Concat(_pods.Select(p => (p.Interface, Ip: (string?)p.Ip)))
                .FirstOrDefault(p => p.Ip == ip.ToString());
            if (owner.Interface is not null) throw new PodChangeException(409, $"{pod.Ip} is already the address of {owner.Interface}");
            Commit([.. _pods, pod with { Ip = ip.ToString() }], running);
            return true;
        }
    }

    /// <summary>Removes a pod by host interface. Returns false when it was not there (removing is idempotent).</summary>
    public bool Remove(string hostInterface, NodeController? controller)
    {
        lock (_gate)
        {
            if (!_pods.Any(p => p.Interface == hostInterface)) return false;
            List<ApiPod> next = [.. _pods.Where(p => p.Interface != hostInterface)];
            if (controller is null) Save(next);
            else Commit(next, controller);
            return true;
        }
    }

    private void Commit(List<ApiPod> next, NodeController controller)
    {
        try
        {
            controller.SetApiPods(ToConfigs(next));
        }
        catch (Exception e) when (e is IOException or ConfigException or ArgumentException)
        {
            throw new PodChangeException(400, e.Message);
        }
        catch (ObjectDisposedException)
        {
            throw new PodChangeException(503, "the node is restarting its data path; try again later");
        }
        Save(next);
    }

    private void Save(List<ApiPod> next)
    {
        _pods = next;
        var dir = Path.GetDirectoryName(Path.GetFullPath(StateFile))!;
        Directory.CreateDirectory(dir);
        var temporary = Path.Combine(dir, $".{Path.GetFileName(StateFile)}.{Environment.ProcessId}.tmp");
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(next, Json));
        File.Move(temporary, StateFile, overwrite: true);
    }

    private static Ipv4Address Validate(ApiPod pod, OverlayConfig config)
    {
        if (pod.Interface is not { Length: > 0 and <= 15 } name || name.Contains('/', StringComparison.Ordinal) || name.Any(char.IsWhiteSpace))
            throw new PodChangeException(400, $"interface '{pod.Interface}': a Linux interface name of 1 to 15 characters");
        if (!Ipv4Address.TryParse(pod.Ip, out var ip)) throw new PodChangeException(400, $"ip '{pod.Ip}' is not an IPv4 address");
        var subnet = config.Node.Subnet;
        if (!subnet.Contains(ip.Value) || ip.Value == subnet.Address || ip == config.Node.Gateway)
            throw new PodChangeException(400, $"ip {ip} is not a pod address of this node's subnet {subnet} (gateway {config.Node.Gateway})");
        if (pod.Mac is not null && !MacAddress.TryParse(pod.Mac, out _)) throw new PodChangeException(400, $"mac '{pod.Mac}' is not a MAC address");
        return ip;
    }

    private static List<PodConfig> ToConfigs(List<ApiPod> pods) =>
        [.. pods.Select(p => new PodConfig(p.Interface, Ipv4Address.TryParse(p.Ip, out var ip) ? ip : null))];
}
