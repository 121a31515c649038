using AttnPortal.Data;
using AttnPortal.Inference.Images;
using AttnPortal.Web.Rendering;

namespace AttnPortal.Web.Components.Shared;

/// <summary>One run of a comparison: its pane's label (A, B, …) and colour, the record and its attention.</summary>
public sealed record ComparedRun(string Label, string Colour, Run Run, AttentionRun Attention)
{
    private static readonly string[] Colours = ["#E69F00", "#009E73", "#CC79A7", "#555555"]; // not the difference map's blue and red

    public static ComparedRun At(int position, Run run, AttentionRun attention) =>
        new(((char)('A' + position)).ToString(), Colours[position % Colours.Length], run, attention);

    public NamedRun Named => new(Label, Attention);

    /// <summary>Token strings, or the ids where the artifact has none.</summary>
    public IReadOnlyList<string> Tokens =>
        Attention.GeneratedTokens.Count > 0 ? Attention.GeneratedTokens : Attention.GeneratedIds.Select(id => $"#{id}").ToList();
}

/// <summary>
/// What the comparison page shows: the runs, one selection that drives every pane (token, layer, head, image view,
/// shared colour scale) and what is computed from it. The computed parts are kept until the selection they depend on
/// changes, so re-rendering for an unrelated reason costs nothing.
/// </summary>
public sealed class ComparisonModel
{
    private readonly Memo<(AttentionSelection, string), Normalization?> _range = new();
    private readonly Memo<(int?, int?), IReadOnlyList<LayerShareChart.LayerSeries>> _layers = new();
    private readonly Memo<(int?, string, int, int), (IReadOnlyList<HeadDifference>? Rows, string? Problem)> _ranking = new();
    private readonly Memo<(AttentionSelection, string, int, int), (DifferenceGrid? Grid, string? Problem)> _difference = new();

    public ComparisonModel(IReadOnlyList<ComparedRun> runs)
    {
        if (runs.Count < 2) throw new ArgumentException("a comparison has at least two runs", nameof(runs));
        Runs = runs;
        Views = runs.SelectMany(r => r.Attention.Views).DistinctBy(v => v.Name).ToList();
        Cursor = new AttentionCursor(0, null, null, runs[0].Attention.PreferredView.Name);
    }

    public IReadOnlyList<ComparedRun> Runs { get; }
    /// <summary>Every view name of any run (the first run's first); a run without the chosen one shows its preferred view.</summary>
    public IReadOnlyList<ImageGridView> Views { get; }
    public AttentionCursor Cursor { get; set; }
    /// <summary>Colour every pane's heatmap on one min–max over all of them (otherwise each map on its own).</summary>
    public bool SharedScale { get; set; } = true;
    /// <summary>The two runs (positions) the difference and the head ranking compare.</summary>
    public int A { get; set; }
    public int B { get; set; } = 1;

    public int Steps => Runs.Max(r => r.Attention.Steps);
    public int Layers => Runs.Max(r => r.Attention.Layers);
    public int Heads => Runs.Max(r => r.Attention.Heads);
    public string ViewName => Cursor.View!;
    public AttentionSelection Selection => new(Cursor.Step, Cursor.Layer, Cursor.Head);

    public void Key(string key) => Cursor = AttentionKeys.Apply(key, Cursor, Steps, Layers, Heads, Views);

    public ImageGridView ViewOf(ComparedRun run) => run.Attention.FindView(ViewName) ?? run.Attention.PreferredView;

    /// <summary>Why <paramref name="run"/> cannot show the selection (a token, layer or head it lacks), or null.</summary>
    public string? ProblemOf(ComparedRun run) => ComparisonStats.SelectionProblem(run.Named, Selection);

    /// <summary>The one colour range of every pane that can show the selection, when <see cref="SharedScale"/> is on.</summary>
    public Normalization? SharedNormalization => !SharedScale ? null : _range.Get((Selection, ViewName), () =>
        ComparisonStats.SharedRange(Runs.Where(r => ProblemOf(r) is null).Select(r => r.Attention.ImageGrid(Selection, ViewOf(r))))
            is { } range ? Normalization.Fixed(range.Low, range.High) : null);

    /// <summary>Per run, the image/text split per layer for the selected token and head (a run without the token gets a note).</summary>
    public IReadOnlyList<LayerShareChart.LayerSeries> LayerSeries => _layers.Get((Cursor.Step, Cursor.Head), () =>
        Runs.Select(r => ComparisonStats.SelectionProblem(r.Named, new AttentionSelection(Cursor.Step, null, Cursor.Head)) is { } problem
            ? new LayerShareChart.LayerSeries(r.Label, r.Colour, [], problem)
            : new LayerShareChart.LayerSeries(r.Label, r.Colour, ComparisonStats.LayerShares(r.Attention, Cursor.Step, Cursor.Head))).ToList());

    public ComparedRun RunA => Runs[A];
    public ComparedRun RunB => Runs[B];

    /// <summary>The heads of A and B ranked by how differently they look at the image (or why not).</summary>
    public (IReadOnlyList<HeadDifference>? Rows, string? Problem) Ranking => _ranking.Get((Cursor.Step, ViewName, A, B), () =>
    {
        if (A == B) return (null, "choose two different runs");
        try { return (ComparisonStats.RankHeads(RunA.Named, RunB.Named, ViewOf(RunA), ViewOf(RunB), Cursor.Step), null); }
        catch (ArgumentException e) { return (null, e.Message); }
    });

    /// <summary>A − B for the selection (or why there is none).</summary>
    public (DifferenceGrid? Grid, string? Problem) Difference => _difference.Get((Selection, ViewName, A, B), () =>
    {
        if (A == B) return (null, "choose two different runs");
        try { return (ComparisonStats.Difference(RunA.Named, RunB.Named, ViewName, Selection), null); }
        catch (ArgumentException e) { return (null, e.Message); }
    });

    /// <summary>The last value computed and the key it was computed for.</summary>
    private sealed class Memo<TKey, TValue> where TKey : notnull
    {
        private (TKey Key, TValue Value)? _last;

        public TValue Get(TKey key, Func<TValue> compute)
        {
            if (_last is { } last && EqualityComparer<TKey>.Default.Equals(last.Key, key)) return last.Value;
            var value = compute();
            _last = (key, value);
            return value;
        }
    }
}
