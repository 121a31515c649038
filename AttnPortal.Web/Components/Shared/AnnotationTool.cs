namespace AttnPortal.Web.Components.Shared;

/// <summary>What a pointer does on the annotation layer: pick marks, drag a box, or click a point.</summary>
public enum AnnotationTool { Select, Box, Point }

/// <summary>How review items show times and people.</summary>
public static class ReviewText
{
    public static string Time(DateTime utc) => utc.ToString("yyyy-MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture) + " UTC";

    /// <summary>One or two letters for an avatar: "ada.lovelace@lab.org" → "AL", "researcher@portal.test" → "RE".</summary>
    public static string Initials(string name)
    {
        string local = name.Split('@')[0];
        var parts = local.Split(['.', '_', '-', ' '], StringSplitOptions.RemoveEmptyEntries);
        string letters = parts.Length >= 2 ? $"{parts[0][0]}{parts[1][0]}" : local.Length >= 2 ? local[..2] : local;
        return letters.Length == 0 ? "?" : letters.ToUpperInvariant();
    }
}
