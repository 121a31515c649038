using AttnPortal.Data;
using Hangfire;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

/// <summary>What runs once before the portal serves: schema, first admin, default labels, and recovery of unfinished runs.</summary>
public static class PortalStartup
{
    public static async Task RunAsync(IServiceProvider services)
    {
        using var scope = services.CreateScope();
        var sp = scope.ServiceProvider;
        var log = sp.GetRequiredService<ILoggerFactory>().CreateLogger("AttnPortal.Startup");
        sp.GetRequiredService<PortalPaths>().EnsureCreated();
        var db = sp.GetRequiredService<PortalDbContext>();
        await db.Database.MigrateAsync();
        await RefreshPlannerStatisticsAsync(db);
        await EnsureRolesAndAdminAsync(sp, log);
        await LabelService.SeedDefaultsAsync(db, sp.GetRequiredService<UserManager<PortalUser>>());
        await RecoverRunsAsync(db, sp.GetRequiredService<IBackgroundJobClient>(), log);
    }

    /// <summary>
    /// Lets SQLite gather the statistics its query planner lacks (ANALYZE of the tables that never had it, or that grew
    /// much since). Without them it takes any indexed equality (model, schedule, status) for selective and sorts
    /// thousands of runs for a page that walking the (CreatedUtc, Id) index fills at once.
    /// </summary>
    public static Task RefreshPlannerStatisticsAsync(PortalDbContext db) => db.Database.ExecuteSqlRawAsync("PRAGMA optimize=0x10002");

    private static async Task EnsureRolesAndAdminAsync(IServiceProvider sp, ILogger log)
    {
        var roles = sp.GetRequiredService<RoleManager<IdentityRole>>();
        foreach (var role in Roles.All)
            if (!await roles.RoleExistsAsync(role)) await roles.CreateAsync(new IdentityRole(role));

        var users = sp.GetRequiredService<UserManager<PortalUser>>();
        if ((await users.GetUsersInRoleAsync(Roles.Admin)).Count > 0) return;
        var admin = sp.GetRequiredService<PortalOptions>().Admin;
        if (string.IsNullOrWhiteSpace(admin.Email) || string.IsNullOrWhiteSpace(admin.Password))
        {
            log.LogWarning("No admin account exists. Set Portal__Admin__Email and Portal__Admin__Password (environment) or Portal:Admin in appsettings.json and restart to create one.");
            return;
        }
        var user = new PortalUser { UserName = admin.Email, Email = admin.Email, EmailConfirmed = true, DisplayName = "Administrator" };
        var created = await users.CreateAsync(user, admin.Password);
        if (!created.Succeeded)
            throw new InvalidOperationException($"cannot create the first admin {admin.Email}: {string.Join("; ", created.Errors.Select(e => e.Description))}");
        await users.AddToRoleAsync(user, Roles.Admin);
        log.LogInformation("Created the first admin account {Email}", admin.Email);
    }

    /// <summary>Runs still Queued or Running were interrupted (restart, crash): queue them again, or end them if a cancel was asked.</summary>
    private static async Task RecoverRunsAsync(PortalDbContext db, IBackgroundJobClient jobs, ILogger log)
    {
        var unfinished = await db.Runs.Where(r => r.Status == RunStatus.Queued || r.Status == RunStatus.Running).ToListAsync();
        foreach (var run in unfinished)
        {
            run.Status = run.CancelRequested ? RunStatus.Canceled : RunStatus.Queued;
            run.FinishedUtc = run.CancelRequested ? DateTime.UtcNow : null;
            run.StartedUtc = run.CancelRequested ? run.StartedUtc : null;
            run.StepsDone = run.CancelRequested ? run.StepsDone : 0;
        }
        await db.SaveChangesAsync();
        var requeued = unfinished.Where(r => r.Status == RunStatus.Queued).ToList();
        foreach (var run in requeued) RunQueue.Enqueue(jobs, run.Id);
        if (requeued.Count > 0) log.LogInformation("Re-queued {Count} unfinished run(s)", requeued.Count);
    }
}
