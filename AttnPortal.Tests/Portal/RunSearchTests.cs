using AttnPortal.Data;
using AttnPortal.Web.Services;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Tests.Portal;

/// <summary>RunSearch on a real SQLite file of a few hundred runs, each answer held to the seeded rows.</summary>
public sealed class RunSearchTests(SeededRuns seeded) : IClassFixture<SeededRuns>
{
    private async Task<List<Run>> AllPagesAsync(RunFilter filter, int pageSize = 7)
    {
        await using var db = seeded.Open();
        var search = new RunSearch(db);
        var all = new List<Run>();
        string? cursor = null;
        do
        {
            var page = await search.PageAsync(filter, cursor, pageSize);
            Assert.InRange(page.Runs.Count, 1, pageSize);
            Assert.Equal(cursor is null, page.Newer is null);
            all.AddRange(page.Runs);
            cursor = page.Older?.ToString();
            if (cursor is null) Assert.Equal(page.Total, all.Count);
        } while (cursor is not null);
        return all;
    }

    private static void AssertSameRuns(IEnumerable<Run> expected, IEnumerable<Run> actual) =>
        Assert.Equal(SeededRuns.NewestFirst(expected).Select(r => r.Id), actual.Select(r => r.Id));

    public static TheoryData<string> Filters => new()
    {
        "model", "schedule", "text", "text-generated", "label", "tag", "owner-name", "owner-email", "from", "to", "status", "combined",
    };

    /// <summary>Each filter, as a RunFilter and as the rule it stands for.</summary>
    private (RunFilter Filter, Func<Run, bool> Rule) Case(string name)
    {
        var alice = seeded.Users[0];
        string OwnerName(Run r) => seeded.Users.Single(u => u.Id == r.OwnerId).UserName!;
        bool HasText(Run r, string t) => r.Question.Contains(t, StringComparison.OrdinalIgnoreCase) || r.GeneratedText?.Contains(t, StringComparison.OrdinalIgnoreCase) == true;
        return name switch
        {
            "model" => (new RunFilter { Model = SeededRuns.Models[1] }, r => r.ModelName == SeededRuns.Models[1]),
            "schedule" => (new RunFilter { Schedule = "alternating" }, r => r.Schedule == "alternating"),
            "text" => (new RunFilter { Text = "THE red" }, r => HasText(r, "the red")),
            "text-generated" => (new RunFilter { Text = "zebra" }, r => HasText(r, "zebra")),
            "label" => (new RunFilter { Label = "Grounded" }, r => seeded.LabelOfRun.GetValueOrDefault(r.Id) == "grounded"),
            "tag" => (new RunFilter { Tag = SeededRuns.Tag }, r => r.ModelName == SeededRuns.Models[1]), // the other model's tag is deleted
            "owner-name" => (new RunFilter { Owner = "Alice" }, r => r.OwnerId == alice.Id),
            "owner-email" => (new RunFilter { Owner = "bob@LAB.test" }, r => OwnerName(r) == "bob"),
            "from" => (new RunFilter { From = new DateOnly(2026, 11, 2) }, r => r.CreatedUtc >= new DateTime(2026, 11, 2)),
            "to" => (new RunFilter { To = new DateOnly(2026, 11, 1) }, r => r.CreatedUtc < new DateTime(2026, 11, 2)),
            "status" => (new RunFilter { Status = RunStatus.Failed }, r => r.Status == RunStatus.Failed),
            "combined" => (new RunFilter { Schedule = "standard", Owner = "carol", From = new DateOnly(2026, 10, 28), To = new DateOnly(2026, 11, 3), Text = "the" },
                r => r.Schedule == "standard" && OwnerName(r) == "carol" && r.CreatedUtc >= new DateTime(2026, 10, 28) && r.CreatedUtc < new DateTime(2026, 11, 4) && HasText(r, "the")),
            _ => throw new ArgumentException(name),
        };
    }

    [Theory]
    [MemberData(nameof(Filters))]
    public async Task EachFilterFindsExactlyTheRunsItDescribes(string name)
    {
        var (filter, rule) = Case(name);
        var expected = seeded.Runs.Where(rule).ToList();
        Assert.NotEmpty(expected); // the seed has runs of every kind asked for...
        Assert.NotEqual(seeded.Runs.Count, expected.Count); // ...and runs the filter must leave out
        AssertSameRuns(expected, await AllPagesAsync(filter));
    }

    [Fact]
    public async Task DatesIncludeTheWholeOfTheirDays()
    {
        await using var db = seeded.Open();
        var page = await new RunSearch(db).PageAsync(new RunFilter { From = new DateOnly(2026, 11, 1), To = new DateOnly(2026, 11, 1) }, pageSize: 100);
        Assert.Contains(page.Runs, r => r.Id == seeded.Runs[12].Id); // 00:00:00 of that day
        Assert.Contains(page.Runs, r => r.Id == seeded.Runs[10].Id); // its last tick
        Assert.DoesNotContain(page.Runs, r => r.Id == seeded.Runs[11].Id); // the next day's first
        Assert.Equal(seeded.Runs.Count(r => r.CreatedUtc.Date == new DateTime(2026, 11, 1)), page.Total);
    }

