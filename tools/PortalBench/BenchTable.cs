using System.Diagnostics;
using System.Globalization;

namespace AttnPortal.PortalBench;

/// <summary>Milliseconds of repeated measurements.</summary>
public sealed record Stats(IReadOnlyList<double> Milliseconds)
{
    public int Count => Milliseconds.Count;
    public double Median
    {
        get
        {
            var s = Milliseconds.Order().ToList();
            return s.Count == 0 ? double.NaN : s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
        }
    }
    public double Min => Milliseconds.Count == 0 ? double.NaN : Milliseconds.Min();
    public double Max => Milliseconds.Count == 0 ? double.NaN : Milliseconds.Max();

    /// <summary>Runs <paramref name="action"/> <paramref name="warmUp"/> times unmeasured, then <paramref name="n"/> times measured.</summary>
    public static async Task<Stats> TimeAsync(int n, Func<Task> action, int warmUp = 1)
    {
        for (int i = 0; i < warmUp; i++) await action();
        var times = new List<double>(n);
        for (int i = 0; i < n; i++)
        {
            long start = Stopwatch.GetTimestamp();
            await action();
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        return new Stats(times);
    }
}

/// <summary>The one table the benchmark prints: part, what was measured, how often, and the times.</summary>
public sealed class BenchTable
{
    private readonly List<(string Part, string What, Stats Stats, string Note)> _rows = [];

    public void Add(string part, string what, Stats stats, string note = "")
    {
        _rows.Add((part, what, stats, note));
        Console.Error.WriteLine($"  {part}: {what}: median {F(stats.Median)} ms over {stats.Count}");
    }

    public void Print(TextWriter output)
    {
        output.WriteLine("| part | measurement | n | median ms | min ms | max ms | note |");
        output.WriteLine("|---|---|--:|--:|--:|--:|---|");
        foreach (var (part, what, s, note) in _rows)
            output.WriteLine($"| {part} | {what} | {s.Count} | {F(s.Median)} | {F(s.Min)} | {F(s.Max)} | {note} |");
    }

    private static string F(double ms) => double.IsNaN(ms) ? "–" : ms.ToString(ms < 10 ? "0.00" : ms < 100 ? "0.0" : "0", CultureInfo.InvariantCulture);
}
