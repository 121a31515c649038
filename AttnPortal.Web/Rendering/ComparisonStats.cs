using AttnPortal.Inference;
using AttnPortal.Inference.Images;

namespace AttnPortal.Web.Rendering;

/// <summary>A run as messages name it: "B" on the comparison page, "b" after the query parameter in the API.</summary>
public readonly record struct NamedRun(string Name, AttentionRun Attention);

/// <summary>
/// One head seen in two runs: the share of its attention that falls on image keys in A and in B, and the L1 distance
/// between its attention over the image view's cells in A and in B (null when the two views' grids differ).
/// </summary>
public readonly record struct HeadDifference(int Layer, int Head, float ShareA, float ShareB, float? L1)
{
    public float DeltaShare => ShareA - ShareB;
}

/// <summary>A − B over one image view's grid (row-major), drawn on the symmetric scale ±<paramref name="Scale"/> = max |A − B|.</summary>
public sealed record DifferenceGrid(ImageGridView ViewA, ImageGridView ViewB, float[] Values, float Scale);

/// <summary>The arithmetic of the comparison page: image shares per layer and head, differences, one colour range for several maps.</summary>
public static class ComparisonStats
{
    /// <summary>
    /// Per layer, how the selected query's attention splits between image, text (prompt) and generated keys: the mean
    /// over heads (or one head) and over steps (or one step) of each row's sums. Each row sums to 1, so the three do.
    /// </summary>
    public static LayerShare[] LayerShares(AttentionRun run, int? step, int? head)
    {
        ArgumentNullException.ThrowIfNull(run);
        var (s0, s1) = Range(step, run.Steps, "step");
        var (h0, h1) = Range(head, run.Heads, "head");
        var modality = run.Modality.ToArray();
        var result = new LayerShare[run.Layers];
        double rows = (double)(s1 - s0) * (h1 - h0);
        for (int l = 0; l < run.Layers; l++)
        {
            double image = 0, text = 0, generated = 0;
            for (int s = s0; s < s1; s++)
                for (int h = h0; h < h1; h++)
                {
                    var row = run.Row(s, l, h);
                    for (int k = 0; k < row.Length; k++)
                    {
                        switch (modality[k])
                        {
                            case KeyModality.Image: image += row[k]; break;
                            case KeyModality.Text: text += row[k]; break;
                            default: generated += row[k]; break;
                        }
                    }
                }
            result[l] = new LayerShare((float)(image / rows), (float)(text / rows), (float)(generated / rows));
        }
        return result;
    }

    /// <summary>Per layer and head ([layers, heads] row-major), the attention mass on image keys at one step, or its mean over steps.</summary>
    public static float[] HeadImageShares(AttentionRun run, int? step)
    {
        ArgumentNullException.ThrowIfNull(run);
        var (s0, s1) = Range(step, run.Steps, "step");
        var modality = run.Modality.ToArray();
        var result = new float[run.Layers * run.Heads];
        for (int l = 0; l < run.Layers; l++)
            for (int h = 0; h < run.Heads; h++)
            {
                double image = 0;
                for (int s = s0; s < s1; s++)
                {
                    var row = run.Row(s, l, h);
                    for (int k = 0; k < row.Length; k++)
                        if (modality[k] == KeyModality.Image) image += row[k];
                }
                result[l * run.Heads + h] = (float)(image / (s1 - s0));
            }
        return result;
    }

    /// <summary>
    /// Every (layer, head) the two runs share, scored by how differently it looks at the image at <paramref name="step"/>
    /// (the mean over each run's own steps when null): the image shares and the L1 distance over the views' cells.
    /// Ordered by L1, then |Δ share|, largest first (layer and head break ties).
    /// </summary>
    /// <exception cref="ArgumentException">The step is outside one of the runs (the message names it).</exception>
    public static List<HeadDifference> RankHeads(NamedRun a, NamedRun b, ImageGridView viewA, ImageGridView viewB, int? step)
    {
        foreach (var run in new[] { a, b })
            if (SelectionProblem(run, new AttentionSelection(step, null, null)) is { } problem) throw new ArgumentException(problem);
        var (ra, rb) = (a.Attention, b.Attention);
        var sharesA = HeadImageShares(ra, step);
        var sharesB = HeadImageShares(rb, step);
        bool sameGrid = viewA.Rows == viewB.Rows && viewA.Cols == viewB.Cols;
        float[]? gridsA = sameGrid ? ra.AllHeads(step, viewA) : null, gridsB = sameGrid ? rb.AllHeads(step, viewB) : null;
        int n = viewA.Rows * viewA.Cols;

        var result = new List<HeadDifference>();
        for (int l = 0; l < Math.Min(ra.Layers, rb.Layers); l++)
            for (int h = 0; h < Math.Min(ra.Heads, rb.Heads); h++)
            {
                float? l1 = null;
                if (gridsA is not null && gridsB is not null)
                {
                    var x = gridsA.AsSpan((l * ra.Heads + h) * n, n);
                    var y = gridsB.AsSpan((l * rb.Heads + h) * n, n);
                    double sum = 0;
                    for (int i = 0; i < n; i++) sum += Math.Abs(x[i] - y[i]);
                    l1 = (float)sum;
                }
                result.Add(new HeadDifference(l, h, sharesA[l * ra.Heads + h], sharesB[l * rb.Heads + h], l1));
            }
        result.Sort((p, q) =>
        {
            int c = (q.L1 ?? 0).CompareTo(p.L1 ?? 0);
            if (c == 0) c = Math.Abs(q.DeltaShare).CompareTo(Math.Abs(p.DeltaShare));
            if (c == 0) c = p.Layer.CompareTo(q.Layer);
            return c != 0 ? c : p.Head.CompareTo(q.Head);
        });
        return result;
    }

