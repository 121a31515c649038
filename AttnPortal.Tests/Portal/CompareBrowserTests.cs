using System.Text.RegularExpressions;
using AttnPortal.Tests.Rendering;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace AttnPortal.Tests.Portal;

/// <summary>
/// The comparison in headless Chromium on real Kestrel: pick two runs on /runs, compare them, drive every pane with the
/// keyboard, the layer chart and the head ranking, and save the comparison. Runs alone (the BrowserEndToEnd collection).
/// </summary>
[Collection(nameof(BrowserEndToEnd))]
public sealed class CompareBrowserTests : IAsyncLifetime
{
    private BrowserPortal _portal = default!;

    public async Task InitializeAsync() => _portal = await BrowserPortal.StartAsync();

    public async Task DisposeAsync() => await _portal.DisposeAsync();

    private Task<IPage> NewPageAsync() => _portal.NewPageAsync();

    private static async Task AssertLoadedAsync(ILocator image, string what)
    {
        await Assertions.Expect(image).ToBeVisibleAsync();
        await image.Page.WaitForFunctionAsync("img => img.complete && img.naturalWidth > 0", await image.ElementHandleAsync());
        Assert.True(await image.EvaluateAsync<int>("img => img.naturalWidth") > 0, $"{what} did not load");
    }

    [Fact]
    public async Task ResearcherComparesTwoRunsFromTheRunListDrivesThePanesAndSaves()
    {
        var pair = Guid.NewGuid();
        var a = await CompareRuns.AddAsync(_portal.Factory, "standard", 3, 3, ["▁A", "▁red", "</s>"], (s, _, _) => GridArtifact.Key(0, s % 3, 3), pair);
        var b = await CompareRuns.AddAsync(_portal.Factory, "alternating", 3, 3, ["▁A", "▁blue", "▁square", "</s>"], (s, _, _) => GridArtifact.Key(2, s % 3, 3), pair);
        var page = await NewPageAsync();

        await page.GotoAsync("/runs");
        await page.FillAsync("input[name=email]", PortalFactory.ResearcherEmail);
        await page.FillAsync("input[name=password]", PortalFactory.Password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(new Regex("/runs$"));
        // The checkboxes react once the circuit has attached its handlers.
        await page.WaitForFunctionAsync("() => { const c = document.querySelector('[data-testid=compare-pick]'); return c && Object.keys(c).some(k => k.startsWith('_blazorEvents_')); }");
        await page.Locator($"[data-testid=compare-pick][data-run='{a}']").CheckAsync();
        await page.Locator($"[data-testid=compare-pick][data-run='{b}']").CheckAsync();
        var compare = page.Locator("[data-testid=compare-selected]");
        await Assertions.Expect(compare).ToContainTextAsync("Compare (2)");
        await compare.ClickAsync();
        await page.WaitForURLAsync($"**/compare?runs={a},{b}");
        await page.WaitForFunctionAsync("() => document.activeElement?.dataset?.testid === 'compare-view'");

        var heatmaps = page.Locator("[data-testid=compare-pane] img[data-testid=heatmap]");
        var difference = page.Locator("[data-testid=difference] img[data-testid=heatmap]");
        await Assertions.Expect(heatmaps).ToHaveCountAsync(2);
        for (int i = 0; i < 2; i++) await AssertLoadedAsync(heatmaps.Nth(i), $"pane {i} heatmap");
        await AssertLoadedAsync(difference, "difference");
        Assert.Equal(3, await difference.EvaluateAsync<int>("img => img.naturalWidth"));

        async Task ExpectEveryPaneAsync(string pattern)
        {
            for (int i = 0; i < 2; i++) await Assertions.Expect(heatmaps.Nth(i)).ToHaveAttributeAsync("src", new Regex(pattern));
        }

        // The keyboard drives every pane and the difference.
        await page.Keyboard.PressAsync("ArrowRight");
        await ExpectEveryPaneAsync(@"\?view=image&step=1&cmap=");
        await Assertions.Expect(difference).ToHaveAttributeAsync("src", new Regex("&step=1$"));
        await page.Keyboard.PressAsync("ArrowDown");
        await page.Keyboard.PressAsync("]");
        await ExpectEveryPaneAsync("&step=1&layer=0&head=0&");
        await Assertions.Expect(page.Locator("[data-testid=aligned-tokens] [data-testid=token][aria-selected=true]")).ToHaveCountAsync(2);

        // A click on layer 1 in the chart, then on a row of the head ranking.
        await page.Locator("[data-testid=layer-hit][data-layer='1']").ClickAsync();
        await ExpectEveryPaneAsync("&layer=1&head=0&");
        var row = page.Locator("[data-testid=head-row]").Last;
        string layer = (await row.GetAttributeAsync("data-layer"))!, head = (await row.GetAttributeAsync("data-head"))!;
        await row.ClickAsync();
        await ExpectEveryPaneAsync($"&layer={layer}&head={head}&");

        // Token 3 exists in B only: A's pane says so, B's shows it.
        await page.Keyboard.PressAsync("ArrowRight");
        await page.Keyboard.PressAsync("ArrowRight");
        await Assertions.Expect(page.Locator("[data-testid=pane-problem]")).ToContainTextAsync("step 3 is past the last token of run A");
        await Assertions.Expect(page.Locator("[data-testid=difference-problem]")).ToContainTextAsync("step 3 is past the last token of run A");
        await Assertions.Expect(heatmaps).ToHaveCountAsync(1);
        await page.Keyboard.PressAsync("ArrowLeft");

        // One colour scale for both panes, or each its own.
        await ExpectEveryPaneAsync("&norm=fixed");
        await page.Locator("input[data-testid=shared-scale], [data-testid=shared-scale] input").ClickAsync();
        for (int i = 0; i < 2; i++) await Assertions.Expect(heatmaps.Nth(i)).Not.ToHaveAttributeAsync("src", new Regex("norm="));

        // Save: the comparison gets its address and keeps the selection.
        await page.Locator("[data-testid=save-comparison]").ClickAsync();
        await page.WaitForURLAsync(new Regex("/compare/[0-9a-f-]{36}$"));
        var id = Guid.Parse(page.Url[^36..]);
        var saved = _portal.Factory.WithDb(db => db.Comparisons.Single(c => c.Id == id));
        Assert.Equal($"{a},{b}", saved.RunKey);
        await Assertions.Expect(page.Locator("[data-testid=saved-chip]")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("[data-testid=save-comparison]")).ToHaveCountAsync(0);
        await ExpectEveryPaneAsync("&step=2&");

        lock (_portal.Errors) Assert.True(_portal.Errors.Count == 0, "browser errors:\n" + string.Join("\n", _portal.Errors));
    }
}
