using System.IO.Compression;
using System.Net;
using System.Text.Json;
using AngleSharp.Html.Parser;
using AttnPortal.Data;
using AttnPortal.Inference.Images;
using AttnPortal.Web.Services;

namespace AttnPortal.Tests.Portal;

/// <summary>
/// Over HTTP: the public read-only link (signed out, that gallery only, dead once revoked), the signed-in gallery
/// page and pictures (private stays private), and the exported static site.
/// </summary>
public sealed class GalleryEndpointTests(GalleryEndpointTests.Host host) : IClassFixture<GalleryEndpointTests.Host>
{
    public sealed class Host : GalleryHost;

    private PortalFactory Factory => host.Factory;
    private const string Caption = "The **red square** draws <script>alert('x')</script> [a link](javascript:alert(1)) and [docs](https://example.org/x)";

    /// <summary>A gallery of the demo run (token 1, layer 1, head 2) with <see cref="Caption"/>, and of the anyres comparison.</summary>
    private async Task<Gallery> TwoItemGalleryAsync(GalleryVisibility visibility)
    {
        var gallery = await host.Galleries(s => s.CreateAsync(host.Owner, "Red <square> & friends", "Heads that *find* the square", visibility));
        await host.Galleries(s => s.AddItemAsync(host.Owner, gallery.Id, GallerySubject.OfRun(host.DemoRunId), new PinnedView(1, 1, 2, null, "magma", 0.5), Caption));
        await host.Galleries(s => s.AddItemAsync(host.Owner, gallery.Id, GallerySubject.OfComparison(host.ComparisonId), new PinnedView(null, 0, null, "tile 0,1", "jet", 0.8), "Both runs, tile 0,1"));
        return (await host.Galleries(s => s.FindAsync(host.Owner, gallery.Id)))!;
    }

    private static IEnumerable<string> Sources(string html, string selector = "img") =>
        new HtmlParser().ParseDocument(html).QuerySelectorAll(selector).Select(e => e.GetAttribute("src")!);

    [Fact]
    public async Task APublicLinkShowsItsGalleryToAnyoneSignedOutAndNothingElse()
    {
        var gallery = await TwoItemGalleryAsync(GalleryVisibility.Private);
        string token = await host.Galleries(s => s.MakePublicLinkAsync(host.Owner, gallery.Id, gallery.Version));
        using var anonymous = Factory.Anonymous();

        using var page = await anonymous.GetAsync($"/g/{token}");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        string html = await page.Content.ReadAsStringAsync();
        var doc = new HtmlParser().ParseDocument(html);
        Assert.Equal("Red <square> & friends", doc.QuerySelector("[data-testid=gallery-title]")!.TextContent);
        var captions = doc.QuerySelectorAll("[data-testid=item-caption]");
        Assert.Equal(2, captions.Length);
        // Markdown rendered; the raw HTML and the javascript: link made harmless text; an https link kept.
        Assert.Equal("red square", captions[0].QuerySelector("strong")!.TextContent);
        Assert.Empty(captions[0].QuerySelectorAll("script"));
        Assert.Contains("<script>alert('x')</script>", captions[0].TextContent);
        Assert.Equal(["https://example.org/x"], captions[0].QuerySelectorAll("a").Select(a => a.GetAttribute("href")));
        Assert.DoesNotContain("/runs/", html); // no links into the portal for someone without an account

        // Three pictures: the run, and the comparison's two panes side by side; all served signed out.
        var sources = Sources(html, "[data-testid=item-overlay]").ToList();
        Assert.Equal(3, sources.Count);
        Assert.All(sources, s => Assert.StartsWith($"/api/public/{token}/items/", s));
        var sizes = new List<(int, int)>();
        foreach (var src in sources)
        {
            using var response = await anonymous.GetAsync(src);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{src}: {(int)response.StatusCode}");
            Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
            var png = RgbImage.Decode(await response.Content.ReadAsByteArrayAsync(), src);
            sizes.Add((png.Width, png.Height));
        }
        Assert.All(sizes, s => Assert.Equal((200, 130), s)); // each overlay is the photo's size (wide.png)
        var photoLinks = doc.QuerySelectorAll("a[data-testid=item-photo]").Select(a => a.GetAttribute("href")!).ToList();
        Assert.Equal(3, photoLinks.Count);
        Assert.Equal(File.ReadAllBytes(Fixture.Image("wide.png")), await anonymous.GetByteArrayAsync(photoLinks[0]));

        // The token opens this gallery's pictures and nothing else of the portal.
        foreach (var url in new[] { $"/api/runs/{host.DemoRunId}/overlay.png", $"/api/runs/{host.DemoRunId}/artifact", $"/api/galleries/{gallery.Id}/export.zip",
                     $"/api/galleries/{gallery.Id}/items/{gallery.Items[0].Id}/overlay.png" })
        {
            using var response = await anonymous.GetAsync(url);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{url}: {(int)response.StatusCode}");
        }
        using var pageSignedOut = await anonymous.GetAsync($"/galleries/{gallery.Id}");
        Assert.Equal(HttpStatusCode.Redirect, pageSignedOut.StatusCode);
        Assert.Equal("/login", new Uri(new Uri("http://x"), pageSignedOut.Headers.Location!).AbsolutePath);
    }

