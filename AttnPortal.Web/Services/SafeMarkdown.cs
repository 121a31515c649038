using Markdig;
using Markdig.Renderers;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;

namespace AttnPortal.Web.Services;

/// <summary>
/// Markdown (captions, descriptions) to HTML that can carry no script: raw HTML is escaped as text (Markdig's
/// DisableHtml), and a link or image keeps its address only when that is http(s), mailto or scheme-less (a
/// <c>javascript:</c> or <c>data:</c> link becomes its text). For an exported site (<c>offline</c>) no link or image
/// keeps an address at all, so the page refers to nothing outside itself.
/// </summary>
public static class SafeMarkdown
{
    // No generic-attributes extension ({onclick=…}) and no raw HTML: nothing in the text becomes an attribute or a tag.
    private static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder()
        .UseEmphasisExtras().UsePipeTables().UseAutoLinks().DisableHtml().Build();

    public static string ToHtml(string? markdown, bool offline = false)
    {
        var document = Markdown.Parse(markdown ?? "", Pipeline);
        // One link at a time, each found by a fresh walk of the tree: unwrapping restructures the inlines around it.
        while (document.Descendants<Inline>().FirstOrDefault(i => i switch
               {
                   LinkInline l => offline || !IsSafe(l.Url),
                   AutolinkInline a => offline || !IsSafe(a.Url),
                   _ => false,
               }) is { } unsafeLink)
        {
            if (unsafeLink is LinkInline link) Unwrap(link);
            else
            {
                var autolink = (AutolinkInline)unsafeLink;
                autolink.InsertBefore(new LiteralInline(autolink.Url));
                autolink.Remove();
            }
        }
        using var writer = new StringWriter();
        var renderer = new HtmlRenderer(writer);
        Pipeline.Setup(renderer);
        renderer.Render(document);
        return writer.ToString();
    }

    /// <summary>Whether a browser would only ever navigate or fetch with this address (no script, no inline data).</summary>
    internal static bool IsSafe(string? url)
    {
        if (string.IsNullOrEmpty(url)) return true;
        // Browsers drop whitespace and control characters inside a scheme ("java\tscript:"), so judge it without them.
        string u = string.Concat(url.Where(c => c > ' '));
        int colon = u.IndexOf(':');
        if (colon < 0) return true;
        int pathStart = u.IndexOfAny(['/', '?', '#']);
        if (pathStart >= 0 && pathStart < colon) return true; // a colon inside a path, not a scheme
        return u[..colon].ToLowerInvariant() is "http" or "https" or "mailto";
    }

    /// <summary>A link becomes its text; an image its alt text.</summary>
    private static void Unwrap(LinkInline link)
    {
        if (link.IsImage)
        {
            // InsertBefore + Remove, not ReplaceBy: ReplaceBy left the inlines after the image out of later traversals.
            link.InsertBefore(new LiteralInline(string.Concat(link.Descendants<LiteralInline>().Select(l => l.Content.ToString()))));
            link.Remove();
            return;
        }
        foreach (var child in link.ToList())
        {
            child.Remove();
            link.InsertBefore(child);
        }
        link.Remove();
    }
}