    [Fact]
    public async Task PagingWalksEveryRunOnceForwardsAndBackwards()
    {
        var forwards = await AllPagesAsync(RunFilter.None, pageSize: 7);
        AssertSameRuns(seeded.Runs, forwards);
        Assert.True(seeded.Runs.GroupBy(r => r.CreatedUtc).Any(g => g.Count() > 1), "the seed has ties to break");

        // Backwards from the last page, following Newer to the first.
        await using var db = seeded.Open();
        var search = new RunSearch(db);
        var last = forwards[^1];
        var backwards = new List<Run>();
        string? cursor = new RunCursor(false, last.CreatedUtc, last.Id).ToString();
        backwards.Add(last);
        while (cursor is not null)
        {
            var page = await search.PageAsync(RunFilter.None, cursor, 7);
            Assert.NotEmpty(page.Runs);
            Assert.NotNull(page.Older); // there is always something after a page reached backwards
            backwards.InsertRange(0, page.Runs);
            cursor = page.Newer?.ToString();
        }
        Assert.Equal(forwards.Select(r => r.Id), backwards.Select(r => r.Id));
    }

    [Fact]
    public async Task PreviousOfANextPageIsThePageBefore()
    {
        await using var db = seeded.Open();
        var search = new RunSearch(db);
        var filter = new RunFilter { Schedule = "standard" };
        var first = await search.PageAsync(filter, null, 10);
        var second = await search.PageAsync(filter, first.Older!.ToString(), 10);
        var back = await search.PageAsync(filter, second.Newer!.ToString(), 10);
        Assert.Equal(first.Runs.Select(r => r.Id), back.Runs.Select(r => r.Id));
        Assert.Null(back.Newer); // exactly the first page again: nothing newer
        Assert.Equal(first.Older, back.Older);
        Assert.Equal(seeded.Runs.Count(r => r.Schedule == "standard"), second.Total);
    }

    [Theory]
    [InlineData("50%", "50 percent")] // unescaped, % would match anything: "50 percent" too
    [InlineData("a_b", "a+b")]        // unescaped, _ would match any one character
    [InlineData("C:\\data", "C:data")] // unescaped, \d would be an escaped d
    public async Task LikeWildcardsInTheTextAreLiterals(string text, string decoy)
    {
        bool Has(Run r, string t) => r.Question.Contains(t, StringComparison.OrdinalIgnoreCase) || r.GeneratedText?.Contains(t, StringComparison.OrdinalIgnoreCase) == true;
        var expected = seeded.Runs.Where(r => Has(r, text)).ToList();
        Assert.NotEmpty(expected);
        Assert.Contains(seeded.Runs, r => Has(r, decoy) && !Has(r, text)); // what a wildcard would wrongly find
        AssertSameRuns(expected, await AllPagesAsync(new RunFilter { Text = text }));
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("")]
    [InlineData("o638999-0123456789abcdef0123456789abcdef-00000000")]
    public async Task AForgedCursorIsRefusedClearly(string cursor)
    {
        await using var db = seeded.Open();
        var e = await Assert.ThrowsAsync<FormatException>(() => new RunSearch(db).PageAsync(RunFilter.None, cursor));
        Assert.Contains("damaged", e.Message);
        Assert.Contains("first page", e.Message);
    }

    [Fact]
    public async Task AnEditedCursorIsRefusedClearly()
    {
        await using var db = seeded.Open();
        var search = new RunSearch(db);
        string good = (await search.PageAsync(RunFilter.None, null, 5)).Older!.ToString();
        Assert.Equal(5, (await search.PageAsync(RunFilter.None, good, 5)).Runs.Count); // the real one works
        foreach (string edited in new[] { good.Replace(good[3], good[3] == '1' ? '2' : '1'), "n" + good[1..], good[..^1] + (good[^1] == 'a' ? 'b' : 'a') })
        {
            var e = await Assert.ThrowsAsync<FormatException>(() => search.PageAsync(RunFilter.None, edited, 5));
            Assert.Contains("damaged", e.Message);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(101)]
    public async Task PageSizeIsBounded(int size)
    {
        await using var db = seeded.Open();
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => new RunSearch(db).PageAsync(RunFilter.None, null, size));
        Assert.Contains("1 to 100", e.Message);
    }

    [Fact]
    public void CursorRoundTripsThroughText()
    {
        var cursor = new RunCursor(true, new DateTime(2026, 11, 2, 3, 4, 5).AddTicks(6789), Guid.NewGuid());
        Assert.Equal(cursor, RunCursor.Parse(cursor.ToString()));
        Assert.Equal(cursor with { Older = false }, RunCursor.Parse((cursor with { Older = false }).ToString()));
    }

    [Fact]
    public async Task ChoicesOfferModelsLabelsTagsAndPeople()
    {
        await using var db = seeded.Open();
        var choices = await new RunSearch(db).ChoicesAsync(["configured-only"], ["standard", "alternating"]);
        Assert.Equal(SeededRuns.Models.Append("configured-only").Order(StringComparer.Ordinal), choices.Models);
        Assert.Equal(["attention sink", "grounded"], choices.Labels);
        Assert.Equal([SeededRuns.Tag], choices.Tags);
        Assert.Equal(["alice", "bob", "carol"], choices.Owners);
    }
}
