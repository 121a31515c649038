using System.Globalization;
using AttnPortal.Web.Rendering;

namespace AttnPortal.Tests.Rendering;

/// <summary>Per-head statistics on a run small enough to work out by hand.</summary>
public sealed class HeadStatisticsTests
{
    /// <summary>
    /// One layer, one head, two steps; a 5-token prompt whose tokens 1–4 are a 2 × 2 image, so 6 keys (key 5 is the
    /// first generated token, which step 0 cannot see yet).
    /// </summary>
    private static AttentionRun Run() => new(
        [
            0.2f, 0.1f, 0.4f, 0.1f, 0.2f, 0f, // step 0
            0.1f, 0f, 0f, 0f, 0.5f, 0.4f,     // step 1
        ],
        steps: 2, layers: 1, heads: 1, inputIds: [7, 9, 9, 9, 9], generatedIds: [11, 12], imageTokenStart: 1, imageTokenCount: 4);

    [Fact]
    public void EachStepAndTheMeanOverStepsAreDescribed()
    {
        var run = Run();
        var stats = HeadStatistics.Of(run, run.PreferredView).ToList();
        Assert.Equal([0, 1, null], stats.Select(s => s.Step));

        var s0 = stats[0];
        Assert.Equal(0.8, s0.ImageShare, 6);
        Assert.Equal(0.2, s0.TextShare, 6);
        Assert.Equal(0.0, s0.GeneratedShare, 6);
        Assert.Equal(-(2 * 0.2 * Math.Log(0.2) + 2 * 0.1 * Math.Log(0.1) + 0.4 * Math.Log(0.4)), s0.Entropy, 6);
        Assert.Equal((0.4f, 0, 1), (s0.MaxImageWeight, s0.MaxImageRow, s0.MaxImageCol)); // image token 1: row 0, column 1

        var s1 = stats[1];
        Assert.Equal((0.5, 0.1, 0.4), (Math.Round(s1.ImageShare, 6), Math.Round(s1.TextShare, 6), Math.Round(s1.GeneratedShare, 6)));
        Assert.Equal(-(0.1 * Math.Log(0.1) + 0.5 * Math.Log(0.5) + 0.4 * Math.Log(0.4)), s1.Entropy, 6); // zeros add nothing
        Assert.Equal((0.5f, 1, 1), (s1.MaxImageWeight, s1.MaxImageRow, s1.MaxImageCol));

        // The mean row: [0.15, 0.05, 0.2, 0.05, 0.35, 0.2].
        var mean = stats[2];
        Assert.Equal((0.65, 0.15, 0.2), (Math.Round(mean.ImageShare, 6), Math.Round(mean.TextShare, 6), Math.Round(mean.GeneratedShare, 6)));
        Assert.Equal(-(0.15 * Math.Log(0.15) + 2 * 0.05 * Math.Log(0.05) + 2 * 0.2 * Math.Log(0.2) + 0.35 * Math.Log(0.35)), mean.Entropy, 5);
        Assert.Equal((1, 1), (mean.MaxImageRow, mean.MaxImageCol));
        Assert.Equal(0.35f, mean.MaxImageWeight, 6);
    }

    [Fact]
    public async Task CsvIsInvariantWhateverTheCulture()
    {
        var previous = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE"); // decimal commas must not reach the file
        try
        {
            var run = Run();
            using var writer = new StringWriter();
            await HeadStatistics.WriteCsvAsync(writer, HeadStatistics.Of(run, run.PreferredView));
            var lines = writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(HeadStatistics.CsvHeader, lines[0]);
            Assert.Equal(4, lines.Length);
            Assert.All(lines, l => Assert.Equal(10, l.Split(',').Length));
            var first = lines[1].Split(',');
            Assert.Equal(["0", "0", "0"], first[..3]);
            Assert.Equal(0.8, double.Parse(first[3], CultureInfo.InvariantCulture), 6);
            Assert.Equal(0.4, double.Parse(first[7], CultureInfo.InvariantCulture), 6);
            Assert.StartsWith("mean,0,0,", lines[3]);
        }
        finally { CultureInfo.CurrentCulture = previous; }
    }
}
