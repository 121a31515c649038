using Markdig;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;

namespace AttnPortal.Web.Rendering;

/// <summary>
/// Markdown from teammates to HTML that cannot run script: raw HTML is not parsed (it comes out as text), no extension
/// that writes attributes is enabled, and link and image targets other than http(s), mailto and relative ones are dropped.
/// </summary>
public static class SafeMarkdown
{
    private static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder()
        .DisableHtml()
        .UsePipeTables()
        .UseEmphasisExtras()
        .UseAutoLinks()
        .UseTaskLists()
        .Build();

    public static string ToHtml(string? markdown)
    {
        var document = Markdown.Parse(markdown ?? "", Pipeline);
        foreach (var link in document.Descendants<LinkInline>())
            if (!IsSafe(link.Url)) link.Url = "";
        foreach (var link in document.Descendants<AutolinkInline>())
            if (!IsSafe(link.Url)) link.Url = "";
        return document.ToHtml(Pipeline);
    }

    private static bool IsSafe(string? url)
    {
        if (string.IsNullOrWhiteSpace(url)) return true;
        // Browsers ignore control characters and spaces inside a scheme ("java\tscript:"): judge what they would see.
        string seen = new(url.Where(c => !char.IsControl(c) && !char.IsWhiteSpace(c)).ToArray());
        int colon = seen.IndexOf(':');
        int boundary = seen.IndexOfAny(['/', '?', '#']);
        if (colon < 0 || boundary >= 0 && boundary < colon) return true; // no scheme: relative
        string scheme = seen[..colon].ToLowerInvariant();
        return scheme is "http" or "https" or "mailto";
    }
}
