namespace FastOverlay.Tests.Lab;

/// <summary>Checks shared by the kernel, FastOverlay and mixed labs.</summary>
internal static class LabScenarios
{
    /// <summary>
    /// Ping, UDP and TCP between pods on one node and across nodes, both ways, with tshark on node1's underlay
    /// proving that what crossed it is flannel's VXLAN and carried the pods' traffic (and nothing of the same-node
    /// traffic).
    /// </summary>
    public static void PodsReachEachOther(LabRun lab)
    {
        List<VxlanFrame> frames;
        using (var capture = UnderlayCapture.Start(lab, 1))
        {
            foreach (var (from, to) in new[] { ("p11", "p12"), ("p12", "p11"), ("p21", "p22"), ("p22", "p21") })
                lab.AssertPing(from, to);
            foreach (var (from, to) in new[] { ("p11", "p21"), ("p21", "p11"), ("p12", "p22"), ("p22", "p12") })
                lab.AssertPing(from, to);
            lab.AssertUdp("p11", "p21");
            lab.AssertUdp("p11", "p21", reverse: true);
            // TCP from pods with TSO on: super-frames that must leave as MTU-sized VXLAN datagrams with good checksums.
            lab.TcpBytes("p11", "p21", "3M");
            lab.TcpBytes("p11", "p21", "3M", reverse: true);
            frames = capture.StopAndDecode();
        }
        UnderlayCapture.AssertFlannelVxlan(frames, lab);
        UnderlayCapture.AssertCarried(frames, "p11", "p21", "tcp");
        UnderlayCapture.AssertCarried(frames, "p21", "p11", "tcp");
        foreach (var (from, to) in new[] { ("p11", "p21"), ("p21", "p11"), ("p12", "p22"), ("p22", "p12") })
            UnderlayCapture.AssertCarried(frames, from, to, "icmp");
        UnderlayCapture.AssertCarried(frames, "p11", "p21", "udp");
        UnderlayCapture.AssertCarried(frames, "p21", "p11", "udp");
        Assert.DoesNotContain(frames, f => SameSubnet(f.InnerSrc, f.InnerDst));

        lab.AssertUdp("p11", "p12");
        lab.AssertUdp("p11", "p12", reverse: true);
        lab.AssertTcp("p11", "p21");
        lab.AssertTcp("p11", "p21", reverse: true);
        lab.AssertTcp("p12", "p11");
    }

    public static void Eventually(Func<bool> condition, TimeSpan timeout, Func<string> failure)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail(failure());
            Thread.Sleep(200);
        }
    }

    private static bool SameSubnet(string a, string b) =>
        a.Length > 0 && a.StartsWith("10.244.", StringComparison.Ordinal) && a[..a.LastIndexOf('.')] == b[..Math.Max(0, b.LastIndexOf('.'))];
}
