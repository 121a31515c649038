using System.Globalization;
using AttnPortal.Data;
using Microsoft.AspNetCore.WebUtilities;

namespace AttnPortal.Web.Services;

/// <summary>
/// What to look for among runs; a null field matches every run. Text is contained (case-insensitively for ASCII) in
/// the question or the generated text; Label: runs with a live annotation carrying a label of that name; Tag: runs of a
/// model with a live head tag of that name; Owner: the owner's user name or email; From/To: creation dates (UTC),
/// both inclusive.
/// </summary>
public sealed record RunFilter
{
    public string? Model { get; init; }
    public string? Schedule { get; init; }
    public string? Text { get; init; }
    public string? Label { get; init; }
    public string? Tag { get; init; }
    public string? Owner { get; init; }
    public DateOnly? From { get; init; }
    public DateOnly? To { get; init; }
    public RunStatus? Status { get; init; }

    public static RunFilter None { get; } = new();

    /// <summary>The same filter with blank text fields dropped and the others trimmed, so "  " and null mean the same.</summary>
    public RunFilter Normalized() => this with
    {
        Model = Clean(Model), Schedule = Clean(Schedule), Text = Clean(Text), Label = Clean(Label), Tag = Clean(Tag), Owner = Clean(Owner),
    };

    private static string? Clean(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();
}

/// <summary>A filter and a page position as they appear in a URL's query string (so links can be shared and the back
/// button works): <c>model, schedule, q, label, tag, owner, from, to</c> (yyyy-MM-dd), <c>status, page</c> (cursor).</summary>
public sealed record RunQuery(RunFilter Filter, string? Cursor = null)
{
    private const string DateFormat = "yyyy-MM-dd";

    /// <summary>Reads the query string of <paramref name="uri"/> (absolute or relative); unknown parameters are ignored.</summary>
    /// <exception cref="FormatException">A date or status that does not parse, with a message naming it.</exception>
    public static RunQuery Parse(string uri)
    {
        int q = uri.IndexOf('?');
        var values = q < 0 ? [] : QueryHelpers.ParseQuery(uri[q..]);
        string? Get(string key) => values.TryGetValue(key, out var v) && v.Count > 0 && !string.IsNullOrWhiteSpace(v[^1]) ? v[^1]!.Trim() : null;
        var filter = new RunFilter
        {
            Model = Get("model"), Schedule = Get("schedule"), Text = Get("q"), Label = Get("label"), Tag = Get("tag"), Owner = Get("owner"),
            From = Date(Get("from"), "from"), To = Date(Get("to"), "to"), Status = Status(Get("status")),
        };
        return new RunQuery(filter, Get("page"));
    }

    /// <summary><paramref name="path"/> with this filter and position as its query string (empty fields left out).</summary>
    public string ToUri(string path)
    {
        var f = Filter.Normalized();
        var pairs = new List<KeyValuePair<string, string?>>();
        void Add(string key, string? value) { if (value is not null) pairs.Add(new(key, value)); }
        Add("model", f.Model);
        Add("schedule", f.Schedule);
        Add("q", f.Text);
        Add("label", f.Label);
        Add("tag", f.Tag);
        Add("owner", f.Owner);
        Add("from", f.From?.ToString(DateFormat, CultureInfo.InvariantCulture));
        Add("to", f.To?.ToString(DateFormat, CultureInfo.InvariantCulture));
        Add("status", f.Status?.ToString());
        Add("page", Cursor);
        return QueryHelpers.AddQueryString(path, pairs);
    }

    public static DateOnly? Date(string? text, string name) =>
        text is null ? null
            : DateOnly.TryParseExact(text, DateFormat, CultureInfo.InvariantCulture, DateTimeStyles.None, out var d) ? d
            : throw new FormatException($"{name} '{text}' is not a date (use {DateFormat})");

    private static RunStatus? Status(string? text) =>
        text is null ? null
            : Enum.TryParse<RunStatus>(text, ignoreCase: true, out var s) && Enum.IsDefined(s) && !int.TryParse(text, out _) ? s
            : throw new FormatException($"status '{text}' is not one of {string.Join(", ", Enum.GetNames<RunStatus>())}");
}
