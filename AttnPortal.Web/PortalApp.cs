using AttnPortal.Data;
using AttnPortal.Web.Components;
using AttnPortal.Web.Endpoints;
using AttnPortal.Web.Services;
using Hangfire;
using Hangfire.Dashboard;
using Hangfire.InMemory;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using MudBlazor.Services;

namespace AttnPortal.Web;

/// <summary>Composes the portal: Identity and EF Core on one database, Hangfire, the engine, Blazor.</summary>
public static class PortalApp
{
    public static WebApplication Build(string[] args)
    {
        // appsettings.json and wwwroot/ sit at the repository root (the run command is issued from there); a published
        // portal carries copies beside its binaries.
        string root = File.Exists(Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json")) ? Directory.GetCurrentDirectory() : AppContext.BaseDirectory;
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = root, WebRootPath = Path.Combine(root, "wwwroot") });
        // Package assets (_content/MudBlazor, _framework/blazor.web.js) from the build's manifest, layered over our
        // web root; a published portal has them copied into its wwwroot instead and this is a no-op.
        builder.WebHost.UseStaticWebAssets();
        var options = builder.Configuration.GetSection("Portal").Get<PortalOptions>() ?? new PortalOptions();
        var paths = new PortalPaths(builder.Environment.ContentRootPath, options);
        paths.EnsureCreated();
        builder.Services.AddSingleton(options).AddSingleton(paths);

        builder.Services.AddDbContext<PortalDbContext>(o => o.UseSqlite(paths.SqliteConnectionString(options.Database)));
        builder.Services.AddIdentity<PortalUser, IdentityRole>(o =>
            {
                o.Password.RequiredLength = 8;
                o.Password.RequireNonAlphanumeric = false;
                o.User.RequireUniqueEmail = true;
            })
            .AddEntityFrameworkStores<PortalDbContext>()
            .AddDefaultTokenProviders();
        builder.Services.ConfigureApplicationCookie(o =>
        {
            o.LoginPath = "/login";
            o.AccessDeniedPath = "/denied";
            o.Events.OnRedirectToLogin = ApiAware(o.Events.OnRedirectToLogin, StatusCodes.Status401Unauthorized);
            o.Events.OnRedirectToAccessDenied = ApiAware(o.Events.OnRedirectToAccessDenied, StatusCodes.Status403Forbidden);
        });
        builder.Services.AddAuthorizationBuilder()
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build())
            .AddPolicy(Policies.CanWrite, p => p.RequireRole(Roles.Admin, Roles.Researcher))
            .AddPolicy(Policies.Admin, p => p.RequireRole(Roles.Admin));
        builder.Services.AddCascadingAuthenticationState();

        builder.Services.AddHangfire(c => c.UseSimpleAssemblyNameTypeSerializer().UseRecommendedSerializerSettings().UseInMemoryStorage());
        builder.Services.AddHangfireServer(o => { o.Queues = [RunQueue.GpuQueue]; o.WorkerCount = 1; });
        builder.Services.AddSingleton<RunEvents>().AddSingleton<ReviewEvents>().AddSingleton<RunCancellation>().AddSingleton<EngineCache>();
        builder.Services.AddScoped<ImageStore>().AddScoped<RunQueue>().AddScoped<RunJob>().AddScoped<RunSearch>();
        builder.Services.AddSingleton<ArtifactViews>().AddSingleton<ComparisonService>();
        builder.Services.AddReview();
        builder.Services.AddScoped<GalleryService>().AddSingleton<GalleryImages>().AddSingleton<GalleryExport>();
        builder.Services.AddMudServices();
        builder.Services.AddRazorComponents().AddInteractiveServerComponents();
        builder.Services.AddAntiforgery();

        var app = builder.Build();
        if (!app.Environment.IsDevelopment()) app.UseExceptionHandler("/error", createScopeForErrors: true);
        app.UseStaticFiles();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseAntiforgery();
        app.UseHangfireDashboard("/hangfire", new DashboardOptions { Authorization = [new AdminOnlyDashboard()], IgnoreAntiforgeryToken = false });
        app.MapAccountEndpoints();
        app.MapRunEndpoints();
        app.MapCompareEndpoints();
        app.MapExportEndpoints();
        app.MapGalleryEndpoints();
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
        return app;
    }

    /// <summary>API calls get a status code; pages get the redirect to the sign-in page.</summary>
    private static Func<RedirectContext<CookieAuthenticationOptions>, Task> ApiAware(Func<RedirectContext<CookieAuthenticationOptions>, Task> redirect, int status) =>
        context =>
        {
            if (!context.Request.Path.StartsWithSegments("/api")) return redirect(context);
            context.Response.StatusCode = status;
            return Task.CompletedTask;
        };

    private sealed class AdminOnlyDashboard : IDashboardAuthorizationFilter
    {
        public bool Authorize(DashboardContext context) => context.GetHttpContext().User.IsInRole(Roles.Admin);
    }
}

public static class Policies
{
    public const string CanWrite = "CanWrite", Admin = "Admin";
}
