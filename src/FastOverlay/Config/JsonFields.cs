using System.Globalization;
using System.Text.Json;
using FastOverlay.Wire;

namespace FastOverlay.Config;

/// <summary>
/// One JSON object read strictly: every key must be known (a key in the wrong case gets a hint, since flannel's Go
/// decoder would have matched it case-insensitively), none may repeat, and each value is read with its JSON
/// path so that errors name the field.
/// </summary>
internal sealed class JsonFields
{
    private readonly Dictionary<string, JsonElement> _values = new(StringComparer.Ordinal);

    public JsonFields(JsonElement element, string path, params string[] known)
    {
        Path = path;
        if (element.ValueKind != JsonValueKind.Object) throw new ConfigException(path, $"expected an object, got {Describe(element)}");
        foreach (var property in element.EnumerateObject())
        {
            var name = Text(() => property.Name, path, "a key");
            if (System.Array.IndexOf(known, name) < 0)
            {
                var match = System.Array.Find(known, k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
                var hint = match is not null ? $"; did you mean '{match}'?" : $"; known keys: {string.Join(", ", known)}";
                throw new ConfigException(Join(path, name), $"unknown key{hint}");
            }
            if (!_values.TryAdd(name, property.Value)) throw new ConfigException(Join(path, name), "appears twice");
        }
    }

    public string Path { get; }

    public static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    public string PathOf(string key) => Join(Path, key);

    public bool Has(string key) => _values.ContainsKey(key);

    public JsonElement Required(string key) =>
        _values.TryGetValue(key, out var value) ? value : throw new ConfigException(PathOf(key), "required");

    public JsonElement? Optional(string key) => _values.TryGetValue(key, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public string String(string key) => ReadString(Required(key), PathOf(key));

    public string? OptionalString(string key) => Optional(key) is { } v ? ReadString(v, PathOf(key)) : null;

    public bool OptionalBool(string key, bool fallback)
    {
        if (Optional(key) is not { } v) return fallback;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new ConfigException(PathOf(key), $"expected true or false, got {Describe(v)}"),
        };
    }

    public long? OptionalInteger(string key, long min, long max, string range)
    {
        if (Optional(key) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var n)) throw new ConfigException(PathOf(key), $"expected an integer, got {Describe(v)}");
        if (n < min || n > max) throw new ConfigException(PathOf(key), string.Create(CultureInfo.InvariantCulture, $"{n} is out of range ({range})"));
        return n;
    }

    public Ipv4Address Address(string key) => ParseAddress(String(key), PathOf(key));

    public Ipv4Address? OptionalAddress(string key) => OptionalString(key) is { } s ? ParseAddress(s, PathOf(key)) : null;

    /// <summary>An optional array of address strings (an absent key or null is empty).</summary>
    public IReadOnlyList<Ipv4Address> Addresses(string key) => [.. Array(key).Select(x => ParseAddress(ReadString(x.Element, x.Path), x.Path))];

    public Ipv4Prefix Prefix(string key)
    {
        var text = String(key);
        return Ipv4Prefix.TryParse(text, out var prefix)
            ? prefix
            : throw new ConfigException(PathOf(key), $"'{text}' is not an IPv4 CIDR prefix (expected a.b.c.d/len with the host bits zero, e.g. 10.244.1.0/24)");
    }

    public MacAddress Mac(string key) => ParseMac(String(key), PathOf(key));

    public MacAddress? OptionalMac(string key) => OptionalString(key) is { } s ? ParseMac(s, PathOf(key)) : null;

    public IEnumerable<(JsonElement Element, string Path)> Array(string key)
    {
        if (Optional(key) is not { } v) yield break;
        if (v.ValueKind != JsonValueKind.Array) throw new ConfigException(PathOf(key), $"expected an array, got {Describe(v)}");
        var i = 0;
        foreach (var item in v.EnumerateArray()) yield return (item, $"{PathOf(key)}[{i++}]");
    }

    private static string ReadString(JsonElement v, string path) =>
        v.ValueKind == JsonValueKind.String ? Text(() => v.GetString()!, path, "the string") : throw new ConfigException(path, $"expected a string, got {Describe(v)}");

    /// <summary>
    /// JsonDocument checks the text of a string only when it is read (invalid UTF-8, an escaped lone surrogate such
    /// as "\ud800") and throws InvalidOperationException then, which must not escape as anything but a
    /// <see cref="ConfigException"/> (found by the config fuzz target).
    /// </summary>
    private static string Text(Func<string> read, string path, string what)
    {
        try
        {
            return read();
        }
        catch (InvalidOperationException)
        {
            throw new ConfigException(path, $"{what} is not valid text (invalid UTF-8, or an escaped lone surrogate)");
        }
    }

    private static Ipv4Address ParseAddress(string text, string path) =>
        Ipv4Address.TryParse(text, out var address) ? address : throw new ConfigException(path, $"'{text}' is not an IPv4 address");

    private static MacAddress ParseMac(string text, string path) =>
        MacAddress.TryParse(text, out var mac) ? mac : throw new ConfigException(path, $"'{text}' is not a MAC address (expected six hex octets like 0a:58:0a:f4:01:00)");

    public static string Describe(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{Text(() => v.GetString()!, "", "the string")}\"",
        JsonValueKind.Number => $"the number {v.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => $"{v.GetRawText()}",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };
}
