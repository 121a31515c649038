using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace AttnPortal.Web.Services;

/// <summary>
/// A position in the runs list (newest first: CreatedUtc desc, Id desc) for keyset paging: the key of the row a page
/// starts after, and which way the page goes from it. Written into links as
/// <c>{o|n}{ticks}-{id}-{check}</c>, where the check (8 hex digits of a SHA-256) makes a mistyped or edited link an
/// error instead of a silently different page.
/// </summary>
public sealed record RunCursor(bool Older, DateTime CreatedUtc, Guid Id)
{
    public override string ToString()
    {
        string body = $"{(Older ? 'o' : 'n')}{CreatedUtc.Ticks.ToString(CultureInfo.InvariantCulture)}-{Id:N}";
        return $"{body}-{Check(body)}";
    }

    /// <summary>The rows older than this one (the next page) or newer (the previous page).</summary>
    public static RunCursor After(Data.Run row) => new(true, row.CreatedUtc, row.Id);
    public static RunCursor Before(Data.Run row) => new(false, row.CreatedUtc, row.Id);

    /// <exception cref="FormatException">The text is not a cursor this portal wrote, with a message saying so.</exception>
    public static RunCursor Parse(string text)
    {
        var parts = text.Split('-');
        if (parts.Length != 3 || parts[0].Length < 2 || parts[0][0] is not ('o' or 'n')
            || !long.TryParse(parts[0].AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out long ticks)
            || ticks > DateTime.MaxValue.Ticks
            || !Guid.TryParseExact(parts[1], "N", out var id)
            || !string.Equals(parts[2], Check($"{parts[0]}-{parts[1]}"), StringComparison.Ordinal))
            throw new FormatException($"the page position '{Shorten(text)}' is damaged or was not made by this portal; start again from the first page");
        return new RunCursor(parts[0][0] == 'o', new DateTime(ticks, DateTimeKind.Unspecified), id);
    }

    private static string Check(string body) => Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(body)).AsSpan(0, 4));

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "…";
}
