using System.Globalization;

namespace FastOverlay.Tests.Lab;

/// <summary>One decoded VXLAN frame from the underlay. Fields that occur in both the outer and the inner headers
/// (addresses, checksums) hold the outer value first.</summary>
internal sealed record VxlanFrame(string Protocols, string[] IpSrc, string[] IpDst, string[] IpChecksumStatus, string[] UdpChecksum,
    string[] UdpChecksumStatus, string[] UdpDstPort, string Vni, string[] EthSrc, string[] EthDst, string IcmpType, string[] IpLength, string TcpChecksumStatus,
    string[] UdpLength, string[] IpHeaderLength, string TcpChecksum, string TcpChecksumCalculated)
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
            "-o", "tcp.check_checksum:TRUE",
            "-e", "udp.dstport", "-e", "vxlan.vni", "-e", "eth.src", "-e", "eth.dst", "-e", "icmp.type", "-e", "ip.len", "-e", "tcp.checksum.status",
            "-e", "udp.length", "-e", "ip.hdr_len", "-e", "tcp.checksum", "-e", "tcp.checksum_calculated"], TimeSpan.FromSeconds(120));
        Assert.True(r.Ok, $"tshark could not read the capture: {r}");
        var frames = new List<VxlanFrame>();
        foreach (var line in r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split('|');
            static string[] L(string s) => s.Split(',');
            frames.Add(new VxlanFrame(f[0], L(f[1]), L(f[2]), L(f[3]), L(f[4]), L(f[5]), L(f[6]), f[7], L(f[8]), L(f[9]), f[10], L(f[11]), f[12], L(f[13]), L(f[14]), f[15], f[16]));
        }
        _lab.WriteLine($"capture: {frames.Count} frames; first: {frames.FirstOrDefault()}");
        return frames;
    }

    public void Dispose() => _tshark.Dispose();

    /// <summary>
    /// Every frame is flannel's VXLAN: VNI 1, port 8472, a good outer IPv4 checksum, a good inner IPv4 checksum,
    /// and inner MACs VTEP to VTEP (the permanent neighbour entries flannel programs make the kernel send exactly
    /// that). Every datagram fits the underlay's 1500-byte MTU: whatever super-frames the pods sent were cut before
    /// the wire. Checksums: a FastOverlay sender's inner TCP/UDP checksums are complete and good. With offloads
    /// at their defaults a veth never computes a checksum, so the capture sees partial ones wherever a kernel left
    /// them to "hardware": the outer UDP checksum of every sender (the kernel's UDP socket or vxlan device) and
    /// the inner ones of a kernel node. Those must be exactly the partial form (the pseudo-header sum), which the
    /// receiving kernel or FastOverlay completes; with offloads off every checksum must be good.
    /// </summary>
    public static void AssertFlannelVxlan(IReadOnlyList<VxlanFrame> frames, LabRun lab)
    {
        Assert.NotEmpty(frames);
        var partialAllowed = lab.Offloads != "off";
        Assert.All(frames, f =>
        {
            Assert.True(f.Protocols.Contains("udp:vxlan:eth:ethertype:ip", StringComparison.Ordinal), $"not VXLAN over IPv4 with an inner IPv4 frame: {f}");
            Assert.True(f.Vni == "1", $"VNI not 1: {f}");
            Assert.True(f.UdpDstPort[0] == "8472", $"outer UDP port not 8472: {f}");
            Assert.True(f.IpChecksumStatus.Length >= 2 && f.IpChecksumStatus[0] == "1" && f.IpChecksumStatus[1] == "1", $"outer or inner IPv4 checksum not good: {f}");
            var from = f.OuterSrc == LabRun.PublicIp(1) ? 1 : 2;
            Assert.True(f.OuterDst == LabRun.PublicIp(3 - from), $"outer addresses not node to node: {f}");
            Assert.True(f.EthSrc.Length >= 2 && f.EthSrc[1] == LabRun.VtepMac(from) && f.EthDst[1] == LabRun.VtepMac(3 - from), $"inner MACs not VTEP to VTEP: {f}");
            var kernelSender = lab.Mode == "kernel" || (lab.Mode == "mixed" && from == 2);
            // A kernel VXLAN device sends its pods' TSO frames over a veth as one UDP-tunnel GSO skb: on a veth
            // "wire" nothing ever cuts it (a NIC would). FastOverlay must always cut before the wire.
            var superDatagram = kernelSender && partialAllowed && int.Parse(f.IpLength[0], CultureInfo.InvariantCulture) > 1500;
            Assert.True(superDatagram || int.Parse(f.IpLength[0], CultureInfo.InvariantCulture) <= 1500, $"VXLAN datagram larger than the underlay MTU: {f}");
            // The kernel's vxlan device computes the outer UDP checksum by local checksum offload (LCO,
            // Documentation/networking/checksum-offloads.rst) as if the inner one were already finished: while the
            // inner checksum is still partial the capture cannot judge the outer one.
            var lco = kernelSender && partialAllowed;
            var outerLength = int.Parse(f.UdpLength[0], CultureInfo.InvariantCulture);
            Assert.True(lco || f.UdpChecksum[0] == "0x0000" || f.UdpChecksumStatus[0] == "1" || (partialAllowed && f.UdpChecksum[0] == Partial(f.IpSrc[0], f.IpDst[0], 17, outerLength)),
                $"outer UDP checksum neither zero, good nor partial: {f}");
            var innerL4 = f.IpLength.Length >= 2 ? int.Parse(f.IpLength[1], CultureInfo.InvariantCulture) - int.Parse(f.IpHeaderLength[1], CultureInfo.InvariantCulture) : 0;
            if (f.InnerProtocol == "tcp")
            {
                // 0xffff where 0x0000 is due is the same number in ones' complement (RFC 1624 section 3), and every
                // receiver, Linux included, accepts it; tshark alone calls it bad (its expert note tcp.checksum.ffff).
                // A kernel sender produced one in a CI run with offloads off.
                var negativeZero = f.TcpChecksum == "0xffff" && f.TcpChecksumCalculated == "0x0000";
                Assert.True(f.TcpChecksumStatus == "1" || negativeZero || (kernelSender && partialAllowed && f.TcpChecksum == Partial(f.InnerSrc, f.InnerDst, 6, innerL4)),
                    $"inner TCP checksum not good ({(kernelSender ? "kernel" : "FastOverlay")} sender): {f} tcp {f.TcpChecksum}/{f.TcpChecksumStatus} calculated {f.TcpChecksumCalculated}");
            }
            if (f.InnerProtocol == "udp")
            {
                Assert.True(f.UdpChecksumStatus.Length >= 2 && (f.UdpChecksum[1] == "0x0000" || f.UdpChecksumStatus[1] == "1" ||
                    (kernelSender && partialAllowed && f.UdpChecksum[1] == Partial(f.InnerSrc, f.InnerDst, 17, innerL4))),
                    $"inner UDP checksum not good ({(kernelSender ? "kernel" : "FastOverlay")} sender): {f}");
            }
        });
    }

    /// <summary>What a CHECKSUM_PARTIAL skb carries in its checksum field: the folded, not inverted, pseudo-header sum.</summary>
    private static string Partial(string source, string destination, int protocol, int length)
    {
        uint sum = 0;
        foreach (var address in new[] { source, destination })
        {
            var b = System.Net.IPAddress.Parse(address).GetAddressBytes();
            sum += (uint)(b[0] << 8 | b[1]) + (uint)(b[2] << 8 | b[3]);
        }
        sum += (uint)protocol + (uint)length;
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return $"0x{sum:x4}";
    }

    public static void AssertCarried(IReadOnlyList<VxlanFrame> frames, string from, string to, string protocol) =>
        Assert.True(frames.Any(f => f.InnerSrc == LabRun.PodIp(from) && f.InnerDst == LabRun.PodIp(to) && f.InnerProtocol == protocol),
            $"no VXLAN frame carried {protocol} {from} -> {to}; seen: {string.Join("; ", frames.Select(f => $"{f.InnerSrc}>{f.InnerDst} {f.InnerProtocol}").Distinct())}");
}
