using AngleSharp.Html.Parser;

namespace AttnPortal.Tests.Portal;

/// <summary>The Runs page as the server renders it for a link: the filter and the page position come from the URL.</summary>
public sealed class RunsPageTests(ExportEndpointTests.Host host) : IClassFixture<ExportEndpointTests.Host>
{
    private async Task<AngleSharp.Dom.IDocument> PageAsync(string url)
    {
        using var viewer = await host.Factory.SignInAsync(PortalFactory.ViewerEmail);
        return new HtmlParser().ParseDocument(await viewer.GetStringAsync(url));
    }

    private static string[] RunIds(AngleSharp.Dom.IDocument page) =>
        page.QuerySelectorAll("[data-testid=run-status]").Select(e => e.GetAttribute("data-run")!).ToArray();

    [Fact]
    public async Task ALinkWithAFilterShowsOnlyTheRunsItMatches()
    {
        var all = await PageAsync("/runs");
        Assert.Equal(3, RunIds(all).Length);
        Assert.Equal("3 runs", all.QuerySelector("[data-testid=runs-total]")!.TextContent.Trim());

        var failed = await PageAsync($"/runs?model={ExportEndpointTests.Host.OtherModel}&status=Failed");
        Assert.Equal([host.RunC.ToString()], RunIds(failed));
        Assert.Equal("1 run", failed.QuerySelector("[data-testid=runs-total]")!.TextContent.Trim());

        var labelled = await PageAsync("/runs?label=attention%20sink");
        Assert.Equal(new[] { host.RunA, host.RunC }.Select(id => id.ToString()).Order(), RunIds(labelled).Order());
    }

    [Fact]
    public async Task APageAfterTheNewestRunLinksBackToTheFirst()
    {
        // Paging is by key, so the page size is fixed (25): with three runs there is one page, and no links.
        var page = await PageAsync("/runs");
        Assert.Empty(page.QuerySelectorAll("[data-testid=page-older], [data-testid=page-newer], [data-testid=page-first]"));

        // A page that starts after the newest run (as its Older link would) offers the way back.
        string newest = RunIds(page)[0];
        var created = host.Factory.WithDb(db => db.Runs.Single(r => r.Id == Guid.Parse(newest)).CreatedUtc);
        var after = await PageAsync($"/runs?page={new Web.Services.RunCursor(true, created, Guid.Parse(newest))}");
        Assert.Equal(RunIds(page)[1..], RunIds(after));
        Assert.NotNull(after.QuerySelector("[data-testid=page-newer]"));
        Assert.NotNull(after.QuerySelector("[data-testid=page-first]"));
        Assert.Null(after.QuerySelector("[data-testid=page-older]"));
    }

    [Theory]
    [InlineData("/runs?page=not-a-cursor", "damaged")]
    [InlineData("/runs?from=2026-13-01", "from '2026-13-01' is not a date")]
    [InlineData("/runs?status=Lost", "status 'Lost' is not one of")]
    public async Task ABadLinkSaysWhatIsWrong(string url, string message)
    {
        var page = await PageAsync(url);
        Assert.Contains(message, page.QuerySelector("[data-testid=search-error]")!.TextContent);
        Assert.Empty(RunIds(page));
    }
}
