using System.Diagnostics;
using AttnPortal.Data;
using AttnPortal.PortalBench;
using AttnPortal.Web.Services;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

// Portal benchmarks (not tests: nothing is asserted). On a temporary data directory:
//   search      RunSearch over N seeded runs (default 10 000)
//   comparison  two 7B-sized artifacts (32 tokens) opened and drawn as a comparison's panes need them
//   live        the portal in-process and two Chromium contexts: live changes from one to the other, and a search typed
//               in the filter bar (skipped without Chromium)
// Usage (from the repository root): dotnet run --project tools/PortalBench -c Release -- [--runs N] [--repeat N]
//   [--no-browser] [--keep]
int count = 10_000, repeat = 21;
bool browser = true, keep = false;
try
{
    for (int i = 0; i < args.Length; i++)
    {
        int Positive(string name) => i + 1 < args.Length && int.TryParse(args[++i], out int n) && n > 0 ? n
            : throw new ArgumentException($"{name} needs a positive whole number");
        switch (args[i])
        {
            case "--runs": count = Positive("--runs"); break;
            case "--repeat": repeat = Positive("--repeat"); break;
            case "--no-browser": browser = false; break;
            case "--keep": keep = true; break;
            default: Console.Error.WriteLine($"unknown argument '{args[i]}' (use --runs N, --repeat N, --no-browser, --keep)"); return 2;
        }
    }
}
catch (ArgumentException e) { Console.Error.WriteLine(e.Message); return 2; }
string chromium = Environment.GetEnvironmentVariable("ATTNPORTAL_CHROMIUM") is { Length: > 0 } c ? c : "/usr/bin/chromium";
if (browser && !File.Exists(chromium)) { Console.Error.WriteLine($"no Chromium at {chromium}: the live part is skipped"); browser = false; }

string dataDirectory = Directory.CreateTempSubdirectory("attnportal-bench-").FullName;
var options = new PortalOptions { DataDirectory = dataDirectory };
var paths = new PortalPaths(Directory.GetCurrentDirectory(), options);
paths.EnsureCreated();
var services = new ServiceCollection()
    .AddDbContext<PortalDbContext>(o => o.UseSqlite(paths.SqliteConnectionString(options.Database)))
    .AddScoped<RunSearch>()
    .BuildServiceProvider();
var table = new BenchTable();
try
{
    var seeding = Stopwatch.StartNew();
    string photo = await ArtifactBench.WritePhotoAsync(paths), firstOwner;
    using (var scope = services.CreateScope())
    {
        var db = scope.ServiceProvider.GetRequiredService<PortalDbContext>();
        await db.Database.MigrateAsync();
        await RunSeeder.SeedAsync(db, count, photo);
        await PortalStartup.RefreshPlannerStatisticsAsync(db); // what the portal does at start-up
        firstOwner = db.Users.OrderBy(u => u.UserName).First().Id;
    }
    Console.Error.WriteLine($"seeded {count:N0} runs in {seeding.Elapsed.TotalSeconds:F1} s into {dataDirectory}");

    await SearchBench.RunAsync(services, count, repeat, table);
    var (a, b) = await ArtifactBench.SeedAsync(services, paths, photo, firstOwner);
    await ArtifactBench.RunAsync(services, paths, a, b, repeat, table);
    if (browser) await LiveBench.RunAsync(dataDirectory, chromium, repeat, table);

    Console.WriteLine($"AttnPortal portal benchmark, {DateTime.UtcNow:yyyy-MM-dd}, {Environment.ProcessorCount} CPU cores, SQLite, " +
        $"{count:N0} seeded runs{(browser ? $", headless Chromium ({chromium})" : ", no browser")}; times in ms");
    Console.WriteLine();
    table.Print(Console.Out);
    return 0;
}
catch (Exception e) when (e is TimeoutException or Microsoft.Playwright.PlaywrightException)
{
    Console.Error.WriteLine($"benchmark stopped: {e.Message}");
    return 1;
}
finally
{
    await services.DisposeAsync();
    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    if (keep) Console.Error.WriteLine($"kept {dataDirectory}");
    else Directory.Delete(dataDirectory, recursive: true);
}
