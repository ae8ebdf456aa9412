using FastOverlay.Config;

namespace FastOverlay.Control.Services;

/// <summary>
/// Turns the keys under the services prefix into the set of Services the node serves. A key is skipped, with one
/// log line naming it and the reason, when it is not <c>&lt;namespace&gt;/&lt;name&gt;</c>, its value does not parse
/// or breaks a rule of <see cref="ServiceConfigValidator"/>, its value's Namespace/Name are not the key's, or it
/// claims what an older Service holds (<see cref="ServiceClaims"/>, in creation order: a newcomer never displaces a
/// Service in use). The others apply. Each skip is logged and counted once, again only if its reason changes. The
/// whole set is rebuilt every time (reconcile, not replay events), but values are parsed only when they change.
/// </summary>
public sealed class ServiceSetBuilder(ServiceConfigValidator rules, TextWriter log, string keyPrefix = EtcdServiceStore.DefaultPrefix)
{
    private readonly Dictionary<string, string> _skipped = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (byte[] Value, ServiceConfig? Service, string? Problem)> _parsed = new(StringComparer.Ordinal);
    private Dictionary<string, ServiceConfig> _last = new(StringComparer.Ordinal);
    private volatile ServiceConfigValidator _rules = rules;
    private int _rejected;

    /// <summary>The per-node rules (NodePort range, Network, PublicIP); replaced when the node's file is reloaded.</summary>
    public ServiceConfigValidator Rules
    {
        get => _rules;
        set => _rules = value;
    }

    /// <summary>Skips logged so far: a bad value, a conflict, each counted once per distinct reason. Any thread.</summary>
    public int Rejected => Volatile.Read(ref _rejected);

    /// <summary>The keys skipped by the last build, with why (a copy).</summary>
    public IReadOnlyDictionary<string, string> Skipped
    {
        get { lock (_skipped) return new Dictionary<string, string>(_skipped, StringComparer.Ordinal); }
    }

    /// <summary>The Services that apply, in creation order. Unchanged Services are the same objects as in the previous build.</summary>
    public IReadOnlyList<ServiceConfig> Build(IReadOnlyCollection<StoredService> stored)
    {
        var rules = _rules;
        var claims = new ServiceClaims();
        var reasons = new Dictionary<string, string>(StringComparer.Ordinal);
        var services = new List<ServiceConfig>(stored.Count);
        foreach (var entry in stored.OrderBy(s => s.CreateRevision).ThenBy(s => s.Key, StringComparer.Ordinal))
        {
            // Parse only what changed: a value re-put with the same bytes (an operator's idempotent apply, a
            // re-list after an outage) keeps its Service object, so nothing downstream rebuilds for it.
            if (!_parsed.TryGetValue(entry.Key, out var known) || !known.Value.AsSpan().SequenceEqual(entry.Value))
                _parsed[entry.Key] = known = Parse(entry);
            if (known.Service is not { } service)
            {
                reasons[entry.Key] = known.Problem!;
                continue;
            }
            try
            {
                rules.CheckService(service, "");
                claims.Claim(service, service.Key);
                services.Add(service);
            }
            catch (ConfigException e)
            {
                reasons[entry.Key] = e.Message;
            }
        }
        if (_parsed.Count > stored.Count)
        {
            var present = stored.Select(s => s.Key).ToHashSet(StringComparer.Ordinal);
            foreach (var gone in _parsed.Keys.Where(k => !present.Contains(k)).ToList()) _parsed.Remove(gone);
        }
        LogSkips(reasons);
        LogChanges(services);
        return services;
    }

    private (byte[] Value, ServiceConfig? Service, string? Problem) Parse(StoredService entry)
    {
        var slash = entry.Key.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == entry.Key.Length - 1 || entry.Key.IndexOf('/', slash + 1) >= 0)
            return (entry.Value, null, $"the key is not {keyPrefix}<namespace>/<name>");
        var (ns, name) = (entry.Key[..slash], entry.Key[(slash + 1)..]);
        ServiceConfig service;
        try
        {
            service = ServiceConfigParser.ParseOne(entry.Value);
        }
        catch (ConfigException e)
        {
            return (entry.Value, null, e.Message);
        }
        if (service.Namespace != ns || service.Name != name)
        {
            return (entry.Value, null, $"the key names {ns}/{name} but the value is {service.Key}" +
                (service.Namespace == "default" && ns != "default" ? " (a value without Namespace is in \"default\")" : ""));
        }
        return (entry.Value, service, null);
    }

    private void LogSkips(Dictionary<string, string> reasons)
    {
        lock (_skipped)
        {
            foreach (var (key, reason) in reasons)
            {
                if (_skipped.TryGetValue(key, out var before) && before == reason) continue;
                _skipped[key] = reason;
                Interlocked.Increment(ref _rejected);
                log.WriteLine($"services: skipped {keyPrefix}{key}: {reason}");
            }
            foreach (var key in _skipped.Keys.Where(k => !reasons.ContainsKey(k)).ToList()) _skipped.Remove(key);
        }
    }

    private void LogChanges(List<ServiceConfig> services)
    {
        var now = services.ToDictionary(s => s.Key, StringComparer.Ordinal);
        var changes = new List<string>();
        foreach (var (key, service) in now)
        {
            if (!_last.TryGetValue(key, out var before)) changes.Add($"services: added {key} {Describe(service)}");
            else if (!ReferenceEquals(before, service)) changes.Add($"services: updated {key} {Describe(service)}");
        }
        foreach (var key in _last.Keys.Where(k => !now.ContainsKey(k))) changes.Add($"services: removed {key}");
        _last = now;
        if (changes.Count <= 8) foreach (var line in changes) log.WriteLine(line);
        else log.WriteLine($"services: {changes.Count} changes, {services.Count} Services now");
    }

    private static string Describe(ServiceConfig s) => s.Type == ServiceType.ExternalName ? $"(ExternalName {s.ExternalName}: DNS only)"
        : s.ClusterIp is null ? "(headless: DNS only)"
        : $"({s.Type} {s.ClusterIp}, {s.Ports.Count} port{(s.Ports.Count == 1 ? "" : "s")}, {s.Endpoints.Count} endpoint{(s.Endpoints.Count == 1 ? "" : "s")})";
}
