using System.Security.Claims;
using AttnPortal.Data;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

/// <summary>A saved comparison or a gallery a run appears in, by id and what to call it.</summary>
public sealed record RunAppearance(Guid Id, string Title);

/// <summary>Where else a run can be seen: the saved comparisons that include it and the galleries that show it (as an
/// item of its own or inside a comparison item) which <paramref name="user"/> may open.</summary>
public static class RunAppearances
{
    public static async Task<(IReadOnlyList<RunAppearance> Comparisons, IReadOnlyList<RunAppearance> Galleries)> ForRunAsync(
        PortalDbContext db, Guid runId, ClaimsPrincipal user, CancellationToken cancel = default)
    {
        var comparisons = await db.Comparisons.AsNoTracking()
            .Where(c => c.Runs.Any(cr => cr.RunId == runId))
            .OrderBy(c => c.CreatedUtc)
            .Select(c => new { c.Id, c.Title, Runs = c.Runs.OrderBy(cr => cr.Position).Select(cr => new { cr.Run!.ModelName, cr.Run.Schedule }).ToList() })
            .ToListAsync(cancel);

        string? userId = user.UserId();
        bool admin = user.IsInRole(Roles.Admin);
        var galleries = await db.Galleries.AsNoTracking()
            .Where(g => g.DeletedUtc == null && (admin || g.Visibility != GalleryVisibility.Private || g.OwnerId == userId))
            .Where(g => g.Items.Any(i => i.RunId == runId
                || i.ComparisonId != null && db.ComparisonRuns.Any(cr => cr.ComparisonId == i.ComparisonId && cr.RunId == runId)))
            .OrderBy(g => g.Title)
            .Select(g => new RunAppearance(g.Id, g.Title))
            .ToListAsync(cancel);

        return (comparisons.Select(c => new RunAppearance(c.Id, c.Title is { Length: > 0 } t ? t : Describe(c.Runs.Select(r => (r.ModelName, r.Schedule)).ToList()))).ToList(),
            galleries);
    }

    /// <summary>"standard vs alternating" when the runs share a model, else each run's model and schedule.</summary>
    private static string Describe(IReadOnlyList<(string Model, string Schedule)> runs) =>
        runs.Select(r => r.Model).Distinct().Count() == 1
            ? string.Join(" vs ", runs.Select(r => r.Schedule))
            : string.Join(" vs ", runs.Select(r => $"{r.Model} {r.Schedule}"));
}
