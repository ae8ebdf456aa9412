using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using FastOverlay.Config;
using FastOverlay.Ports;
using FastOverlay.Wire;

namespace FastOverlay.Control;

/// <summary>
/// Keeps the node's own stack from answering traffic that FastOverlay serves: without it a SYN to a NodePort
/// reaches ip_rcv as well as our AF_PACKET socket (which sees it first, as a packet tap) and the kernel, finding
/// no listener, sends a RST (a UDP datagram an ICMP port unreachable), racing our NAT's answer.
///
/// An nftables table <c>ip fastoverlay</c> in the node's namespace holds named sets: the NodePorts per protocol
/// and the (address . protocol . port) frontends. Its prerouting chain at priority raw drops TCP/UDP to the
/// node's IP on those ports and to those frontends before conntrack, routing or a socket sees it. Its output
/// chain marks our replies (sent through the raw IP socket from the same addresses and ports) notrack, so
/// conntrack neither keeps entries for flows it never saw start nor flags them INVALID for a firewall to drop.
/// Health check ports are never in the sets (<see cref="ExternalTraffic.From"/>): the kernel serves them.
///
/// Every change is one <c>nft -f -</c> run, which the kernel applies as one transaction. Without nft the guard
/// logs one warning and does nothing: the node then works, but the kernel answers too.
/// </summary>
public sealed class ExternalGuard : IDisposable
{
    public const string TableName = "fastoverlay";
    private static readonly TimeSpan NftTimeout = TimeSpan.FromSeconds(30);

    private readonly IReadOnlyList<string> _nft;
    private readonly TextWriter _log;
    private readonly object _gate = new();
    private Ipv4Address? _installedFor;
    private bool _unavailable;
    private bool _disposed;

    private ExternalGuard(IReadOnlyList<string> nft, TextWriter log)
    {
        _nft = nft;
        _log = log;
    }

    /// <summary>
    /// Installs the table (replacing one a crashed run left behind) for <paramref name="traffic"/>.
    /// <paramref name="nft"/> is the command to run, "nft" by default; tests prefix it with `ip netns exec`.
    /// Throws <see cref="IOException"/> with nft's own words when nft refuses.
    /// </summary>
    public static ExternalGuard Start(ExternalTraffic traffic, TextWriter log, IReadOnlyList<string>? nft = null)
    {
        var guard = new ExternalGuard(nft ?? ["nft"], log);
        guard.Update(traffic);
        return guard;
    }

    /// <summary>Whether the table is installed (false when nft is missing).</summary>
    public bool Active
    {
        get { lock (_gate) return _installedFor is not null; }
    }

