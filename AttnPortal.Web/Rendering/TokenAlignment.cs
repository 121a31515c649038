namespace AttnPortal.Web.Rendering;

/// <summary>Generated texts of several runs lined up by position: token k of each run in column k.</summary>
public static class TokenAlignment
{
    /// <summary>
    /// The positions, up to the longest run's, where the runs' tokens are not all the same; a run that has no token at
    /// a position (it stopped earlier) differs there. One run alone differs nowhere.
    /// </summary>
    public static IReadOnlySet<int> Differing(IReadOnlyList<IReadOnlyList<string>> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var differing = new HashSet<int>();
        if (runs.Count < 2) return differing;
        int longest = runs.Max(r => r.Count);
        for (int k = 0; k < longest; k++)
        {
            string? first = k < runs[0].Count ? runs[0][k] : null;
            for (int r = 1; r < runs.Count; r++)
            {
                string? token = k < runs[r].Count ? runs[r][k] : null;
                if (!string.Equals(first, token, StringComparison.Ordinal)) { differing.Add(k); break; }
            }
        }
        return differing;
    }
}
