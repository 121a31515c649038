using AttnPortal.Web.Rendering;

namespace AttnPortal.Tests.Rendering;

/// <summary>The comparison arithmetic on runs small enough to work out by hand.</summary>
public sealed class ComparisonStatsTests
{
    // Keys: 0 text, 1–4 the 2 × 2 image (cells row-major), 5 text, 6 the first generated token (only step 1 sees it).
    private static readonly float[] Uniform6 = [1 / 6f, 1 / 6f, 1 / 6f, 1 / 6f, 1 / 6f, 1 / 6f, 0];
    private static readonly float[] Uniform7 = [1 / 7f, 1 / 7f, 1 / 7f, 1 / 7f, 1 / 7f, 1 / 7f, 1 / 7f];

    /// <summary>[step][layer][head] rows of run A: layer 0 written out by hand, layer 1 uniform.</summary>
    private static float[][][][] RowsOfA() =>
    [
        [
            [[0.1f, 0.2f, 0.1f, 0.1f, 0.1f, 0.4f, 0], [0.5f, 0, 0, 0, 0, 0.5f, 0]],   // step 0, layer 0: image 0.5 | 0
            [Uniform6, Uniform6],
        ],
        [
            [[0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.3f, 0.2f], [0, 0.25f, 0.25f, 0.25f, 0.25f, 0, 0]], // step 1, layer 0: image 0.4 | 1
            [Uniform7, Uniform7],
        ],
    ];

    private static AttentionRun Run(float[][][][] rows, int imageTokens = 4)
    {
        int steps = rows.Length, layers = rows[0].Length, heads = rows[0][0].Length, keys = rows[0][0][0].Length;
        var flat = rows.SelectMany(s => s.SelectMany(l => l.SelectMany(h => h))).ToArray();
        int prompt = keys - steps + 1;
        return new AttentionRun(flat, steps, layers, heads, new long[prompt], new long[steps], 1, imageTokens);
    }

    private static AttentionRun A => Run(RowsOfA());

    /// <summary>A with one row changed: step 0, layer 0, head 1 looks at the image (0.4 on cell (0,0), 0.1 on (0,1)).</summary>
    private static AttentionRun B
    {
        get
        {
            var rows = RowsOfA();
            rows[0][0][1] = [0, 0.4f, 0.1f, 0, 0, 0.5f, 0];
            return Run(rows);
        }
    }

    private static void Near(double expected, double actual) => Assert.True(Math.Abs(expected - actual) < 1e-6, $"expected {expected}, got {actual}");

