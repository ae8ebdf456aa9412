namespace FastOverlay.Tests.Lab;

/// <summary>One decoded VXLAN frame from the underlay. Fields that occur in both the outer and the inner headers
/// (addresses, checksums) hold the outer value first.</summary>
internal sealed record VxlanFrame(string Protocols, string[] IpSrc, string[] IpDst, string[] IpChecksumStatus, string[] UdpChecksum,
    string[] UdpChecksumStatus, string[] UdpDstPort, string Vni, string[] EthSrc, string[] EthDst, string IcmpType)
{
    public string OuterSrc => IpSrc[0];
    public string OuterDst => IpDst[0];
    public string InnerSrc => IpSrc.Length > 1 ? IpSrc[1] : "";
    public string InnerDst => IpDst.Length > 1 ? IpDst[1] : "";
    public string InnerProtocol
    {
        get
        {
            const string Inner = "vxlan:eth:ethertype:ip:";
            var at = Protocols.IndexOf(Inner, StringComparison.Ordinal);
            return at < 0 ? "" : Protocols[(at + Inner.Length)..].Split(':')[0];
        }
    }

    public override string ToString() => $"{OuterSrc}>{OuterDst} vni {Vni} [{string.Join(",", EthSrc)} > {string.Join(",", EthDst)}] {InnerSrc}>{InnerDst} {Protocols} ipck {string.Join(",", IpChecksumStatus)} udpck {string.Join(",", UdpChecksum)}/{string.Join(",", UdpChecksumStatus)}";
}

/// <summary>
/// tshark on a node's underlay veth, inside the node namespace, writing a file that is decoded afterwards with
/// port 8472 as VXLAN (tshark only knows 4789 by itself).
/// </summary>
internal sealed class UnderlayCapture : IDisposable
{
    private readonly LabRun _lab;
    private readonly BackgroundProcess _tshark;

    private UnderlayCapture(LabRun lab, int node)
    {
        _lab = lab;
        File = Path.Combine(lab.StateDir, $"underlay{node}-{Guid.NewGuid():N}.pcapng");
        _tshark = lab.Spawn($"n{node}", "tshark", "-n", "-q", "-i", lab.Underlay(node), "-f", "udp port 8472", "-a", "duration:90", "-w", File);
        Assert.True(_tshark.WaitForOutput("Capturing on", TimeSpan.FromSeconds(30)), $"tshark did not start: {_tshark.Output}");
    }

    public string File { get; }

    public static UnderlayCapture Start(LabRun lab, int node) => new(lab, node);

    public List<VxlanFrame> StopAndDecode()
    {
        Thread.Sleep(300);   // the last replies are on their way
        _tshark.Interrupt(TimeSpan.FromSeconds(20));
        var r = Cmd.Run(["tshark", "-n", "-r", File, "-d", "udp.port==8472,vxlan", "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
            "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,",
            "-e", "frame.protocols", "-e", "ip.src", "-e", "ip.dst", "-e", "ip.checksum.status", "-e", "udp.checksum", "-e", "udp.checksum.status",
            "-e", "udp.dstport", "-e", "vxlan.vni", "-e", "eth.src", "-e", "eth.dst", "-e", "icmp.type"], TimeSpan.FromSeconds(60));
        Assert.True(r.Ok, $"tshark could not read the capture: {r}");
        var frames = new List<VxlanFrame>();
        foreach (var line in r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split('|');
            static string[] L(string s) => s.Split(',');
            frames.Add(new VxlanFrame(f[0], L(f[1]), L(f[2]), L(f[3]), L(f[4]), L(f[5]), L(f[6]), f[7], L(f[8]), L(f[9]), f[10]));
        }
        _lab.WriteLine($"capture: {frames.Count} frames; first: {frames.FirstOrDefault()}");
        return frames;
    }

    public void Dispose() => _tshark.Dispose();

    /// <summary>
    /// Every frame is flannel's VXLAN: VNI 1, port 8472, a good outer IPv4 checksum, an outer UDP checksum that is zero
    /// or good, a good inner IPv4 checksum, and inner MACs VTEP to VTEP (the permanent neighbour entries flannel
    /// programs make the kernel send exactly that).
    /// </summary>
    public static void AssertFlannelVxlan(IReadOnlyList<VxlanFrame> frames)
    {
        Assert.NotEmpty(frames);
        Assert.All(frames, f =>
        {
            Assert.True(f.Protocols.Contains("udp:vxlan:eth:ethertype:ip", StringComparison.Ordinal), $"not VXLAN over IPv4 with an inner IPv4 frame: {f}");
            Assert.True(f.Vni == "1", $"VNI not 1: {f}");
            Assert.True(f.UdpDstPort[0] == "8472", $"outer UDP port not 8472: {f}");
            Assert.True(f.IpChecksumStatus.Length >= 2 && f.IpChecksumStatus[0] == "1" && f.IpChecksumStatus[1] == "1", $"outer or inner IPv4 checksum not good: {f}");
            Assert.True(f.UdpChecksum[0] == "0x0000" || f.UdpChecksumStatus[0] == "1", $"outer UDP checksum neither zero nor good: {f}");
            var from = f.OuterSrc == LabRun.PublicIp(1) ? 1 : 2;
            Assert.True(f.OuterDst == LabRun.PublicIp(3 - from), $"outer addresses not node to node: {f}");
            Assert.True(f.EthSrc.Length >= 2 && f.EthSrc[1] == LabRun.VtepMac(from) && f.EthDst[1] == LabRun.VtepMac(3 - from), $"inner MACs not VTEP to VTEP: {f}");
        });
    }

    public static void AssertCarried(IReadOnlyList<VxlanFrame> frames, string from, string to, string protocol) =>
        Assert.True(frames.Any(f => f.InnerSrc == LabRun.PodIp(from) && f.InnerDst == LabRun.PodIp(to) && f.InnerProtocol == protocol),
            $"no VXLAN frame carried {protocol} {from} -> {to}; seen: {string.Join("; ", frames.Select(f => $"{f.InnerSrc}>{f.InnerDst} {f.InnerProtocol}").Distinct())}");
}
