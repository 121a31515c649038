using System.Globalization;
using AttnPortal.Data;
using AttnPortal.Inference.Images;
using AttnPortal.Web.Components.Shared;
using AttnPortal.Web.Rendering;
using Bunit;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor.Services;

namespace AttnPortal.Tests.Portal;

/// <summary>bUnit: the comparison's components on their own.</summary>
public sealed class CompareComponentTests : BunitContext, IAsyncLifetime
{
    Task IAsyncLifetime.InitializeAsync() => Task.CompletedTask;
    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    public CompareComponentTests()
    {
        Services.AddMudServices();
        JSInterop.Mode = JSRuntimeMode.Loose;
    }

    private static LayerShare Share(float image, float text) => new(image, text, 1 - image - text);

    [Fact]
    public void LayerChartDrawsALinePerRunAndPicksTheClickedLayer()
    {
        var previous = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE"); // decimal commas must not reach the SVG
        try
        {
            int? picked = null;
            LayerShareChart.LayerSeries[] series =
            [
                new("A", "#E69F00", [Share(0, 1), Share(0.5f, 0.25f), Share(1, 0)]),
                new("B", "#009E73", [Share(0.25f, 0.5f), Share(0.25f, 0.5f), Share(0.75f, 0)]),
                new("C", "#CC79A7", [], "step 4 is past the last token of run C"),
            ];
            var chart = Render<LayerShareChart>(p => p.Add(c => c.Series, series).Add(c => c.SelectedLayer, 1)
                .Add(c => c.LayerPicked, (int? l) => picked = l));

            // x: 36 + layer × 474 / 2; y: 8 + (1 − share) × 162.
            var image = chart.FindAll("[data-testid=image-line]");
            Assert.Equal(["A", "B"], image.Select(l => l.GetAttribute("data-run")));
            Assert.Equal("36,170 273,89 510,8", image[0].GetAttribute("points"));
            Assert.Equal("#E69F00", image[0].GetAttribute("stroke"));
            Assert.Equal("36,8 273,129.5 510,170", chart.FindAll("[data-testid=text-line]")[0].GetAttribute("points"));
            Assert.Equal("271", chart.Find("[data-testid=selected-layer]").GetAttribute("x")); // layer 1's x − 2
            var legend = chart.FindAll("[data-testid=legend-item]");
            Assert.Equal(3, legend.Count);
            Assert.Contains("step 4 is past the last token of run C", legend[2].TextContent);

            var hits = chart.FindAll("[data-testid=layer-hit]");
            Assert.Equal(["0", "1", "2"], hits.Select(h => h.GetAttribute("data-layer")));
            hits[2].Click();
            Assert.Equal(2, picked);
            Assert.Contains("B image 0,750", chart.FindAll("[data-testid=layer-hit]")[2].TextContent); // the tooltip, in the reader's culture
        }
        finally { CultureInfo.CurrentCulture = previous; }
    }

    [Fact]
    public void LayerChartPointsForOneLayerSitInTheMiddle()
    {
        Assert.Equal("273,8", LayerShareChart.Points([1.0], 1));
        Assert.Equal("36,170 510,170", LayerShareChart.Points([-0.5, 0], 2)); // clamped to [0, 1]
    }

    private static List<HeadDifference> RankingRows(int count, bool withL1 = true) =>
        Enumerable.Range(0, count).Select(i => new HeadDifference(i / 4, i % 4, ShareA: 0.5f, ShareB: 0.5f - (i % 7 - 3) * 0.01f,
            L1: withL1 ? (count - i) / 100f : null)).ToList();

    [Fact]
    public void HeadRankingShowsTheTopRowsSortsAndPicks()
    {
        var rows = RankingRows(26);
        (int Layer, int Head)? picked = null;
        var table = Render<HeadRanking>(p => p.Add(c => c.Rows, rows).Add(c => c.SelectedLayer, 0).Add(c => c.SelectedHead, 1)
            .Add(c => c.Picked, ((int Layer, int Head) h) => picked = h));

        (int, int)[] Shown() => table.FindAll("[data-testid=head-row]")
            .Select(r => (int.Parse(r.GetAttribute("data-layer")!), int.Parse(r.GetAttribute("data-head")!))).ToArray();

        // Top 20 by L1 (rows come largest L1 first), then more.
        Assert.Equal(rows.Take(20).Select(r => (r.Layer, r.Head)), Shown());
        Assert.Equal("20 of 26 heads", table.Find("[data-testid=ranking-count]").TextContent.Trim());
        Assert.Contains("selected", table.FindAll("[data-testid=head-row]")[1].ClassList); // layer 0, head 1
        table.Find("[data-testid=show-more]").Click();
        Assert.Equal(26, Shown().Length);
        Assert.Empty(table.FindAll("[data-testid=show-more]"));

        // Δ: largest first, then smallest first.
        table.Find("[data-testid=sort-delta]").Click();
        var deltas = table.FindAll("[data-testid=head-row]").Select(r => rows.Single(x => (x.Layer, x.Head) == (int.Parse(r.GetAttribute("data-layer")!), int.Parse(r.GetAttribute("data-head")!))).DeltaShare).ToList();
        Assert.Equal(deltas.OrderByDescending(d => d), deltas);
        Assert.True(deltas[0] > deltas[^1]);
        table.Find("[data-testid=sort-delta]").Click();
        deltas = table.FindAll("[data-testid=head-row]").Select(r => rows.Single(x => (x.Layer, x.Head) == (int.Parse(r.GetAttribute("data-layer")!), int.Parse(r.GetAttribute("data-head")!))).DeltaShare).ToList();
        Assert.Equal(deltas.OrderBy(d => d), deltas);
        Assert.Equal("ascending", table.Find("[data-testid=sort-delta]").ParentElement!.GetAttribute("aria-sort"));

        // Layer sorts ascending first.
        table.Find("[data-testid=sort-layer]").Click();
        Assert.Equal(rows.OrderBy(r => r.Layer).ThenBy(r => r.Head).Select(r => (r.Layer, r.Head)), Shown());

        table.FindAll("[data-testid=head-row]")[5].Click();
        Assert.Equal((1, 1), picked);
    }