    [Fact]
    public async Task ARevokedUnknownOrForeignTokenFindsNothing()
    {
        var gallery = await TwoItemGalleryAsync(GalleryVisibility.Team);
        var other = await TwoItemGalleryAsync(GalleryVisibility.Team);
        string token = await host.Galleries(s => s.MakePublicLinkAsync(host.Owner, gallery.Id, gallery.Version));
        await host.Galleries(s => s.MakePublicLinkAsync(host.Owner, other.Id, other.Version));
        using var anonymous = Factory.Anonymous();
        string item = $"/api/public/{token}/items/{gallery.Items[0].Id}";
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync($"{item}/overlay.png")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync($"/api/public/{token}/items/{gallery.Items[1].Id}/overlay.png?pane=1")).StatusCode);

        // Another gallery's item through this token, a pane the item does not have, a malformed or unknown token: 404.
        foreach (var url in new[]
                 {
                     $"/api/public/{token}/items/{other.Items[0].Id}/overlay.png", $"/api/public/{token}/items/{other.Items[0].Id}/photo",
                     $"/api/public/{token}/items/{gallery.Items[0].Id}/overlay.png?pane=1", $"/api/public/{token}/items/{gallery.Items[1].Id}/overlay.png?pane=2",
                     $"/api/public/{token}/items/{gallery.Items[0].Id}/overlay.png?pane=-1",
                     $"/api/public/{new string('A', 43)}/items/{gallery.Items[0].Id}/overlay.png", $"/api/public/x/items/{gallery.Items[0].Id}/overlay.png",
                     $"/g/{new string('A', 43)}", "/g/not-a-token",
                 })
        {
            using var response = await anonymous.GetAsync(url);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{url}: {(int)response.StatusCode}");
        }

        await host.Galleries(s => s.RevokePublicLinkAsync(host.Owner, gallery.Id, gallery.Version + 1));
        using var page = await anonymous.GetAsync($"/g/{token}");
        Assert.Equal(HttpStatusCode.NotFound, page.StatusCode);
        var doc = new HtmlParser().ParseDocument(await page.Content.ReadAsStringAsync());
        Assert.Equal("Not found", doc.QuerySelector("[data-testid=gallery-not-found]")?.TextContent);
        Assert.Null(doc.QuerySelector("[data-testid=gallery-item]"));
        foreach (var url in new[] { $"{item}/overlay.png", $"{item}/photo" })
            Assert.Equal(HttpStatusCode.NotFound, (await anonymous.GetAsync(url)).StatusCode);
        // Revoking stays revoked for signed-in users too; the team still sees the gallery itself.
        using var researcher = await Factory.SignInAsync(GalleryHost.OtherResearcherEmail);
        Assert.Equal(HttpStatusCode.NotFound, (await researcher.GetAsync($"{item}/overlay.png")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await researcher.GetAsync($"/api/galleries/{gallery.Id}/items/{gallery.Items[0].Id}/overlay.png")).StatusCode);
    }

    [Fact]
    public async Task APrivateGalleryIsInvisibleToEveryoneButItsOwnerAndAdmins()
    {
        var gallery = await TwoItemGalleryAsync(GalleryVisibility.Private);
        string overlay = $"/api/galleries/{gallery.Id}/items/{gallery.Items[0].Id}/overlay.png";
        foreach (var email in new[] { GalleryHost.OtherResearcherEmail, PortalFactory.ViewerEmail })
        {
            using var client = await Factory.SignInAsync(email);
            foreach (var url in new[] { overlay, $"/api/galleries/{gallery.Id}/export.zip", $"/api/galleries/{gallery.Id}/items/{gallery.Items[0].Id}/photo" })
                Assert.True((await client.GetAsync(url)).StatusCode == HttpStatusCode.NotFound, $"{email} {url}");
            var doc = new HtmlParser().ParseDocument(await client.GetStringAsync($"/galleries/{gallery.Id}"));
            Assert.Equal("No such gallery, or it is not shared with you.", doc.QuerySelector("[data-testid=gallery-missing]")?.TextContent);
            Assert.DoesNotContain("Red &lt;square&gt;", doc.DocumentElement.OuterHtml);
        }
        foreach (var email in new[] { PortalFactory.ResearcherEmail, PortalFactory.AdminEmail })
        {
            using var client = await Factory.SignInAsync(email);
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(overlay)).StatusCode);
            var doc = new HtmlParser().ParseDocument(await client.GetStringAsync($"/galleries/{gallery.Id}"));
            Assert.Equal("Red <square> & friends", doc.QuerySelector("[data-testid=gallery-title]")?.TextContent);
        }
    }

    [Fact]
    public async Task TheExportIsASelfContainedSiteWhoseEveryReferenceIsInTheZip()
    {
        var gallery = await TwoItemGalleryAsync(GalleryVisibility.Team);
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail); // anyone who may view it may export it
        using var response = await viewer.GetAsync($"/api/galleries/{gallery.Id}/export.zip");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/zip", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("red-square-friends.zip", response.Content.Headers.ContentDisposition?.FileNameStar ?? response.Content.Headers.ContentDisposition?.FileName);

        using var zip = new ZipArchive(new MemoryStream(await response.Content.ReadAsByteArrayAsync()));
        var entries = zip.Entries.ToDictionary(e => e.FullName);
        string Read(string name) { using var r = new StreamReader(entries[name].Open()); return r.ReadToEnd(); }
        byte[] Bytes(string name) { using var s = entries[name].Open(); using var m = new MemoryStream(); s.CopyTo(m); return m.ToArray(); }

        string html = Read("index.html");
        var doc = new HtmlParser().ParseDocument(html);
        var references = doc.QuerySelectorAll("[src]").Select(e => e.GetAttribute("src")!)
            .Concat(doc.QuerySelectorAll("[href]").Select(e => e.GetAttribute("href")!)).ToList();
        Assert.NotEmpty(references);
        foreach (var reference in references) Assert.True(entries.ContainsKey(reference), $"index.html refers to {reference}, which is not in the zip");
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        Assert.Empty(doc.QuerySelectorAll("script, link, iframe, object"));
        Assert.DoesNotContain("url(", html);
        Assert.Equal("Red <square> & friends", doc.QuerySelector("h1")!.TextContent);
        var caption = doc.QuerySelectorAll(".caption")[0];
        Assert.Equal("red square", caption.QuerySelector("strong")!.TextContent);
        Assert.Contains("<script>alert('x')</script>", caption.TextContent); // escaped, as text
        Assert.Contains("a link and docs", caption.TextContent); // links kept as their text only

        // Every picture decodes; the photo (one image behind all three panes) is stored once.
        var pngs = entries.Keys.Where(n => n.EndsWith(".png", StringComparison.Ordinal)).Order().ToList();
        Assert.Equal(["heatmaps/001-heatmap.png", "heatmaps/001-overlay.png", "heatmaps/002-pane1-heatmap.png", "heatmaps/002-pane1-overlay.png",
            "heatmaps/002-pane2-heatmap.png", "heatmaps/002-pane2-overlay.png", Assert.Single(entries.Keys, n => n.StartsWith("images/"))], pngs);
        foreach (var name in pngs) RgbImage.Decode(Bytes(name), name);
        Assert.Equal(File.ReadAllBytes(Fixture.Image("wide.png")), Bytes(pngs[^1]));
        Assert.Equal((24, 24), Size("heatmaps/001-heatmap.png")); // LLaVA-1.5's 24 × 24 grid, one pixel per token
        Assert.Equal((3, 3), Size("heatmaps/002-pane2-heatmap.png")); // a 3 × 3 tile of the anyres run
        Assert.Equal((200, 130), Size("heatmaps/002-pane1-overlay.png"));
        (int, int) Size(string name) { var png = RgbImage.Decode(Bytes(name), name); return (png.Width, png.Height); }

        using var manifest = JsonDocument.Parse(Read("gallery.json"));
        var root = manifest.RootElement;
        Assert.Equal(GalleryExport.Format, root.GetProperty("format").GetString());
        Assert.Equal("Red <square> & friends", root.GetProperty("title").GetString());
        var items = root.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(["run", "comparison"], items.Select(i => i.GetProperty("kind").GetString()));
        Assert.Equal(Caption, items[0].GetProperty("caption").GetString()); // the Markdown as written
        var view = items[0].GetProperty("view");
        Assert.Equal((1, 1, 2, "image", "magma", 0.5), (view.GetProperty("step").GetInt32(), view.GetProperty("layer").GetInt32(), view.GetProperty("head").GetInt32(),
            view.GetProperty("viewName").GetString(), view.GetProperty("colormap").GetString(), view.GetProperty("opacity").GetDouble()));
        var run = Factory.WithDb(db => db.Runs.Single(r => r.Id == host.DemoRunId));
        var pane = items[0].GetProperty("panes").EnumerateArray().Single();
        Assert.Equal((run.Id, run.ModelName, run.Schedule, run.Question, run.GeneratedText), (pane.GetProperty("runId").GetGuid(), pane.GetProperty("model").GetString(),
            pane.GetProperty("schedule").GetString(), pane.GetProperty("question").GetString(), pane.GetProperty("generatedText").GetString()));
        Assert.Equal("heatmaps/001-overlay.png", pane.GetProperty("overlay").GetString());
        var panes = items[1].GetProperty("panes").EnumerateArray().ToList();
        Assert.Equal([host.AnyresRunA, host.AnyresRunB], panes.Select(p => p.GetProperty("runId").GetGuid()));
        Assert.All(panes, p => Assert.Equal("tile 0,1", p.GetProperty("viewName").GetString()));
        foreach (var p in panes.Append(pane))
            foreach (var file in new[] { "photo", "overlay", "heatmap" }) Assert.True(entries.ContainsKey(p.GetProperty(file).GetString()!), file);
    }

    [Fact]
    public async Task TheGalleryPageShowsTheItemsInOrderWithLinksToTheirViews()
    {
        var gallery = await TwoItemGalleryAsync(GalleryVisibility.Team);
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        var doc = new HtmlParser().ParseDocument(await viewer.GetStringAsync($"/galleries/{gallery.Id}"));
        var items = doc.QuerySelectorAll("[data-testid=gallery-item]");
        Assert.Equal([gallery.Items[0].Id.ToString(), gallery.Items[1].Id.ToString()], items.Select(i => i.GetAttribute("data-item")));
        Assert.Equal($"/runs/{host.DemoRunId}?step=1&layer=1&head=2&view=image&cmap=magma&opacity=0.5",
            items[0].QuerySelector("[data-testid=open-run]")?.GetAttribute("href"));
        Assert.NotNull(items[1].QuerySelector($"a[href='/compare/{host.ComparisonId}']"));
        // A Viewer gets no editing controls, only the export.
        Assert.Empty(doc.QuerySelectorAll("[data-testid=item-controls], [data-testid=gallery-owner-bar], [draggable=true]"));
        Assert.NotNull(doc.QuerySelector("[data-testid=export]"));
    }
}
