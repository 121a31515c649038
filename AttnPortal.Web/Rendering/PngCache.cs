using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace AttnPortal.Web.Rendering;

/// <summary>What a cached PNG shows. <paramref name="Variant"/> carries whatever else changes the pixels (normalisation, options, width).</summary>
/// <param name="Kind">What was rendered, e.g. "overlay", "heads", "heatmap".</param>
/// <param name="View">The name of the run's image view (<see cref="AttnPortal.Inference.Images.ImageGridView"/>) drawn.</param>
public readonly record struct PngCacheKey(string RunId, string Kind, string View, AttentionSelection Selection, string Colormap, float Opacity, string? Variant = null)
{
    /// <summary>The text that is hashed into the file name.</summary>
    public string Canonical => string.Join('|', "v2", RunId, Kind, View, Selection.Key, Colormap.ToLowerInvariant(),
        Opacity.ToString("0.###", CultureInfo.InvariantCulture), Variant ?? "");
}

/// <summary>
/// A bounded disk cache of rendered PNGs, one folder per run (so a deleted run's images go with
/// <see cref="RemoveRun"/>). Files are written to a temporary name and renamed into place, so a reader never sees a
/// partial file. When the total passes <see cref="MaxBytes"/> the least recently used files are deleted down to 90 %
/// of it. Safe for concurrent use within one process; recency survives restarts through the files' write times,
/// which a hit refreshes.
/// </summary>
public sealed class PngCache
{
    public const long DefaultMaxBytes = 512L << 20;
    private const double LowWaterMark = 0.9;