    [Fact]
    public void HeadRankingWithoutL1RanksByTheShareChange()
    {
        var rows = RankingRows(8, withL1: false);
        var table = Render<HeadRanking>(p => p.Add(c => c.Rows, rows));
        Assert.Equal("descending", table.Find("[data-testid=sort-delta]").ParentElement!.GetAttribute("aria-sort"));
        Assert.All(table.FindAll("[data-testid=head-row] td:last-child"), td => Assert.Equal("–", td.TextContent));
        Assert.Empty(table.FindAll("[data-testid=show-more]"));
    }

    [Fact]
    public void AlignedTokensLineUpPositionsAndMarkWhereTheRunsDiffer()
    {
        int? chosen = -1;
        AlignedTokens.Answer[] runs =
        [
            new("A", "#E69F00", ["▁A", "▁red", "</s>"]),
            new("B", "#009E73", ["▁A", "▁blue", "▁square", "</s>"]),
        ];
        var grid = Render<AlignedTokens>(p => p.Add(c => c.Runs, runs).Add(c => c.Selected, 1).Add(c => c.SelectedChanged, (int? s) => chosen = s));

        // A label and, per position plus "all tokens", one cell per run: 1 + 1 + 4 columns.
        Assert.Contains("repeat(5, max-content)", grid.Find("[data-testid=aligned-tokens]").GetAttribute("style"));
        Assert.Equal(["A", "B"], grid.FindAll("[data-testid=aligned-label]").Select(l => l.TextContent));
        var strips = grid.FindAll(".tokens.aligned");
        Assert.Equal(2, strips.Count);
        var a = strips[0].QuerySelectorAll("[data-testid=token]");
        var b = strips[1].QuerySelectorAll("[data-testid=token]");
        Assert.Equal(["·A", "·red", "</s>"], a.Select(t => t.TextContent));
        Assert.Equal([false, true, true], a.Select(t => t.ClassList.Contains("differs")));
        Assert.Equal([false, true, true, true], b.Select(t => t.ClassList.Contains("differs")));
        Assert.Equal("true", a[1].GetAttribute("aria-selected")); // the selection is the same step in every run
        Assert.Equal("true", b[1].GetAttribute("aria-selected"));
        var empty = Assert.Single(strips[0].QuerySelectorAll("[data-testid=token-empty]"));
        Assert.Empty(strips[1].QuerySelectorAll("[data-testid=token-empty]"));

        empty.Click(); // the column of B's last token
        Assert.Equal(3, chosen);
        grid.FindAll(".tokens.aligned")[1].QuerySelector("[data-testid=token-all]")!.Click();
        Assert.Null(chosen);
    }

    [Fact]
    public void KeysMoveTheCursorAsInTheRunView()
    {
        ImageGridView[] views = [new("base", 0, 2, 2, 2, new ImageRect(0, 0, 4, 4)), new("tiles", 4, 3, 3, 3, new ImageRect(0, 0, 4, 4))];
        var at = new AttentionCursor(0, null, null, "tiles");
        AttentionCursor Press(AttentionCursor c, params string[] keys) =>
            keys.Aggregate(c, (cursor, key) => AttentionKeys.Apply(key, cursor, steps: 3, layers: 2, heads: 4, views));

        Assert.Equal(2, Press(at, "ArrowRight", "ArrowRight", "ArrowRight").Step); // stops at the last token
        Assert.Null(Press(at, "ArrowLeft").Step);                                   // left of token 0: the mean
        Assert.Equal(0, Press(at with { Step = null }, "ArrowRight").Step);
        Assert.Equal(1, Press(at, "ArrowDown", "ArrowDown", "ArrowDown").Layer);
        Assert.Null(Press(at, "ArrowDown", "ArrowUp").Layer);
        Assert.Equal(3, Press(at, "]", "]", "]", "]", "]").Head);
        Assert.Equal(0, Press(at, "]", "]", "[").Head);
        Assert.Null(Press(at with { Layer = 1, Head = 2 }, "l").Layer);
        Assert.Null(Press(at with { Layer = 1, Head = 2 }, "h").Head);
        Assert.Equal("base", Press(at, "v").View);
        Assert.Equal("tiles", Press(at, "v", "v").View);
        Assert.Equal(at, Press(at, "x", "Enter"));
    }

    [Fact]
    public void PairLinksOfferTheSideBySideView()
    {
        Guid me = Guid.NewGuid(), partner = Guid.NewGuid();
        Run RunOf(Guid id, string schedule) => new()
        {
            Id = id, ModelName = "demo", Schedule = schedule, Question = "q", Aspect = "pad", OwnerId = "u",
        };
        var links = Render<PairLinks>(p => p.Add(c => c.RunId, me).Add(c => c.Runs, [RunOf(partner, "alternating")]));
        Assert.Equal($"/compare?runs={me},{partner}", links.Find("[data-testid=compare-pair]").GetAttribute("href"));

        var alone = Render<PairLinks>(p => p.Add(c => c.RunId, me).Add(c => c.Runs, []));
        Assert.Equal("", alone.Markup.Trim());
    }
}
