using Xunit.Abstractions;

namespace FastOverlay.Tests.Lab;

/// <summary>
/// The interop case: node1 runs FastOverlay, node2 is a kernel node programmed exactly as flannel programs it
/// (bridge, flannel.1, route, permanent neighbour and FDB entries).
/// </summary>
[Collection("netns")]
public sealed class InteropLabTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData("default")]
    [InlineData("off")]
    public void FastOverlay_node_and_kernel_flannel_node_carry_each_others_pods_traffic(string offloads)
    {
        LabRequirements.Require("ping", "iperf3", "tshark", "ss");
        LabRequirements.RequireFastOverlayRun();
        using var lab = LabRun.Up("mixed", output, offloads: offloads);
        LabScenarios.PodsReachEachOther(lab);
        Assert.True(lab.FastOverlayRunning(1), "FastOverlay on node1 died during the traffic");
    }
}
