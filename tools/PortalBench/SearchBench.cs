using AttnPortal.Data;
using AttnPortal.Web.Services;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.PortalBench;

/// <summary>RunSearch on the seeded database, each query in a fresh scope (a DbContext per request, as the portal does).</summary>
public static class SearchBench
{
    public static async Task RunAsync(IServiceProvider services, int count, int repeat, BenchTable table)
    {
        const string part = "search";
        string size = $"{count:N0} runs";
        async Task<T> With<T>(Func<RunSearch, Task<T>> query)
        {
            using var scope = services.CreateScope();
            return await query(scope.ServiceProvider.GetRequiredService<RunSearch>());
        }
        async Task Time(string what, Func<RunSearch, Task> query, string note = "") =>
            table.Add(part, what, await Stats.TimeAsync(repeat, () => With(async s => { await query(s); return 0; })), note);

        // A cursor about nine tenths of the way down: the row at that offset, found once (without timing) by offset.
        Run deep;
        using (var scope = services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<PortalDbContext>();
            deep = await db.Runs.AsNoTracking().OrderByDescending(r => r.CreatedUtc).ThenByDescending(r => r.Id).Skip(count * 9 / 10).FirstAsync();
        }
        string deepCursor = RunCursor.After(deep).ToString();
        var text = new RunFilter { Text = RunSeeder.RareWords[0] };
        var label = new RunFilter { Label = RunSeeder.Labels[0] };
        var combined = new RunFilter { Model = RunSeeder.Models[0], Schedule = "alternating", From = DateOnly.FromDateTime(DateTime.UtcNow.AddDays(-90)), To = DateOnly.FromDateTime(DateTime.UtcNow) };
        int textTotal = (await With(s => s.PageAsync(text))).Total, labelTotal = (await With(s => s.PageAsync(label))).Total;

        await Time("first page (25, newest first, with total)", s => s.PageAsync(RunFilter.None), size);
        await Time("deep page by cursor (25 after row 90 %)", s => s.PageAsync(RunFilter.None, deepCursor), size);
        await Time("previous page by cursor (25 before row 90 %)", s => s.PageAsync(RunFilter.None, RunCursor.Before(deep).ToString()), size);
        await Time($"text \"{text.Text}\" in question or answer, first page", s => s.PageAsync(text), $"{textTotal} match");
        await Time($"label \"{label.Label}\", first page", s => s.PageAsync(label), $"{labelTotal} match");
        await Time($"head tag \"{RunSeeder.Tag}\", first page", s => s.PageAsync(new RunFilter { Tag = RunSeeder.Tag }));
        await Time("model + schedule + 90 days, first page", s => s.PageAsync(combined));
        await Time("author (email), first page", s => s.PageAsync(new RunFilter { Owner = "researcher3@lab.bench" }));
        await Time("count only, no filter", s => s.Matching(RunFilter.None).CountAsync(), size);
        await Time("count only, text filter", s => s.Matching(text).CountAsync());
    }
}
