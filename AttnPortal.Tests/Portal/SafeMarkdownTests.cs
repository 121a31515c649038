using AngleSharp.Html.Parser;
using AttnPortal.Web.Services;

namespace AttnPortal.Tests.Portal;

/// <summary>Captions rendered from Markdown carry no script, in the portal and in an exported site.</summary>
public sealed class SafeMarkdownTests
{
    [Theory]
    [InlineData("[x](javascript:alert(1))")]
    [InlineData("[x](JavaScript:alert(1))")]
    [InlineData("[x](<java\tscript:alert(1)>)")]
    [InlineData("[x](&#106;avascript:alert(1))")]
    [InlineData("[x](vbscript:msgbox(1))")]
    [InlineData("![x](data:image/svg+xml;base64,PHN2Zy8+)")]
    [InlineData("<javascript:alert(1)>")]
    [InlineData("[x][r]\n\n[r]: javascript:alert(1)")]
    public void ScriptAndDataAddressesBecomeText(string markdown)
    {
        var doc = new HtmlParser().ParseDocument(SafeMarkdown.ToHtml(markdown));
        Assert.Empty(doc.QuerySelectorAll("a[href], img[src]"));
        Assert.NotEmpty(doc.Body!.TextContent.Trim()); // the link's text stays
    }

    [Fact]
    public void RawHtmlIsEscapedAndSafeLinksAreKeptOnlyOnline()
    {
        const string markdown = "<img src=x onerror=alert(1)> **bold** [docs](https://example.org/a) [run](/runs/1?step=2) <b onclick=\"x\">b</b> {onclick=alert(1)}";
        var online = new HtmlParser().ParseDocument(SafeMarkdown.ToHtml(markdown));
        Assert.Empty(online.QuerySelectorAll("img, [onclick], [onerror], b"));
        Assert.Equal("bold", online.QuerySelector("strong")?.TextContent);
        Assert.Equal(["https://example.org/a", "/runs/1?step=2"], online.QuerySelectorAll("a").Select(a => a.GetAttribute("href")));
        Assert.Contains("<img src=x onerror=alert(1)>", online.Body!.TextContent);

        var offline = new HtmlParser().ParseDocument(SafeMarkdown.ToHtml(markdown, offline: true));
        Assert.Empty(offline.QuerySelectorAll("a, img"));
        Assert.Contains("docs run", offline.Body!.TextContent);
    }

    [Theory]
    [InlineData("3", 5, 1, 3)]
    [InlineData("mean", 5, 1, null)]
    [InlineData("MEAN", 5, 1, null)]
    [InlineData("5", 5, 1, 1)]   // out of range: unchanged
    [InlineData("-1", 5, 1, 1)]
    [InlineData("x", 5, null, null)]
    [InlineData(null, 5, 2, 2)]  // absent: unchanged
    public void AnAddressNamesAnAxisIndexOrItsMean(string? text, int count, int? current, int? expected) =>
        Assert.Equal(expected, PinnedViewText.ParseAxis(text, count, current));
}
