using AttnPortal.Data;
using AttnPortal.Web.Components.Shared;
using AttnPortal.Web.Rendering;
using AttnPortal.Web.Services;

namespace AttnPortal.Tests.Review;

/// <summary>Screen ↔ image mapping of the annotation layer, safe Markdown, avatar initials.</summary>
public sealed class ReviewUnitTests
{
    // A 200 × 130 photo shown at 400 × 260 CSS pixels (twice its size) and at 150 × 97.5 (smaller, fractional).
    private static readonly StageMapping Double = new(400, 260, 200, 130);
    private static readonly StageMapping Small = new(150, 97.5, 200, 130);

    [Theory]
    [InlineData(0, 0, 0, 0)]
    [InlineData(100, 50, 50, 25)]
    [InlineData(400, 260, 200, 130)]
    [InlineData(399, 1, 199.5, 0.5)]
    public void ShownPixelsMapToImagePixelsAndBack(double sx, double sy, double ix, double iy)
    {
        Assert.Equal((ix, iy), Double.ToImage(sx, sy));
        Assert.Equal((sx, sy), Double.ToShown(ix, iy));
    }

    [Fact]
    public void EachAxisScalesOnItsOwnAndPointsOffThePhotoAreClampedToItsEdge()
    {
        var (x, y) = Small.ToImage(75, 48.75);
        Assert.Equal(100, x, 9);
        Assert.Equal(65, y, 9);
        Assert.Equal((0.0, 130.0), Double.ToImage(-30, 300));
        Assert.Equal((200.0, 0.0), Double.ToImage(1000, -1));
    }

    [Fact]
    public void ADragBecomesTheBoxBetweenItsEndsInAnyDirection()
    {
        var expected = MarkGeometry.Box(50, 25, 50, 26);
        Assert.Equal(expected, Double.Box((100, 50), (200, 102)));
        Assert.Equal(expected, Double.Box((200, 102), (100, 50))); // dragged up and left
        Assert.Equal(expected, Double.Box((100, 102), (200, 50)));
        // Past the edge: clipped to the image.
        Assert.Equal(MarkGeometry.Box(150, 100, 50, 30), Double.Box((300, 200), (450, 290)));
        // A drag of less than 3 shown pixels either way is a click, not a box.
        Assert.Null(Double.Box((100, 50), (102, 150)));
        Assert.Null(Double.Box((100, 50), (300, 52.5)));
        Assert.NotNull(Double.Box((100, 50), (103, 53)));
        Assert.Equal(MarkGeometry.Point(50, 25), Double.Point((100, 50)));
        Assert.Equal(MarkGeometry.Point(200, 0), Double.Point((420, -3)));
    }

    [Fact]
    public void MarkdownKeepsFormattingButNeverScript()
    {
        string html = SafeMarkdown.ToHtml("""
            **bold** and `code` and [docs](https://example.org/a?b=1)
            <script>alert('x')</script>
            <img src=x onerror=alert(1)>
            [click](javascript:alert(1)) [tab](java	script:alert(2)) [data](data:text/html;base64,PHNjcmlwdD4=)
            ![pic](javascript:alert(3)) <javascript:alert(4)> [ref][r] [rel](/runs/1) [mail](mailto:a@b.org)
            *x*{onclick=alert(5)}

            [r]: vbscript:msgbox(6)
            """);
        Assert.Contains("<strong>bold</strong>", html);
        Assert.Contains("<code>code</code>", html);
        Assert.Contains("<a href=\"https://example.org/a?b=1\">docs</a>", html);
        Assert.Contains("<a href=\"/runs/1\">rel</a>", html);
        Assert.Contains("<a href=\"mailto:a@b.org\">mail</a>", html);
        Assert.Contains("&lt;script&gt;", html);
        Assert.Contains("&lt;img src=x onerror=alert(1)&gt;", html);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<img src=x", html, StringComparison.OrdinalIgnoreCase);
        foreach (string scheme in new[] { "javascript:", "vbscript:", "data:", "java\tscript:" })
            Assert.DoesNotContain($"=\"{scheme}", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("onclick=\"", html);
        Assert.DoesNotContain("href=\"javascript", html, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("researcher@portal.test", "RE")]
    [InlineData("ada.lovelace@lab.org", "AL")]
    [InlineData("x", "X")]
    [InlineData("", "?")]
    public void InitialsComeFromTheNameBeforeTheAt(string name, string initials) => Assert.Equal(initials, ReviewText.Initials(name));

    [Fact]
    public void AViewStateDescribesWhatTheMarkWasMadeOn()
    {
        Assert.Equal("token 2 · layer 1 · head 0 · tiles", new ViewState(2, 1, 0, "tiles").Describe());
        Assert.Equal("all tokens · mean layers · mean heads", ViewState.None.Describe());
    }

    [Fact]
    public void AnnotationCaptionsAreTheLabelAndTheFirstLineShortened()
    {
        var label = new LabelView(Guid.NewGuid(), "grounded", "#2ca02c", null, 1, null);
        AnnotationView Make(string body, LabelView? l) => new(Guid.NewGuid(), AnnotationTarget.Run(Guid.NewGuid()), MarkGeometry.Point(1, 1), body, l,
            ViewState.None, "a", "a", DateTime.UtcNow, null, DateTime.UtcNow, 1, null, []);
        Assert.Equal("grounded: the cat", AnnotationLayer.Caption(Make("the cat\nsecond line", label)));
        Assert.Equal("grounded", AnnotationLayer.Caption(Make("", label)));
        Assert.Equal("abcdefghijklmnopqrstuvwxyz01234…", AnnotationLayer.Caption(Make("abcdefghijklmnopqrstuvwxyz0123456789", null)));
    }
}
