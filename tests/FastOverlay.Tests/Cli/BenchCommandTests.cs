using System.Text.Json;
using FastOverlay.Cli;

namespace FastOverlay.Tests.Cli;

public class BenchCommandTests
{
    [Fact]
    public void Bench_json_reports_every_path_with_the_documented_fields_and_no_allocation()
    {
        var output = new StringWriter();
        var rc = Program.BuildCommand(output).Parse(["bench", "--json", "--packets", "300000"]).Invoke();
        Assert.Equal(0, rc);
        using var doc = JsonDocument.Parse(output.ToString());
        var results = doc.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(["IntraNode", "Encap", "Decap", "Arp", "ServiceEstablished", "ServiceBulk", "ServiceFirstPacket"], results.Select(r => r.GetProperty("path").GetString()));
        foreach (var r in results)
        {
            Assert.Equal(64, r.GetProperty("packetSize").GetInt32());
            Assert.Equal(256, r.GetProperty("burst").GetInt32());
            Assert.True(r.GetProperty("routes").GetInt32() > 0);
            Assert.True(r.GetProperty("packets").GetInt64() >= 300000);
            Assert.True(r.GetProperty("mpps").GetDouble() > 0);
            Assert.True(r.GetProperty("nsPerPacket").GetDouble() > 0);
            var allocated = r.GetProperty("allocatedBytesPerPacket").GetDouble();
            Assert.True(allocated == 0, $"{r.GetProperty("path").GetString()} allocated {allocated} bytes per packet");
        }
    }
}
