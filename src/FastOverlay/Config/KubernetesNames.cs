namespace FastOverlay.Config;

/// <summary>
/// The name formats of Kubernetes' API validation (k8s.io/apimachinery/pkg/util/validation), so that a Service
/// the apiserver would refuse is refused here with the same rule, and one it accepts is accepted.
/// </summary>
internal static class KubernetesNames
{
    public const int MaxLabelLength = 63;
    public const int MaxSubdomainLength = 253;

    /// <summary>IsDNS1123Label: lower-case letters, digits and '-', starting and ending alphanumeric, at most 63 (namespaces, port names).</summary>
    public static bool IsDns1123Label(string text) =>
        text.Length is > 0 and <= MaxLabelLength && IsAlphanumeric(text[0]) && IsAlphanumeric(text[^1]) && text.All(c => IsAlphanumeric(c) || c == '-');

    /// <summary>IsDNS1035Label: a DNS-1123 label that starts with a letter (Service names: they become DNS names and env vars).</summary>
    public static bool IsDns1035Label(string text) => IsDns1123Label(text) && text[0] is >= 'a' and <= 'z';

    /// <summary>IsDNS1123Subdomain: dot-separated DNS-1123 labels, at most 253 in all (node names, ExternalName targets).</summary>
    public static bool IsDns1123Subdomain(string text) =>
        text.Length is > 0 and <= MaxSubdomainLength && text.Split('.').All(IsDns1123Label);

    public const string Dns1123LabelRule = "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (a DNS-1123 label)";
    public const string Dns1035LabelRule = "lower-case letters, digits and '-', starting with a letter and ending with a letter or digit, at most 63 characters (a DNS-1035 label, as Kubernetes requires of Service names)";
    public const string Dns1123SubdomainRule = "dot-separated DNS-1123 labels (lower-case letters, digits and '-'), at most 253 characters";

    private static bool IsAlphanumeric(char c) => c is (>= 'a' and <= 'z') or (>= '0' and <= '9');
}