    /// <summary>One [min, max] over every value of every grid (NaN ignored), for colouring several maps alike; null when there is no spread.</summary>
    public static (float Low, float High)? SharedRange(IEnumerable<float[]> grids)
    {
        ArgumentNullException.ThrowIfNull(grids);
        float low = float.PositiveInfinity, high = float.NegativeInfinity;
        foreach (var grid in grids)
            foreach (float v in grid)
            {
                if (v < low) low = v;
                if (v > high) high = v;
            }
        return high > low && float.IsFinite(low) && float.IsFinite(high) ? (low, high) : null;
    }

    /// <summary>Why <paramref name="selection"/> cannot be shown for <paramref name="run"/> (a token, layer or head it does not have), or null.</summary>
    public static string? SelectionProblem(NamedRun run, AttentionSelection selection)
    {
        var a = run.Attention;
        if (selection.Step is int s && s >= a.Steps)
            return $"step {s} is past the last token of run {run.Name} (it generated {a.Steps} token{(a.Steps == 1 ? "" : "s")}: steps 0–{a.Steps - 1})";
        if (selection.Step is < 0) return $"step {selection.Step} is negative";
        if (selection.Layer is int l && (l < 0 || l >= a.Layers)) return $"layer {l} is outside run {run.Name}'s {a.Layers} layers (0–{a.Layers - 1})";
        if (selection.Head is int h && (h < 0 || h >= a.Heads)) return $"head {h} is outside run {run.Name}'s {a.Heads} heads (0–{a.Heads - 1})";
        return null;
    }

    /// <summary>
    /// The views A − B is taken over: the view called <paramref name="viewName"/> in both runs, or each run's first.
    /// </summary>
    /// <exception cref="ArgumentException">A run lacks the view, or the two grids differ (a cell-by-cell difference needs the same grid).</exception>
    public static (ImageGridView A, ImageGridView B) DifferenceViews(NamedRun a, NamedRun b, string? viewName)
    {
        ImageGridView Find(NamedRun run) =>
            viewName is null ? run.Attention.Views[0]
            : run.Attention.FindView(viewName) ?? throw new ArgumentException(
                $"run {run.Name} has no view '{viewName}' (it has {string.Join(", ", run.Attention.Views.Select(v => $"'{v.Name}'"))})");
        var (va, vb) = (Find(a), Find(b));
        if (va.Rows != vb.Rows || va.Cols != vb.Cols)
            throw new ArgumentException($"the runs' image grids differ ({va.Rows}×{va.Cols} vs {vb.Rows}×{vb.Cols}): a difference needs the same grid");
        return (va, vb);
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the run when either cannot show <paramref name="selection"/>.</summary>
    public static void CheckSelection(NamedRun a, NamedRun b, AttentionSelection selection)
    {
        if ((SelectionProblem(a, selection) ?? SelectionProblem(b, selection)) is { } problem) throw new ArgumentException(problem);
    }

    /// <summary>A − B of the selected attention over the views (<see cref="DifferenceViews"/>), and max |A − B|.</summary>
    /// <exception cref="ArgumentException">The views or the selection do not fit both runs (the message says which and why).</exception>
    public static DifferenceGrid Difference(NamedRun a, NamedRun b, string? viewName, AttentionSelection selection)
    {
        var (va, vb) = DifferenceViews(a, b, viewName);
        CheckSelection(a, b, selection);
        var x = a.Attention.ImageGrid(selection, va);
        var y = b.Attention.ImageGrid(selection, vb);
        var diff = new float[x.Length];
        float scale = 0;
        for (int i = 0; i < diff.Length; i++)
        {
            diff[i] = x[i] - y[i];
            if (Math.Abs(diff[i]) > scale) scale = Math.Abs(diff[i]); // NaN never compares greater
        }
        return new DifferenceGrid(va, vb, diff, scale);
    }

    private static (int From, int To) Range(int? index, int size, string name) =>
        index is not int i ? (0, size)
        : (uint)i < (uint)size ? (i, i + 1)
        : throw new ArgumentOutOfRangeException(name, i, $"{name} {i} is outside [0, {size})");
}
