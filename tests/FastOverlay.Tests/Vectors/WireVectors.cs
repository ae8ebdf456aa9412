using System.Globalization;
using FastOverlay.Wire;
using Xunit;

namespace FastOverlay.Tests.Wire;

/// <summary>
/// The byte-exact packets in Vectors/wire.txt, made by scapy (an independent implementation) with
/// Vectors/make_vectors.py. Each line is "name hex"; '#' lines are comments.
/// </summary>
internal static class WireVectors
{
    public const string FileName = "wire.txt";

    private static readonly Lazy<IReadOnlyDictionary<string, byte[]>> All = new(Load);

    public static IEnumerable<string> Names => All.Value.Keys;

    /// <summary>A fresh copy of the vector, so a test may change it.</summary>
    public static byte[] Get(string name) =>
        All.Value.TryGetValue(name, out var bytes)
            ? (byte[])bytes.Clone()
            : throw new KeyNotFoundException($"no vector '{name}' in {FileName}; regenerate it with make_vectors.py");

    /// <summary>The IPv4 part of an Ethernet vector (no VLAN tag), from the IP header to the end of the frame.</summary>
    public static byte[] Ip(string name) => Get(name)[14..];

    /// <summary>
    /// The IPv4 datagram of a vector: the raw *_datagram vectors are IP already, the others are untagged
    /// Ethernet frames. Runs to the end of the frame (Ethernet padding included).
    /// </summary>
    public static byte[] Ipv4(string name) => name.EndsWith("_datagram", StringComparison.Ordinal) ? Get(name) : Ip(name);

    /// <summary>Every vector that holds a valid IPv4 datagram (outer header only for VXLAN).</summary>
    public static TheoryData<string> Ipv4Names => new(
        "eth_ipv4_udp", "eth_ipv4_udp_ttl63", "eth_ipv4_udp_ttl2", "eth_ipv4_udp_ttl1", "eth_ipv4_udp_odd",
        "eth_ipv4_udp_padded", "eth_ipv4_udp_nochecksum", "eth_ipv4_udp_tos_df", "eth_ipv4_udp_checksum_ffff",
        "ipv4_options", "ipv4_options_ra", "ipv4_options_ihl15", "ipv4_fragment_first", "ipv4_fragment_later",
        "icmp_echo_request", "icmp_echo_reply", "icmp_echo_request_odd", "icmp_echo_reply_odd", "icmp_frag_needed",
        "icmp_time_exceeded", "icmp_net_unreachable", "icmp_net_unreachable_short", "vxlan_flannel",
        "vxlan_udp_checksum", "vxlan_vni_16777215", "vxlan_iana_port", "vxlan_no_i_flag", "vxlan_reserved_bits_set",
        "inner_frame", "big_df_datagram", "expiring_datagram", "unroutable_datagram", "short_datagram");

    /// <summary>xunit MemberData rows of the names starting with <paramref name="prefix"/>.</summary>
    public static TheoryData<string> NamesStartingWith(string prefix)
    {
        var data = new TheoryData<string>();
        foreach (var name in Names.Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
            data.Add(name);
        return data;
    }

    private static Dictionary<string, byte[]> Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Vectors", FileName);
        var vectors = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0) throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"{FileName}:{lineNumber}: expected 'name hex'"));
            var name = line[..space];
            var bytes = Convert.FromHexString(line[(space + 1)..].Trim());
            if (!vectors.TryAdd(name, bytes))
                throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"{FileName}:{lineNumber}: duplicate vector '{name}'"));
        }
        return vectors;
    }
}

/// <summary>The addresses make_vectors.py uses, written as numbers so they do not depend on our parsers.</summary>
internal static class Addr
{
    public const uint Pod1 = 0x0AF4_0102;        // 10.244.1.2
    public const uint Pod2 = 0x0AF4_0103;        // 10.244.1.3
    public const uint Gateway = 0x0AF4_0101;     // 10.244.1.1
    public const uint RemotePod = 0x0AF4_0202;   // 10.244.2.2
    public const uint Node1 = 0xAC1F_4D01;       // 172.31.77.1
    public const uint Node2 = 0xAC1F_4D02;       // 172.31.77.2
    public const uint TestNet = 0xC000_0207;     // 192.0.2.7

    public static readonly MacAddress Pod1Mac = new(0x0A58_0AF4_0102);
    public static readonly MacAddress Pod2Mac = new(0x0A58_0AF4_0103);
    public static readonly MacAddress GatewayMac = new(0x0A58_0AF4_0101);
    public static readonly MacAddress Vtep1Mac = new(0x0A58_0AF4_0100);
    public static readonly MacAddress Vtep2Mac = new(0x0A58_0AF4_0200);
    public static readonly MacAddress Nic1Mac = new(0x0200_AC1F_4D01);
    public static readonly MacAddress Nic2Mac = new(0x0200_AC1F_4D02);
}