    private readonly object _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal); // full path -> entry
    private readonly ConcurrentDictionary<string, Lazy<byte[]>> _rendering = new(StringComparer.Ordinal);
    private long _size;
    private long _clock;

    private sealed class Entry(long size, long lastUse)
    {
        public long Size { get; } = size;
        public long LastUse { get; set; } = lastUse;
    }

    /// <summary>The cache folder (full path).</summary>
    public string Root { get; }
    public long MaxBytes { get; }

    public long SizeBytes { get { lock (_gate) return _size; } }
    public int Count { get { lock (_gate) return _entries.Count; } }

    /// <summary>Opens (creating it if needed) a cache folder and indexes the PNGs already in it.</summary>
    public PngCache(string directory, long maxBytes = DefaultMaxBytes)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (maxBytes <= 0) throw new ArgumentOutOfRangeException(nameof(maxBytes), maxBytes, "the cache size must be positive");
        Root = Path.GetFullPath(directory);
        MaxBytes = maxBytes;
        Directory.CreateDirectory(Root);

        var found = new List<FileInfo>();
        foreach (var file in new DirectoryInfo(Root).EnumerateFiles("*", SearchOption.AllDirectories))
        {
            if (file.Name.EndsWith(".png", StringComparison.Ordinal)) found.Add(file);
            else if (file.Name.EndsWith(".tmp", StringComparison.Ordinal) && file.LastWriteTimeUtc < DateTime.UtcNow.AddMinutes(-10))
                TryDelete(file.FullName); // left by a crash mid-write
        }
        foreach (var file in found.OrderBy(f => f.LastWriteTimeUtc))
        {
            _entries[file.FullName] = new Entry(file.Length, ++_clock);
            _size += file.Length;
        }
        if (_size > MaxBytes)
            foreach (var path in SelectVictims(keep: null)) TryDelete(path);
    }

    /// <summary>The file a key is stored in (whether or not it exists).</summary>
    public string PathFor(PngCacheKey key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key.RunId, nameof(key));
        ArgumentException.ThrowIfNullOrEmpty(key.Kind, nameof(key));
        ArgumentException.ThrowIfNullOrEmpty(key.View, nameof(key));
        ArgumentNullException.ThrowIfNull(key.Colormap, nameof(key));
        return Path.Combine(Root, RunFolder(key.RunId), Hash(key.Canonical, 40) + ".png");
    }

    /// <summary>The cached PNG for <paramref name="key"/>, if there is one.</summary>
    public bool TryGet(PngCacheKey key, [NotNullWhen(true)] out byte[]? png)
    {
        string path = PathFor(key);
        Entry? entry;
        lock (_gate)
        {
            if (_entries.TryGetValue(path, out entry)) entry.LastUse = ++_clock;
        }
        png = null;
        if (entry is null) return false;
        try
        {
            png = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            lock (_gate) Forget(path, entry); // evicted between the lookup and the read, or deleted by hand
            return false;
        }
        try { File.SetLastWriteTimeUtc(path, DateTime.UtcNow); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return true;
    }

    /// <summary>Stores a PNG (replacing any under the same key); false when it could not be written or is larger than the whole cache.</summary>
    public bool Put(PngCacheKey key, byte[] png)
    {
        ArgumentNullException.ThrowIfNull(png);
        if (png.LongLength > MaxBytes) return false;
        string path = PathFor(key);
        string temp = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(temp, png);
            // Rename, index and evict under one lock, so the index always matches the files on disk.
            lock (_gate)
            {
                File.Move(temp, path, overwrite: true);
                if (_entries.Remove(path, out var old)) _size -= old.Size;
                var entry = new Entry(png.LongLength, ++_clock);
                _entries[path] = entry;
                _size += entry.Size;
                if (_size > MaxBytes)
                    foreach (var victim in SelectVictims(keep: entry)) TryDelete(victim);
            }
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            return false;
        }
    }

    /// <summary>
    /// The cached PNG, or <paramref name="render"/>'s result, stored. Concurrent callers with the same key share one
    /// rendering. A failure to store is not an error: the PNG is still returned.
    /// </summary>
    public byte[] GetOrAdd(PngCacheKey key, Func<byte[]> render)
    {
        ArgumentNullException.ThrowIfNull(render);
        if (TryGet(key, out var cached)) return cached;
        string path = PathFor(key);
        var job = _rendering.GetOrAdd(path, _ => new Lazy<byte[]>(() =>
        {
            var png = render();
            Put(key, png);
            return png;
        }, LazyThreadSafetyMode.ExecutionAndPublication));
        try
        {
            return job.Value;
        }
        finally
        {
            _rendering.TryRemove(new KeyValuePair<string, Lazy<byte[]>>(path, job));
        }
    }

    /// <summary>Deletes every cached PNG of a run; returns how many were indexed.</summary>
    public int RemoveRun(string runId)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        string folder = Path.Combine(Root, RunFolder(runId));
        string prefix = folder + Path.DirectorySeparatorChar;
        int removed = 0;
        lock (_gate)
        {
            foreach (var path in _entries.Keys.Where(p => p.StartsWith(prefix, StringComparison.Ordinal)).ToList())
            {
                _size -= _entries[path].Size;
                _entries.Remove(path);
                removed++;
            }
            try { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return removed;
    }

    /// <summary>Least recently used first, down to the low-water mark; removes them from the index (the caller, holding the lock, deletes the files).</summary>
    private List<string> SelectVictims(Entry? keep)
    {
        var victims = new List<string>();
        long target = (long)(MaxBytes * LowWaterMark);
        foreach (var (path, entry) in _entries.OrderBy(e => e.Value.LastUse).ToList())
        {
            if (_size <= target) break;
            if (ReferenceEquals(entry, keep)) continue;
            _entries.Remove(path);
            _size -= entry.Size;
            victims.Add(path);
        }
        return victims;
    }

    private void Forget(string path, Entry entry)
    {
        if (_entries.TryGetValue(path, out var current) && ReferenceEquals(current, entry))
        {
            _entries.Remove(path);
            _size -= entry.Size;
        }
    }

    /// <summary>A folder name for a run id: the id itself when it is plainly safe, else a sanitised prefix and a hash.</summary>
    internal static string RunFolder(string runId)
    {
        var safe = new StringBuilder(Math.Min(runId.Length, 48));
        foreach (char c in runId.AsSpan(0, Math.Min(runId.Length, 48)))
            safe.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_');
        string name = safe.ToString();
        return name == runId ? name : $"{name}~{Hash(runId, 16)}";
    }

    private static string Hash(string text, int hexChars) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..hexChars];

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
