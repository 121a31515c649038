using System.Net;
using AngleSharp.Html.Parser;
using AttnPortal.Data;
using AttnPortal.Inference.Images;
using AttnPortal.Tests.Rendering;
using AttnPortal.Web.Rendering;
using AttnPortal.Web.Services;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.Tests.Portal;

/// <summary>Finished runs with hand-made artifacts (<see cref="GridArtifact"/>) added straight to a portal's database.</summary>
public static class CompareRuns
{
    /// <summary>A succeeded run of wide.png owned by the researcher, whose every attention row puts half its mass on <paramref name="hot"/>.</summary>
    public static async Task<Guid> AddAsync(PortalFactory factory, string schedule, int rows, int cols, string[] tokens, Func<int, int, int, int> hot,
        Guid? pairId = null, bool finished = true)
    {
        using var scope = factory.Services.CreateScope();
        var services = scope.ServiceProvider;
        var researcher = await services.GetRequiredService<UserManager<PortalUser>>().FindByEmailAsync(PortalFactory.ResearcherEmail)
            ?? throw new InvalidOperationException("start the portal first");
        var image = await services.GetRequiredService<ImageStore>().SaveAsync(File.ReadAllBytes(Fixture.Image("wide.png")), "wide.png", researcher.Id);
        var id = Guid.NewGuid();
        string artifact = Path.Combine("artifacts", $"{id}.safetensors");
        if (finished) GridArtifact.Write(services.GetRequiredService<PortalPaths>().Resolve(artifact), rows, cols, tokens, hot);
        var now = DateTime.UtcNow;
        var db = services.GetRequiredService<PortalDbContext>();
        db.Runs.Add(new Run
        {
            Id = id, ImageId = image.Id, ModelName = PortalFactory.DemoModel, Schedule = schedule, Question = "What is red?", Aspect = "pad",
            MaxNewTokens = tokens.Length, Status = finished ? RunStatus.Succeeded : RunStatus.Queued, StepsDone = finished ? tokens.Length : 0,
            GeneratedText = finished ? string.Concat(tokens) : null, ArtifactPath = finished ? artifact : null, OwnerId = researcher.Id,
            BatchId = Guid.NewGuid(), CreatedUtc = now, StartedUtc = finished ? now : null, FinishedUtc = finished ? now : null, PairId = pairId,
        });
        await db.SaveChangesAsync();
        return id;
    }
}

/// <summary>The comparison over HTTP: the difference PNG, the heatmap's shared scale, the /compare pages, the run page's links.</summary>
public sealed class ComparePortalTests(ComparePortalTests.Host host) : IClassFixture<ComparePortalTests.Host>
{
    /// <summary>A and B: a standard/alternating pair on a 3 × 3 grid, A looking at cell (0,0), B at (2,2), B one token longer;
    /// C on a 4 × 4 grid; Q still queued.</summary>
    public sealed class Host : PortalHost
    {
        public Guid A { get; private set; }
        public Guid B { get; private set; }
        public Guid C { get; private set; }
        public Guid Q { get; private set; }

        protected override async Task SeedAsync()
        {
            var pair = Guid.NewGuid();
            A = await CompareRuns.AddAsync(Factory, "standard", 3, 3, ["▁A", "▁red", "</s>"], (_, _, _) => GridArtifact.Key(0, 0, 3), pair);
            B = await CompareRuns.AddAsync(Factory, "alternating", 3, 3, ["▁A", "▁blue", "▁square", "</s>"], (_, _, _) => GridArtifact.Key(2, 2, 3), pair);
            C = await CompareRuns.AddAsync(Factory, "standard", 4, 4, ["▁A", "</s>"], (_, _, _) => GridArtifact.Key(1, 1, 4));
            Q = await CompareRuns.AddAsync(Factory, "standard", 3, 3, ["▁A"], (_, _, _) => 0, finished: false);
        }
    }

    private PortalFactory Factory => host.Factory;
    private static readonly HtmlParser Parser = new();

