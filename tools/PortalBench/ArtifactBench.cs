using System.Diagnostics;
using AttnPortal.Data;
using AttnPortal.Web.Rendering;
using AttnPortal.Web.Services;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.PortalBench;

/// <summary>
/// A comparison of two 7B-sized runs as the portal serves it (ArtifactViews): opening both artifacts, then each pane's
/// heatmap (the chosen token, mean over layers and heads: 1 024 rows averaged) and head grid (32 × 32 heads).
/// </summary>
public static class ArtifactBench
{
    public const int PhotoWidth = 640, PhotoHeight = 480;

    /// <summary>A 640 × 480 "photo" (a colour-mapped gradient, drawn by the portal's own PNG encoder); its path relative to the data directory.</summary>
    public static async Task<string> WritePhotoAsync(PortalPaths paths)
    {
        var gradient = new float[24 * 32];
        for (int i = 0; i < gradient.Length; i++) gradient[i] = i % 32 + i / 32;
        string photo = Path.Combine("images", "bench-photo.png");
        await File.WriteAllBytesAsync(paths.Resolve(photo), HeatmapRenderer.HeatmapPng(gradient, 24, 32, Colormap.Viridis, scale: 20));
        return photo;
    }

    /// <summary>Two succeeded runs (standard and alternating) of <paramref name="photo"/> with synthetic 7B artifacts.</summary>
    public static async Task<(Guid A, Guid B)> SeedAsync(IServiceProvider services, PortalPaths paths, string photo, string ownerId)
    {
        using var scope = services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<PortalDbContext>();
        var image = new ImageAsset
        {
            Id = Guid.NewGuid(), Sha256 = new string('b', 64), FileName = "bench-photo.png", ContentType = "image/png",
            Width = PhotoWidth, Height = PhotoHeight, StoredPath = photo, CreatedUtc = DateTime.UtcNow,
        };
        db.Images.Add(image);
        var ids = new List<Guid>();
        foreach (var (schedule, seed) in new[] { ("standard", 1), ("alternating", 2) })
        {
            var id = Guid.NewGuid();
            string artifact = Path.Combine("artifacts", $"{id}.safetensors");
            SyntheticArtifact.Write(paths.Resolve(artifact), seed, PhotoWidth, PhotoHeight);
            var now = DateTime.UtcNow.AddHours(-1);
            db.Runs.Add(new Run
            {
                Id = id, ImageId = image.Id, ModelName = "llava-1.5-7b (synthetic)", Schedule = schedule, Question = "Where is the gradient steepest?",
                Aspect = "pad", MaxNewTokens = SyntheticArtifact.Steps, Status = RunStatus.Succeeded, StepsDone = SyntheticArtifact.Steps,
                GeneratedText = "synthetic", ArtifactPath = artifact, OwnerId = ownerId, BatchId = Guid.NewGuid(), CreatedUtc = now, StartedUtc = now, FinishedUtc = now,
            });
            ids.Add(id);
        }
        await db.SaveChangesAsync();
        return (ids[0], ids[1]);
    }

    public static async Task RunAsync(IServiceProvider services, PortalPaths paths, Guid a, Guid b, int repeat, BenchTable table)
    {
        const string part = "comparison";
        long bytes = new FileInfo(Path.Combine(paths.Artifacts, $"{a}.safetensors")).Length;
        string shape = $"2 × {bytes / 1e6:F0} MB, {SyntheticArtifact.Steps} tokens";
        var scopes = services.GetRequiredService<IServiceScopeFactory>();

        // Cold: a fresh ArtifactViews (nothing in memory) and an empty PNG cache; the files are in the OS page cache.
        var open = new List<double>();
        var first = new List<double>();
        for (int i = 0; i < Math.Max(3, repeat / 4); i++)
        {
            if (Directory.Exists(paths.Cache)) Directory.Delete(paths.Cache, recursive: true);
            var views = new ArtifactViews(scopes, paths);
            long t = Stopwatch.GetTimestamp();
            var runs = new[] { (await views.OpenAsync(a)).Attention!, (await views.OpenAsync(b)).Attention! };
            open.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            t = Stopwatch.GetTimestamp();
            Panes(views, runs, [a, b], step: 0);
            first.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }
        table.Add(part, "open both artifacts, cold (read + parse into memory)", new Stats(open), shape + "; files in the OS page cache");
        table.Add(part, "first view of both panes, cold (2 heatmaps + 2 head grids)", new Stats(first), "PNG cache empty");

        var warm = new ArtifactViews(scopes, paths);
        var attention = new[] { (await warm.OpenAsync(a)).Attention!, (await warm.OpenAsync(b)).Attention! };
        Panes(warm, attention, [a, b], step: 0);
        int next = 1;
        table.Add(part, "token change, warm (artifacts in memory, PNGs not yet drawn)",
            await Stats.TimeAsync(Math.Min(repeat, SyntheticArtifact.Steps - 1), () => { Panes(warm, attention, [a, b], next++); return Task.CompletedTask; }, warmUp: 0),
            "mean over 32 layers × 32 heads");
        table.Add(part, "same token again (PNGs from the cache)",
            await Stats.TimeAsync(repeat, () => { Panes(warm, attention, [a, b], step: 1); return Task.CompletedTask; }));
        table.Add(part, "open both artifacts again (in memory)",
            await Stats.TimeAsync(repeat, async () => { await warm.OpenAsync(a); await warm.OpenAsync(b); }), "one database read each");
    }

    /// <summary>What a comparison's panes fetch for one token: each run's heatmap (mean over layers and heads) and head grid.</summary>
    private static void Panes(ArtifactViews views, AttentionRun[] runs, Guid[] ids, int step)
    {
        for (int i = 0; i < runs.Length; i++)
        {
            var view = runs[i].PreferredView;
            views.Heatmap(ids[i], runs[i], view, new AttentionSelection(step, null, null), Colormap.Viridis);
            views.HeadGrid(ids[i], runs[i], view, step, Colormap.Viridis);
        }
    }
}
