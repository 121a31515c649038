using System.Globalization;
using AttnPortal.Inference;
using AttnPortal.Inference.Images;

namespace AttnPortal.Web.Rendering;

/// <summary>
/// What one attention row (a step's query in one layer and head, or the mean over steps) does: the share of its mass on
/// image, text and generated keys (summing to 1), its entropy over all keys in nats, and its largest weight on the
/// cells of an image view with that cell's row and column.
/// </summary>
public readonly record struct HeadStatistic(int? Step, int Layer, int Head, double ImageShare, double TextShare, double GeneratedShare,
    double Entropy, float MaxImageWeight, int MaxImageRow, int MaxImageCol);

public static class HeadStatistics
{
    public const string CsvHeader = "step,layer,head,image_share,text_share,generated_share,entropy,max_image_weight,max_image_row,max_image_col";

    /// <summary>Every step's rows (step, then layer, then head), then the rows of the mean over steps (Step null, as the
    /// run view's "all tokens").</summary>
    public static IEnumerable<HeadStatistic> Of(AttentionRun run, ImageGridView view)
    {
        for (int s = 0; s < run.Steps; s++)
            for (int l = 0; l < run.Layers; l++)
                for (int h = 0; h < run.Heads; h++)
                    yield return Describe(run, view, s, l, h, run.Row(s, l, h));
        for (int l = 0; l < run.Layers; l++)
            for (int h = 0; h < run.Heads; h++)
                yield return Describe(run, view, null, l, h, run.KeyRow(new AttentionSelection(null, l, h)));
    }

    public static HeadStatistic Describe(AttentionRun run, ImageGridView view, int? step, int layer, int head, ReadOnlySpan<float> row)
    {
        double image = 0, text = 0, generated = 0, entropy = 0;
        var modality = run.Modality;
        for (int k = 0; k < row.Length; k++)
        {
            float p = row[k];
            switch (modality[k])
            {
                case KeyModality.Image: image += p; break;
                case KeyModality.Text: text += p; break;
                default: generated += p; break;
            }
            if (p > 0) entropy -= p * Math.Log(p);
        }
        float max = float.NegativeInfinity;
        int maxRow = 0, maxCol = 0;
        for (int r = 0; r < view.Rows; r++)
            for (int c = 0; c < view.Cols; c++)
            {
                float w = row[run.ImageTokenStart + view.TokenIndex(r, c)];
                if (w > max) (max, maxRow, maxCol) = (w, r, c);
            }
        return new HeadStatistic(step, layer, head, image, text, generated, entropy, max, maxRow, maxCol);
    }

    public static string CsvLine(HeadStatistic s)
    {
        var c = CultureInfo.InvariantCulture;
        return string.Create(c, $"{(s.Step is { } step ? step.ToString(c) : "mean")},{s.Layer},{s.Head},{s.ImageShare:G7},{s.TextShare:G7},{s.GeneratedShare:G7},{s.Entropy:G7},{s.MaxImageWeight:G7},{s.MaxImageRow},{s.MaxImageCol}");
    }

    /// <summary>The header line, then one line per statistic (invariant culture, "\n" line ends).</summary>
    public static async Task WriteCsvAsync(TextWriter writer, IEnumerable<HeadStatistic> statistics, CancellationToken cancel = default)
    {
        await writer.WriteAsync(CsvHeader + "\n");
        foreach (var s in statistics)
        {
            cancel.ThrowIfCancellationRequested();
            await writer.WriteAsync(CsvLine(s) + "\n");
        }
        await writer.FlushAsync(cancel);
    }
}