    /// <summary>
    /// Replaces the sets' contents in one transaction (any thread). A changed node IP, or a table someone else
    /// deleted, rebuilds the whole table, still in one transaction.
    /// </summary>
    public void Update(ExternalTraffic traffic)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_unavailable) return;
            if (_installedFor == traffic.NodeIp && TryRun(Elements(traffic, flush: true), out _)) return;
            if (!TryRun(Table(traffic), out var error))
            {
                if (_unavailable) return;
                throw new IOException($"cannot install nftables table ip {TableName}: {error}");
            }
            _installedFor = traffic.NodeIp;
        }
    }

    /// <summary>Deletes the table; the kernel then answers that traffic again.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            if (_installedFor is null) return;
            if (!TryRun($"delete table ip {TableName}\n", out var error)) _log.WriteLine($"fastoverlay: could not delete nftables table ip {TableName}: {error}");
            _installedFor = null;
        }
    }

    /// <summary>The whole table, after deleting any old one ("add" first so the delete cannot fail).</summary>
    internal static string Table(ExternalTraffic traffic)
    {
        var node = traffic.NodeIp;
        var script = new StringBuilder();
        script.Append($$"""
            add table ip {{TableName}}
            delete table ip {{TableName}}
            table ip {{TableName}} {
            	set nodeport_tcp { type inet_service; }
            	set nodeport_udp { type inet_service; }
            	set frontend { type ipv4_addr . inet_proto . inet_service; }
            	chain prerouting {
            		type filter hook prerouting priority raw; policy accept;
            		ip daddr {{node}} tcp dport @nodeport_tcp drop
            		ip daddr {{node}} udp dport @nodeport_udp drop
            		ip daddr . meta l4proto . th dport @frontend drop
            	}
            	chain output {
            		type filter hook output priority raw; policy accept;
            		ip saddr {{node}} tcp sport @nodeport_tcp notrack
            		ip saddr {{node}} udp sport @nodeport_udp notrack
            		ip saddr . meta l4proto . th sport @frontend notrack
            	}
            }

            """);
        script.Append(Elements(traffic, flush: false));
        return script.ToString();
    }

    /// <summary>The sets' elements, after flushing the old ones when <paramref name="flush"/>.</summary>
    internal static string Elements(ExternalTraffic traffic, bool flush)
    {
        var script = new StringBuilder();
        foreach (var set in new[] { "nodeport_tcp", "nodeport_udp", "frontend" })
        {
            if (flush) script.Append(CultureInfo.InvariantCulture, $"flush set ip {TableName} {set}\n");
        }
        AddElements(script, "nodeport_tcp", traffic.TcpNodePorts.Select(p => p.ToString(CultureInfo.InvariantCulture)));
        AddElements(script, "nodeport_udp", traffic.UdpNodePorts.Select(p => p.ToString(CultureInfo.InvariantCulture)));
        AddElements(script, "frontend", traffic.Frontends.Select(f => $"{f.Ip} . {(f.Protocol == L4Protocol.Tcp ? "tcp" : "udp")} . {f.Port}"));
        return script.ToString();
    }

    private static void AddElements(StringBuilder script, string set, IEnumerable<string> elements)
    {
        var list = elements.ToList();
        if (list.Count == 0) return;
        script.Append(CultureInfo.InvariantCulture, $"add element ip {TableName} {set} {{ {string.Join(", ", list)} }}\n");
    }

    /// <summary>
    /// The one place nft runs: the script on stdin, one transaction. False with nft's stderr on failure; a
    /// missing nft is logged once and turns the guard off.
    /// </summary>
    private bool TryRun(string script, out string error)
    {
        error = "";
        var start = new ProcessStartInfo(Executable(_nft[0]))
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in _nft.Skip(1)) start.ArgumentList.Add(argument);
        start.ArgumentList.Add("-f");
        start.ArgumentList.Add("-");
        Process? process;
        try
        {
            process = Process.Start(start);
        }
        catch (Win32Exception e)
        {
            _unavailable = true;
            _log.WriteLine($"fastoverlay: warning: cannot run {_nft[0]} ({e.Message}): without nftables the kernel answers NodePort and LoadBalancer traffic itself (TCP RST, ICMP port unreachable) besides FastOverlay; install nftables");
            error = e.Message;
            return false;
        }
        using (process)
        {
            if (process is null) throw new IOException($"could not start {_nft[0]}");
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.StandardInput.Write(script);
            process.StandardInput.Close();
            if (!process.WaitForExit(NftTimeout))
            {
                process.Kill(entireProcessTree: true);
                error = $"{string.Join(' ', _nft)} -f - did not finish in {NftTimeout.TotalSeconds:F0} s";
                return false;
            }
            process.WaitForExit();
            if (process.ExitCode == 0) return true;
            error = $"{string.Join(' ', _nft)} -f - exited {process.ExitCode}: {(stderr.Result + stdout.Result).Trim()}";
            return false;
        }
    }

    /// <summary>nft lives in /usr/sbin, which a service's PATH may lack.</summary>
    private static string Executable(string name)
    {
        if (name.Contains('/', StringComparison.Ordinal)) return name;
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin"]);
        return path.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists) ?? name;
    }
}
