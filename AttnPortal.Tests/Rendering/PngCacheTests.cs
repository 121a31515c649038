using AttnPortal.Web.Rendering;

namespace AttnPortal.Tests.Rendering;

public sealed class PngCacheTests
{
    private static PngCacheKey Key(int step, string run = "run-1", string colormap = "viridis", float opacity = 0.6f, string kind = "overlay",
        string? variant = null, string view = "image") =>
        new(run, kind, view, new AttentionSelection(step, null, 3), colormap, opacity, variant);

    private static byte[] Png(int size, byte fill) => Enumerable.Repeat(fill, size).ToArray();

    private static long BytesOnDisk(string root) =>
        Directory.EnumerateFiles(root, "*.png", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    [Fact]
    public void WrittenPngsReadBackAndEveryKeyPartMatters()
    {
        using var dir = new Fixture.TempDir();
        var cache = new PngCache(dir.Path);
        Assert.False(cache.TryGet(Key(0), out _));
        Assert.True(cache.Put(Key(0), Png(100, 1)));
        Assert.True(cache.TryGet(Key(0), out var png));
        Assert.Equal(Png(100, 1), png);
        Assert.Equal((1, 100L), (cache.Count, cache.SizeBytes));

        var variants = new[]
        {
            Key(1), Key(0, run: "run-2"), Key(0, colormap: "magma"), Key(0, opacity: 0.7f), Key(0, kind: "heads"),
            Key(0, variant: "minmax"), new PngCacheKey("run-1", "overlay", "image", new AttentionSelection(0, 2, 3), "viridis", 0.6f),
            Key(0, view: "tiles"), Key(0, view: "tile 0,1"),
        };
        foreach (var other in variants)
        {
            Assert.NotEqual(cache.PathFor(Key(0)), cache.PathFor(other));
            Assert.False(cache.TryGet(other, out _));
        }
        Assert.Equal(cache.PathFor(Key(0)), cache.PathFor(Key(0, colormap: "VIRIDIS", opacity: 0.6000001f)));

        // Replacing keeps one entry; no temporary file is left behind.
        Assert.True(cache.Put(Key(0), Png(50, 2)));
        Assert.True(cache.TryGet(Key(0), out png));
        Assert.Equal(Png(50, 2), png);
        Assert.Equal((1, 50L), (cache.Count, cache.SizeBytes));
        Assert.Empty(Directory.EnumerateFiles(dir.Path, "*.tmp", SearchOption.AllDirectories));
        Assert.StartsWith(Path.Combine(dir.Path, "run-1") + Path.DirectorySeparatorChar, cache.PathFor(Key(0)));
    }

    [Fact]
    public void LeastRecentlyUsedFilesAreEvictedDownToTheLowWaterMark()
    {
        using var dir = new Fixture.TempDir();
        var cache = new PngCache(dir.Path, maxBytes: 10_000);
        for (int i = 0; i < 4; i++) Assert.True(cache.Put(Key(i), Png(2_000, (byte)i)));
        Assert.Equal(8_000, cache.SizeBytes);
        Assert.True(cache.TryGet(Key(0), out _)); // 0 is now the most recently used; 1 the least

        Assert.True(cache.Put(Key(4), Png(2_500, 4))); // 10 500 > 10 000: evict down to 9 000
        Assert.False(cache.TryGet(Key(1), out _));
        Assert.False(File.Exists(cache.PathFor(Key(1))));
        foreach (int kept in new[] { 0, 2, 3, 4 }) Assert.True(cache.TryGet(Key(kept), out _), $"entry {kept}");
        Assert.Equal(8_500, cache.SizeBytes);
        Assert.Equal(cache.SizeBytes, BytesOnDisk(dir.Path));

        // Touch 2, 3, 4 so that 0 becomes the oldest, then overflow again by a lot.
        foreach (int i in new[] { 2, 3, 4 }) cache.TryGet(Key(i), out _);
        Assert.True(cache.Put(Key(5), Png(4_000, 5)));
        Assert.False(cache.TryGet(Key(0), out _));
        Assert.False(cache.TryGet(Key(2), out _));
        Assert.True(cache.TryGet(Key(5), out _));
        Assert.True(cache.SizeBytes <= 9_000);
        Assert.Equal(cache.SizeBytes, BytesOnDisk(dir.Path));

        Assert.False(cache.Put(Key(9), Png(10_001, 9))); // larger than the whole cache: not stored
        Assert.False(File.Exists(cache.PathFor(Key(9))));
    }

    [Fact]
    public void ReopeningIndexesExistingFilesByAgeAndDropsStaleTemporaries()
    {
        using var dir = new Fixture.TempDir();
        var first = new PngCache(dir.Path);
        for (int i = 0; i < 3; i++) first.Put(Key(i), Png(1_000, (byte)i));
        File.SetLastWriteTimeUtc(first.PathFor(Key(0)), DateTime.UtcNow.AddHours(-2));
        File.SetLastWriteTimeUtc(first.PathFor(Key(1)), DateTime.UtcNow.AddHours(-1));
        string stale = first.PathFor(Key(7)) + ".abc.tmp", fresh = first.PathFor(Key(8)) + ".def.tmp";
        File.WriteAllBytes(stale, [1]);
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddHours(-1));
        File.WriteAllBytes(fresh, [1]); // may belong to a writer still at work

        var second = new PngCache(dir.Path, maxBytes: 2_500); // over the limit at once: the oldest goes
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(fresh));
        Assert.False(second.TryGet(Key(0), out _));
        Assert.True(second.TryGet(Key(1), out var png));
        Assert.Equal(Png(1_000, 1), png);
        Assert.True(second.TryGet(Key(2), out _));
        Assert.Equal(2_000, second.SizeBytes);
    }

    [Fact]
    public void GetOrAddRendersOnceForConcurrentCallers()
    {
        using var dir = new Fixture.TempDir();
        var cache = new PngCache(dir.Path);
        int renders = 0;
        var results = new byte[16][];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            results[i] = cache.GetOrAdd(Key(0), () =>
            {
                Interlocked.Increment(ref renders);
                Thread.Sleep(200);
                return Png(300, 42);
            });
        });
        Assert.Equal(1, renders);
        Assert.All(results, r => Assert.Equal(Png(300, 42), r));
        Assert.Equal(Png(300, 42), cache.GetOrAdd(Key(0), () => throw new InvalidOperationException("must come from the cache")));
        Assert.Throws<InvalidOperationException>(() => cache.GetOrAdd(Key(1), () => throw new InvalidOperationException("boom")));
        Assert.Equal(Png(1, 1), cache.GetOrAdd(Key(1), () => Png(1, 1))); // a failed rendering is not remembered
    }

    [Fact]
    public void RunsAreRemovedTogetherAndOddRunIdsStayInside()
    {
        using var dir = new Fixture.TempDir();
        var cache = new PngCache(dir.Path);
        cache.Put(Key(0, run: "a"), Png(10, 1));
        cache.Put(Key(1, run: "a"), Png(10, 1));
        cache.Put(Key(0, run: "b"), Png(10, 1));
        foreach (var odd in new[] { "../escape", "/abs/path", "..", "a/b", "a_b", "ünï cödé" })
        {
            string path = cache.PathFor(Key(0, run: odd));
            Assert.StartsWith(dir.Path + Path.DirectorySeparatorChar, Path.GetFullPath(path));
            Assert.Equal(dir.Path, Path.GetDirectoryName(Path.GetDirectoryName(path)));
        }
        Assert.NotEqual(cache.PathFor(Key(0, run: "a/b")), cache.PathFor(Key(0, run: "a_b")));

        Assert.Equal(2, cache.RemoveRun("a"));
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "a")));
        Assert.False(cache.TryGet(Key(0, run: "a"), out _));
        Assert.True(cache.TryGet(Key(0, run: "b"), out _));
        Assert.Equal((1, 10L), (cache.Count, cache.SizeBytes));
    }

    [Fact]
    public void ConcurrentPutsAndGetsKeepTheIndexEqualToTheDisk()
    {
        using var dir = new Fixture.TempDir();
        var cache = new PngCache(dir.Path, maxBytes: 50_000);
        Parallel.For(0, 400, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var key = Key(i % 60, run: $"r{i % 3}");
            if (cache.TryGet(key, out var png)) Assert.Equal(Png(png.Length, (byte)(i % 60)), png);
            else cache.Put(key, Png(1_000 + i % 7 * 100, (byte)(i % 60)));
        });
        Assert.True(cache.SizeBytes <= 50_000);
        Assert.Equal(cache.SizeBytes, BytesOnDisk(dir.Path));
        Assert.Equal(cache.Count, Directory.EnumerateFiles(dir.Path, "*.png", SearchOption.AllDirectories).Count());
        Assert.Empty(Directory.EnumerateFiles(dir.Path, "*.tmp", SearchOption.AllDirectories));
    }
}
