using AttnPortal.Data;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

/// <summary>
/// Saved comparisons: 2 to 4 finished runs side by side, in pane order. One row per ordered set of runs (its RunKey,
/// the ids joined by ","), so saving the same comparison twice, or two people saving it at once, gives the same row:
/// the one that annotations and galleries point at. Each call uses its own DbContext.
/// </summary>
public sealed class ComparisonService(IServiceScopeFactory scopes)
{
    public const int MinRuns = 2, MaxRuns = 4;

    /// <summary>The <c>runs</c> query of /compare ("a,b[,c,d]") as run ids, in order.</summary>
    /// <exception cref="ArgumentException">Nothing given, or a part that is not a run id.</exception>
    public static IReadOnlyList<Guid> ParseRunIds(string? text)
    {
        var parts = (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new ArgumentException($"choose {MinRuns} to {MaxRuns} runs to compare (/compare?runs=ID,ID)");
        return parts.Select(p => Guid.TryParse(p, out var id) ? id : throw new ArgumentException($"'{p}' is not a run id")).ToList();
    }

    /// <summary>The unique key of an ordered set of runs: their ids joined by ",".</summary>
    public static string KeyOf(IReadOnlyList<Guid> runIds) => string.Join(",", runIds.Select(id => id.ToString("D")));

    /// <summary>The runs, in the order given, once they are known to make a comparison.</summary>
    /// <exception cref="ArgumentException">Fewer than 2 or more than 4 runs, a run twice, an unknown run, or a run without an attention artifact.</exception>
    public async Task<IReadOnlyList<Run>> CheckRunsAsync(IReadOnlyList<Guid> runIds, CancellationToken cancel = default)
    {
        using var scope = scopes.CreateScope();
        return await CheckRunsAsync(Db(scope), runIds, cancel);
    }

    /// <summary>The saved comparison of exactly these runs in this order, created (by <paramref name="userId"/>) if there is none.</summary>
    /// <exception cref="ArgumentException">As <see cref="CheckRunsAsync(IReadOnlyList{Guid}, CancellationToken)"/>, or an unknown user.</exception>
    public async Task<Comparison> GetOrCreateAsync(IReadOnlyList<Guid> runIds, string userId, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(runIds);
        ArgumentException.ThrowIfNullOrEmpty(userId);
        string key = KeyOf(runIds);
        if (await FindByKeyAsync(key, cancel) is { } existing) return existing;
        using (var scope = scopes.CreateScope())
        {
            var db = Db(scope);
            await CheckRunsAsync(db, runIds, cancel);
            if (!await db.Users.AnyAsync(u => u.Id == userId, cancel)) throw new ArgumentException($"no user with id {userId}");
            var comparison = new Comparison { Id = Guid.NewGuid(), CreatedById = userId, CreatedUtc = DateTime.UtcNow, RunKey = key };
            comparison.Runs.AddRange(runIds.Select((id, i) => new ComparisonRun { ComparisonId = comparison.Id, RunId = id, Position = i }));
            db.Comparisons.Add(comparison);
            try
            {
                await db.SaveChangesAsync(cancel); // the comparison and its runs in one transaction
            }
            catch (DbUpdateException e) when (e.InnerException is SqliteException { SqliteExtendedErrorCode: UniqueViolation })
            {
                // Someone saved the same runs between our look-up and this insert: theirs is the comparison.
            }
        }
        return await FindByKeyAsync(key, cancel) ?? throw new InvalidOperationException($"the comparison {key} was neither found nor created");
    }

    /// <summary>A saved comparison with its runs (and each run's image) in pane order, or null.</summary>
    public async Task<Comparison?> FindAsync(Guid id, CancellationToken cancel = default)
    {
        using var scope = scopes.CreateScope();
        return await WithRuns(Db(scope)).SingleOrDefaultAsync(c => c.Id == id, cancel);
    }

    private const int UniqueViolation = 2067; // SQLITE_CONSTRAINT_UNIQUE

    private static PortalDbContext Db(IServiceScope scope) => scope.ServiceProvider.GetRequiredService<PortalDbContext>();

    private async Task<Comparison?> FindByKeyAsync(string key, CancellationToken cancel)
    {
        using var scope = scopes.CreateScope();
        return await WithRuns(Db(scope)).SingleOrDefaultAsync(c => c.RunKey == key, cancel);
    }

    private static IQueryable<Comparison> WithRuns(PortalDbContext db) =>
        db.Comparisons.AsNoTracking().Include(c => c.CreatedBy)
            .Include(c => c.Runs.OrderBy(r => r.Position)).ThenInclude(r => r.Run!).ThenInclude(r => r.Image);

    private static async Task<IReadOnlyList<Run>> CheckRunsAsync(PortalDbContext db, IReadOnlyList<Guid> runIds, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(runIds);
        if (runIds.Count is < MinRuns or > MaxRuns)
            throw new ArgumentException($"a comparison shows {MinRuns} to {MaxRuns} runs; {runIds.Count} {(runIds.Count == 1 ? "was" : "were")} given");
        if (runIds.GroupBy(id => id).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new ArgumentException($"run {twice.Key} is given {twice.Count()} times; a comparison shows distinct runs");
        var found = await db.Runs.AsNoTracking().Include(r => r.Image).Include(r => r.Owner)
            .Where(r => runIds.Contains(r.Id)).ToDictionaryAsync(r => r.Id, cancel);
        var unknown = runIds.Where(id => !found.ContainsKey(id)).ToList();
        if (unknown.Count > 0) throw new ArgumentException($"no run with id {string.Join(", ", unknown)}");
        var unfinished = runIds.Select(id => found[id]).Where(r => r.ArtifactPath is null).ToList();
        if (unfinished.Count > 0)
            throw new ArgumentException("only runs with an attention artifact can be compared; " +
                string.Join("; ", unfinished.Select(r => $"run {r.Id} ({r.Schedule}) is {r.Status}")));
        return runIds.Select(id => found[id]).ToList();
    }
}