    private static (byte R, byte G, byte B) Pixel(RgbImage image, int x, int y)
    {
        int i = (y * image.Width + x) * 3;
        return (image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2]);
    }

    private int CachedPngs => Directory.GetFiles(Factory.Services.GetRequiredService<PortalPaths>().Cache, "*.png", SearchOption.AllDirectories).Length;

    [Fact]
    public async Task DifferenceIsRedWhereAAttendsMoreAndBlueWhereBDoes()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        string url = $"/api/compare/diff.png?a={host.A}&b={host.B}&view=image&step=0&layer=1&head=0";
        int before = CachedPngs;
        using var response = await viewer.GetAsync(url);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
        var png = await response.Content.ReadAsByteArrayAsync();
        var image = RgbImage.Decode(png, "difference");
        Assert.Equal((3, 3), (image.Width, image.Height)); // one pixel per cell
        Assert.Equal(Colormap.Diverging[255], Pixel(image, 0, 0)); // A's hot cell: +max
        Assert.Equal(Colormap.Diverging[1], Pixel(image, 2, 2));   // B's: −max
        Assert.Equal(((byte)255, (byte)255, (byte)255), Pixel(image, 1, 1)); // equal elsewhere: white
        Assert.Equal(before + 1, CachedPngs); // stored in the PNG cache …
        Assert.Equal(png, await viewer.GetByteArrayAsync(url));
        Assert.Equal(before + 1, CachedPngs); // … and served from it

        // B − A mirrors it.
        var swapped = RgbImage.Decode(await viewer.GetByteArrayAsync($"/api/compare/diff.png?a={host.B}&b={host.A}&step=0&layer=1&head=0"), "swapped");
        Assert.Equal(Colormap.Diverging[1], Pixel(swapped, 0, 0));
        Assert.Equal(Colormap.Diverging[255], Pixel(swapped, 2, 2));
    }

    [Fact]
    public async Task DifferenceRefusesWhatCannotBeSubtracted()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        foreach (var (query, status, message) in new[]
                 {
                     ($"a={host.A}&b={host.C}", HttpStatusCode.BadRequest, "the runs' image grids differ (3×3 vs 4×4): a difference needs the same grid"),
                     ($"a={host.A}&b={host.B}&step=3", HttpStatusCode.BadRequest, "step 3 is past the last token of run a (it generated 3 tokens: steps 0–2)"),
                     ($"a={host.B}&b={host.A}&step=3", HttpStatusCode.BadRequest, "step 3 is past the last token of run b (it generated 3 tokens: steps 0–2)"),
                     ($"a={host.A}&b={host.B}&layer=2", HttpStatusCode.BadRequest, "layer 2 is outside run a's 2 layers (0–1)"),
                     ($"a={host.A}&b={host.B}&view=tiles", HttpStatusCode.BadRequest, "run a has no view 'tiles' (it has 'image')"),
                     ($"a={host.A}", HttpStatusCode.BadRequest, "name the two runs: ?a=RUN&b=RUN"),
                     ($"a={host.A}&b={host.Q}", HttpStatusCode.NotFound, $"run b ({host.Q}) has no attention artifact"),
                     ($"a={Guid.NewGuid()}&b={host.A}", HttpStatusCode.NotFound, "run a ("),
                 })
        {
            using var response = await viewer.GetAsync($"/api/compare/diff.png?{query}");
            Assert.True(response.StatusCode == status, $"{query}: {(int)response.StatusCode}");
            Assert.Contains(message, await PortalHttp.ErrorOf(response));
        }
    }

    [Fact]
    public async Task SignedOutRequestsGetNothing()
    {
        using var anonymous = Factory.Anonymous();
        using var diff = await anonymous.GetAsync($"/api/compare/diff.png?a={host.A}&b={host.B}");
        Assert.Equal(HttpStatusCode.Unauthorized, diff.StatusCode);
        Assert.Empty(await diff.Content.ReadAsByteArrayAsync());
        using var page = await anonymous.GetAsync($"/compare?runs={host.A},{host.B}");
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.StartsWith("/login", new Uri(new Uri("http://x"), page.Headers.Location!).AbsolutePath);
    }

    [Fact]
    public async Task HeatmapsCanShareOneFixedColourScale()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        string heatmap = $"/api/runs/{host.A}/heatmap.png?step=0&layer=0&head=0";
        var own = RgbImage.Decode(await viewer.GetByteArrayAsync(heatmap), "own");
        var shared = RgbImage.Decode(await viewer.GetByteArrayAsync(heatmap + "&norm=" + Uri.EscapeDataString("fixed:0:2")), "shared");
        Assert.Equal(Colormap.Viridis[255], Pixel(own, 0, 0)); // its own maximum
        Assert.NotEqual(Colormap.Viridis[255], Pixel(shared, 0, 0)); // well below the shared maximum of 2
        using var bad = await viewer.GetAsync(heatmap + "&norm=log");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("bad normalisation 'log'", await PortalHttp.ErrorOf(bad));
    }

    [Fact]
    public async Task ViewerSeesTheComparisonSideBySideWithoutSavingIt()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        int saved = Factory.WithDb(db => db.Comparisons.Count());
        var doc = Parser.ParseDocument(await viewer.GetStringAsync($"/compare?runs={host.A},{host.B}"));

        var panes = doc.QuerySelectorAll("[data-testid=compare-pane]");
        Assert.Equal([host.A.ToString(), host.B.ToString()], panes.Select(p => p.GetAttribute("data-run")));
        for (int i = 0; i < 2; i++)
        {
            string src = panes[i].QuerySelector("img[data-testid=heatmap]")!.GetAttribute("src")!;
            Assert.StartsWith($"/api/runs/{(i == 0 ? host.A : host.B)}/heatmap.png?view=image&step=0&cmap=viridis&norm=fixed", src);
            Assert.NotNull(panes[i].QuerySelector("img[data-testid=head-grid]"));
        }
        // One shared scale: both panes ask for the same range.
        Assert.Equal(panes[0].QuerySelector("img[data-testid=heatmap]")!.GetAttribute("src")!.Split("&norm=")[1],
            panes[1].QuerySelector("img[data-testid=heatmap]")!.GetAttribute("src")!.Split("&norm=")[1]);

        // Tokens aligned by position: "A" agrees, then red/blue, </s>/square, nothing/</s> differ.
        var strips = doc.QuerySelectorAll("[data-testid=aligned-tokens] .tokens");
        Assert.Equal(2, strips.Length);
        bool[] Differs(AngleSharp.Dom.IElement strip) => strip.QuerySelectorAll("[data-testid=token]").Select(t => t.ClassList.Contains("differs")).ToArray();
        Assert.Equal([false, true, true], Differs(strips[0]));
        Assert.Equal([false, true, true, true], Differs(strips[1]));
        Assert.Single(strips[0].QuerySelectorAll("[data-testid=token-empty]"));
        Assert.Empty(strips[1].QuerySelectorAll("[data-testid=token-empty]"));

        string diff = doc.QuerySelector("[data-testid=difference] img[data-testid=heatmap]")!.GetAttribute("src")!;
        Assert.Equal($"/api/compare/diff.png?a={host.A}&b={host.B}&view=image&step=0", diff);
        Assert.Contains("scale ±", doc.QuerySelector("[data-testid=difference-caption]")!.TextContent);
        Assert.Equal(2, doc.QuerySelectorAll("[data-testid=layer-chart] [data-testid=image-line]").Length);
        Assert.Equal(2 * 2, doc.QuerySelectorAll("[data-testid=head-row]").Length); // 2 layers × 2 heads
        Assert.Null(doc.QuerySelector("[data-testid=save-comparison]")); // viewers look; they do not save
        Assert.Equal(saved, Factory.WithDb(db => db.Comparisons.Count()));
    }

    [Fact]
    public async Task ComparePageExplainsWhatItCannotShow()
    {
        using var researcher = await Factory.SignInAsync(PortalFactory.ResearcherEmail);
        async Task<AngleSharp.Html.Dom.IHtmlDocument> Page(string url) => Parser.ParseDocument(await researcher.GetStringAsync(url));

        Assert.Equal("a comparison shows 2 to 4 runs; 1 was given", (await Page($"/compare?runs={host.A}")).QuerySelector("[data-testid=compare-error]")?.TextContent.Trim());
        Assert.Contains($"run {host.Q} (standard) is Queued", (await Page($"/compare?runs={host.A},{host.Q}")).QuerySelector("[data-testid=compare-error]")?.TextContent);
        Assert.Contains("is not a run id", (await Page("/compare?runs=nonsense")).QuerySelector("[data-testid=compare-error]")?.TextContent);
        Assert.Contains("No such comparison.", (await Page($"/compare/{Guid.NewGuid()}")).QuerySelector("[data-testid=compare-error]")?.TextContent);

        // Different grids: the panes show, the difference says why it cannot.
        var mixed = await Page($"/compare?runs={host.A},{host.C}");
        Assert.Equal(2, mixed.QuerySelectorAll("[data-testid=compare-pane]").Length);
        Assert.Equal("the runs' image grids differ (3×3 vs 4×4): a difference needs the same grid",
            mixed.QuerySelector("[data-testid=difference-problem]")?.TextContent.Trim());
        Assert.NotNull(mixed.QuerySelector("[data-testid=save-comparison]")); // a researcher may save
    }

    [Fact]
    public async Task SavedComparisonOpensByIdAndTheRunPageLinksToIt()
    {
        var comparison = await Factory.Services.GetRequiredService<ComparisonService>().GetOrCreateAsync([host.B, host.A],
            Factory.WithDb(db => db.Users.Single(u => u.Email == PortalFactory.ResearcherEmail).Id));
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);

        var page = Parser.ParseDocument(await viewer.GetStringAsync($"/compare/{comparison.Id}"));
        Assert.Equal([host.B.ToString(), host.A.ToString()], page.QuerySelectorAll("[data-testid=compare-pane]").Select(p => p.GetAttribute("data-run")));
        Assert.Contains("saved by researcher@portal.test", page.QuerySelector("[data-testid=saved-chip]")?.TextContent);
        Assert.Null(page.QuerySelector("[data-testid=save-comparison]"));

        var run = Parser.ParseDocument(await viewer.GetStringAsync($"/runs/{host.A}"));
        Assert.Equal($"/compare?runs={host.A},{host.B}", run.QuerySelector("[data-testid=compare-pair]")?.GetAttribute("href"));
        Assert.Contains($"/compare/{comparison.Id}", run.QuerySelectorAll("[data-testid=run-comparison]").Select(a => a.GetAttribute("href")));
        var unpaired = Parser.ParseDocument(await viewer.GetStringAsync($"/runs/{host.C}"));
        Assert.Null(unpaired.QuerySelector("[data-testid=compare-pair]"));
    }
}