    [Fact]
    public void LayerSharesSplitTheSelectedRowsBetweenImageTextAndGenerated()
    {
        var perToken = ComparisonStats.LayerShares(A, step: 0, head: null);
        Near((0.5 + 0) / 2, perToken[0].Image);   // layer 0, mean of the two heads
        Near((0.5 + 1) / 2, perToken[0].Text);
        Near(0, perToken[0].Generated);
        Near(4 / 6.0, perToken[1].Image);          // layer 1: uniform over the 6 keys step 0 sees
        Near(2 / 6.0, perToken[1].Text);

        var oneHead = ComparisonStats.LayerShares(A, step: null, head: 0); // layer 0, head 0, mean of the two steps
        Near((0.5 + 0.4) / 2, oneHead[0].Image);
        Near((0.5 + 0.4) / 2, oneHead[0].Text);
        Near((0 + 0.2) / 2, oneHead[0].Generated);

        var all = ComparisonStats.LayerShares(A, null, null);
        Near((0.5 + 0 + 0.4 + 1) / 4, all[0].Image);
        Near((0.5 + 1 + 0.4 + 0) / 4, all[0].Text);
        Near(0.2 / 4, all[0].Generated);

        var single = ComparisonStats.LayerShares(A, 1, 1)[1];
        Near(4 / 7.0, single.Image);
        Near(2 / 7.0, single.Text);
        Near(1 / 7.0, single.Generated);

        Assert.Throws<ArgumentOutOfRangeException>(() => ComparisonStats.LayerShares(A, 2, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => ComparisonStats.LayerShares(A, 0, 2));
    }

    [Fact]
    public void HeadImageSharesAreTheImageMassPerLayerAndHead()
    {
        var step1 = ComparisonStats.HeadImageShares(A, 1);
        Near(0.4, step1[0]);
        Near(1.0, step1[1]);
        Near(4 / 7.0, step1[2]);
        Near(4 / 7.0, step1[3]);
        var mean = ComparisonStats.HeadImageShares(A, null);
        Near((0.5 + 0.4) / 2, mean[0]);
        Near((0 + 1.0) / 2, mean[1]);
        Near((4 / 6.0 + 4 / 7.0) / 2, mean[3]);
    }

    [Fact]
    public void RankHeadsPutsTheHeadThatChangedFirstWithItsShareChangeAndL1()
    {
        var (a, b) = (new NamedRun("A", A), new NamedRun("B", B));
        var view = A.Views[0];
        var ranked = ComparisonStats.RankHeads(a, b, view, B.Views[0], step: 0);
        Assert.Equal([(0, 1), (0, 0), (1, 0), (1, 1)], ranked.Select(r => (r.Layer, r.Head)));
        var top = ranked[0];
        Near(0, top.ShareA);
        Near(0.5, top.ShareB);
        Near(-0.5, top.DeltaShare);
        Near(0.4 + 0.1, top.L1!.Value); // |0 − 0.4| + |0 − 0.1| over the cells
        Assert.All(ranked.Skip(1), r => { Near(0, r.L1!.Value); Near(0, r.DeltaShare); });

        // The mean over tokens: A's head (0,1) sees the image 0 then 1, B's 0.5 then 1; cells A 0.125 each, B (0.325, 0.175, 0.125, 0.125).
        var mean = ComparisonStats.RankHeads(a, b, view, view, step: null)[0];
        Assert.Equal((0, 1), (mean.Layer, mean.Head));
        Near(-0.25, mean.DeltaShare);
        Near(0.2 + 0.05, mean.L1!.Value);

        var problem = Assert.Throws<ArgumentException>(() => ComparisonStats.RankHeads(a, new NamedRun("B", Short), view, view, step: 1));
        Assert.Equal("step 1 is past the last token of run B (it generated 1 token: steps 0–0)", problem.Message);
    }

    /// <summary>One step, a 3 × 3 image: keys 0 text, 1–9 image, 10 text.</summary>
    private static AttentionRun Wide
    {
        get
        {
            var row = new float[11];
            row[5] = 1;
            return Run([[[row, row], [row, row]]], imageTokens: 9);
        }
    }

    /// <summary>One step, the 2 × 2 image: keys 0 text, 1–4 image, 5 text.</summary>
    private static AttentionRun Short => Run([[[[0, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]], [Uniform6[..6], Uniform6[..6]]]]);

    [Fact]
    public void RankHeadsWithoutACommonGridStillRanksByShare()
    {
        var ranked = ComparisonStats.RankHeads(new NamedRun("A", A), new NamedRun("C", Wide), A.Views[0], Wide.Views[0], step: 0);
        Assert.All(ranked, r => Assert.Null(r.L1));
        Assert.Equal(4, ranked.Count);
        // C puts everything on the image; A's step-0 shares are 0.5, 0, 4/6, 4/6: ordered by |Δ| = 0.5, 1, 1/3, 1/3.
        Assert.Equal([(0, 1), (0, 0), (1, 0), (1, 1)], ranked.Select(r => (r.Layer, r.Head)));
        Near(-1, ranked[0].DeltaShare);
    }

    [Fact]
    public void DifferenceIsAMinusBCellByCellOnTheLargestMagnitude()
    {
        var (a, b) = (new NamedRun("A", A), new NamedRun("B", B));
        var one = ComparisonStats.Difference(a, b, null, new AttentionSelection(0, 0, 1));
        Assert.Equal(new float[] { -0.4f, -0.1f, 0, 0 }, one.Values);
        Assert.Equal(0.4f, one.Scale);
        Assert.Equal("image", one.ViewA.Name);

        // Mean over heads: A (0.1, 0.05, 0.05, 0.05), B (0.3, 0.1, 0.05, 0.05).
        var mean = ComparisonStats.Difference(a, b, "image", new AttentionSelection(0, 0, null));
        Assert.Equal([-0.2, -0.05, 0, 0], mean.Values.Select(v => Math.Round(v, 6)));
        Near(0.2, mean.Scale);

        var same = ComparisonStats.Difference(a, a, null, new AttentionSelection(1, null, null));
        Assert.All(same.Values, v => Assert.Equal(0, v));
        Assert.Equal(0, same.Scale);
    }

    [Fact]
    public void DifferenceNamesWhatDoesNotFit()
    {
        var a = new NamedRun("A", A);
        string Problem(NamedRun b, string? view, AttentionSelection s) =>
            Assert.Throws<ArgumentException>(() => ComparisonStats.Difference(a, b, view, s)).Message;

        Assert.Equal("the runs' image grids differ (2×2 vs 3×3): a difference needs the same grid", Problem(new("C", Wide), null, default));
        Assert.Equal("step 1 is past the last token of run B (it generated 1 token: steps 0–0)", Problem(new("B", Short), null, new(1, null, null)));
        Assert.Equal("layer 2 is outside run A's 2 layers (0–1)", Problem(new("B", B), null, new(0, 2, null)));
        Assert.Equal("head 5 is outside run A's 2 heads (0–1)", Problem(new("B", B), null, new(0, null, 5)));
        Assert.Equal("run A has no view 'tiles' (it has 'image')", Problem(new("B", B), "tiles", default));
        Assert.Null(ComparisonStats.SelectionProblem(a, new AttentionSelection(1, 1, 1)));
    }

    [Fact]
    public void SharedRangeSpansEveryGridAndIgnoresNaN()
    {
        Assert.Equal((0.5f, 3f), ComparisonStats.SharedRange([[1, 2], [0.5f, 3, float.NaN]]));
        Assert.Null(ComparisonStats.SharedRange([[2, 2], [2]]));
        Assert.Null(ComparisonStats.SharedRange([]));
    }

    [Fact]
    public void TokenAlignmentMarksPositionsWhereTheAnswersDiffer()
    {
        string[] a = ["▁A", "▁red", "</s>"], b = ["▁A", "▁blue", "▁square", "</s>"];
        Assert.Equal([1, 2, 3], TokenAlignment.Differing([a, b]).Order());
        Assert.Empty(TokenAlignment.Differing([a, a]));
        Assert.Empty(TokenAlignment.Differing([b]));
        Assert.Equal([0], TokenAlignment.Differing([["x"], ["x"], ["y"]]).Order()); // any run differing marks the column
    }
}
