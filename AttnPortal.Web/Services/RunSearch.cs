using AttnPortal.Data;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

/// <summary>One page of runs, newest first, with the positions of its neighbours (null where there is none).</summary>
public sealed record RunPage(IReadOnlyList<Run> Runs, int Total, RunCursor? Newer, RunCursor? Older);

/// <summary>The values the filter bar offers.</summary>
public sealed record RunFilterChoices(IReadOnlyList<string> Models, IReadOnlyList<string> Schedules, IReadOnlyList<string> Labels,
    IReadOnlyList<string> Tags, IReadOnlyList<string> Owners);

/// <summary>
/// Finds runs by <see cref="RunFilter"/> and pages through them newest first with keyset paging (a page starts after the
/// key (CreatedUtc, Id) of a row, not at an offset), so a deep page costs what the first does and runs queued meanwhile
/// neither repeat nor skip rows.
/// </summary>
public sealed class RunSearch(PortalDbContext db)
{
    public const int DefaultPageSize = 25, MaxPageSize = 100;
    private const string LikeEscape = "\\";

    /// <param name="cursor">Where the page starts (a <see cref="RunCursor"/> as text); null for the newest runs.</param>
    /// <exception cref="FormatException">A damaged cursor.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A page size outside 1 to <see cref="MaxPageSize"/>.</exception>
    public async Task<RunPage> PageAsync(RunFilter filter, string? cursor = null, int pageSize = DefaultPageSize, CancellationToken cancel = default)
    {
        if (pageSize is < 1 or > MaxPageSize)
            throw new ArgumentOutOfRangeException(nameof(pageSize), pageSize, $"a page holds 1 to {MaxPageSize} runs, not {pageSize}");
        var at = cursor is null ? null : RunCursor.Parse(cursor);
        var matching = Matching(filter);
        int total = await matching.CountAsync(cancel);

        var query = at switch
        {
            null => NewestFirst(matching),
            { Older: true } => NewestFirst(OlderThan(matching, at.CreatedUtc, at.Id)),
            _ => NewerThan(matching, at.CreatedUtc, at.Id).OrderBy(r => r.CreatedUtc).ThenBy(r => r.Id),
        };
        var rows = await query.Include(r => r.Image).Include(r => r.Owner).AsNoTracking().Take(pageSize + 1).ToListAsync(cancel);
        bool more = rows.Count > pageSize; // in the direction of travel
        if (more) rows.RemoveAt(pageSize);
        if (at is { Older: false }) rows.Reverse();
        if (rows.Count == 0) return new RunPage(rows, total, null, null);

        Run first = rows[0], last = rows[^1];
        bool newer = at switch
        {
            null => false,
            { Older: true } => await NewerThan(matching, first.CreatedUtc, first.Id).AnyAsync(cancel),
            _ => more,
        };
        bool older = at is { Older: false } ? await OlderThan(matching, last.CreatedUtc, last.Id).AnyAsync(cancel) : more;
        return new RunPage(rows, total, newer ? RunCursor.Before(first) : null, older ? RunCursor.After(last) : null);
    }

    /// <summary>Every run <paramref name="filter"/> matches, unordered (for counting, exporting, or paging).</summary>
    public IQueryable<Run> Matching(RunFilter filter)
    {
        var f = filter.Normalized();
        IQueryable<Run> q = db.Runs;
        if (f.Model is { } model) q = q.Where(r => r.ModelName == model);
        if (f.Schedule is { } schedule) q = q.Where(r => r.Schedule == schedule);
        if (f.Status is { } status) q = q.Where(r => r.Status == status);
        if (f.From is { } from)
        {
            var start = from.ToDateTime(TimeOnly.MinValue);
            q = q.Where(r => r.CreatedUtc >= start);
        }
        if (f.To is { } to)
        {
            var end = to.AddDays(1).ToDateTime(TimeOnly.MinValue); // the whole of the last day
            q = q.Where(r => r.CreatedUtc < end);
        }
        // Text, label and tag are each looked up once as a set (IN (subquery)) rather than per run: walking the runs
        // newest first then needs only the (CreatedUtc, Id) index until a page is full.
        if (f.Text is { } text)
        {
            string pattern = $"%{EscapeLike(text)}%";
            var containing = db.Runs.Where(r => EF.Functions.Like(r.Question, pattern, LikeEscape)
                || r.GeneratedText != null && EF.Functions.Like(r.GeneratedText, pattern, LikeEscape)).Select(r => r.Id);
            q = q.Where(r => containing.Contains(r.Id));
        }
        if (f.Label is { } label)
        {
            string name = EscapeLike(label); // LIKE without wildcards: equality, ignoring ASCII case
            var labelled = db.Annotations.Where(a => a.RunId != null && a.DeletedUtc == null && a.Label != null && EF.Functions.Like(a.Label.Name, name, LikeEscape))
                .Select(a => a.RunId!.Value);
            q = q.Where(r => labelled.Contains(r.Id));
        }
        if (f.Tag is { } tag)
        {
            string name = EscapeLike(tag);
            var tagged = db.HeadTags.Where(t => t.DeletedUtc == null && EF.Functions.Like(t.Tag, name, LikeEscape)).Select(t => t.ModelName);
            q = q.Where(r => tagged.Contains(r.ModelName));
        }
        if (f.Owner is { } owner)
        {
            string normalized = owner.ToUpperInvariant(); // Identity's default normalizer
            q = q.Where(r => r.Owner!.NormalizedUserName == normalized || r.Owner.NormalizedEmail == normalized);
        }
        return q;
    }

    public async Task<RunFilterChoices> ChoicesAsync(IEnumerable<string> configuredModels, IEnumerable<string> schedules, CancellationToken cancel = default)
    {
        // Models that ran once but are no longer configured can still be looked for.
        var models = configuredModels.Union(await db.Runs.Select(r => r.ModelName).Distinct().ToListAsync(cancel)).Order(StringComparer.Ordinal).ToList();
        var labels = await db.Labels.Where(l => l.DeletedUtc == null).Select(l => l.Name).Distinct().OrderBy(n => n).ToListAsync(cancel);
        var tags = await db.HeadTags.Where(t => t.DeletedUtc == null).Select(t => t.Tag).Distinct().OrderBy(t => t).ToListAsync(cancel);
        var owners = await db.Users.Where(u => u.UserName != null).Select(u => u.UserName!).OrderBy(n => n).ToListAsync(cancel);
        return new RunFilterChoices(models, schedules.ToList(), labels, tags, owners);
    }

    /// <summary>Makes user text match literally inside a LIKE pattern (escape character \).</summary>
    public static string EscapeLike(string text) => text.Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_");

    private static IOrderedQueryable<Run> NewestFirst(IQueryable<Run> q) => q.OrderByDescending(r => r.CreatedUtc).ThenByDescending(r => r.Id);

    // The first conjunct bounds the (CreatedUtc, Id) index range; the second breaks ties between runs queued together.
    private static IQueryable<Run> OlderThan(IQueryable<Run> q, DateTime created, Guid id) =>
        q.Where(r => r.CreatedUtc <= created && (r.CreatedUtc < created || r.Id.CompareTo(id) < 0));

    private static IQueryable<Run> NewerThan(IQueryable<Run> q, DateTime created, Guid id) =>
        q.Where(r => r.CreatedUtc >= created && (r.CreatedUtc > created || r.Id.CompareTo(id) > 0));
}
