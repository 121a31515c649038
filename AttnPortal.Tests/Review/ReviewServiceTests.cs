using System.Globalization;
using System.Security.Claims;
using AttnPortal.Data;
using AttnPortal.Tests.Portal;
using AttnPortal.Web.Services;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.Tests.Review;

/// <summary>The review services on a real portal database: versions and revisions, soft deletion, conflicts, roles, validation, live notices.</summary>
public sealed class ReviewServiceTests(ReviewHost host) : IClassFixture<ReviewHost>
{
    private AnnotationService Annotations => host.Service<AnnotationService>();
    private LabelService Labels => host.Service<LabelService>();
    private HeadTagService HeadTags => host.Service<HeadTagService>();
    private AnnotationTarget Run => AnnotationTarget.Run(host.RunId);
    private Task<ClaimsPrincipal> Researcher => host.PrincipalAsync(PortalFactory.ResearcherEmail);
    private Task<ClaimsPrincipal> Second => host.PrincipalAsync(ReviewHost.SecondResearcherEmail);
    private Task<ClaimsPrincipal> Admin => host.PrincipalAsync(PortalFactory.AdminEmail);
    private Task<ClaimsPrincipal> Viewer => host.PrincipalAsync(PortalFactory.ViewerEmail);

    private async Task<Guid> LabelIdAsync(string name) => (await Labels.ListAsync()).Single(l => l.Name == name).Id;

    private static AnnotationDraft Box(double x, double y, double w, double h, string body = "", Guid? label = null, ViewState? view = null) =>
        new(MarkGeometry.Box(x, y, w, h), body, label, view ?? ViewState.None);

    private static AnnotationDraft Note(string body) => new(MarkGeometry.Note, body, null, ViewState.None);

    private T Db<T>(Func<PortalDbContext, T> query) => host.Factory.WithDb(query);

    private List<Revision> RevisionsOf(Guid id) => Db(db => db.Revisions.AsNoTracking().Where(r => r.EntityId == id).OrderBy(r => r.Version).ToList());

    [Fact]
    public async Task StartUpSeedsTheFourDefaultLabelsOnceWithTheirRevisions()
    {
        var defaults = LabelService.Defaults.Select(d => d.Name).ToList();
        Assert.Equal(["attention sink", "grounded", "object missed", "spurious"], defaults.Order());
        var adminId = Db(db => db.Users.Single(u => u.Email == PortalFactory.AdminEmail).Id);
        foreach (var name in defaults)
        {
            var label = Db(db => db.Labels.Single(l => l.Name == name));
            Assert.Equal((1, adminId), (label.Version, label.CreatedById));
            var revision = Assert.Single(RevisionsOf(label.Id));
            Assert.Equal((RevisionAction.Created, adminId, nameof(Label)), (revision.Action, revision.AuthorId, revision.EntityType));
        }
        // A second start (the table is no longer empty) adds nothing.
        int before = Db(db => db.Labels.Count());
        using (var scope = host.Factory.Services.CreateScope())
            await LabelService.SeedDefaultsAsync(scope.ServiceProvider.GetRequiredService<PortalDbContext>(), scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>());
        Assert.Equal(before, Db(db => db.Labels.Count()));
    }

    [Fact]
    public async Task EachEditAddsOneVersionAndARevisionWithTheRowAsItWasAndItsAuthor()
    {
        var grounded = await LabelIdAsync("grounded");
        var sink = await LabelIdAsync("attention sink");
        var view = new ViewState(1, 0, 2, "tiles");
        var id = await Annotations.CreateAsync(await Researcher, Run, Box(20, 10, 60, 40, "the red square", grounded, view));
        await Annotations.UpdateAsync(await Admin, id, 1, Box(20, 10, 60, 40, "the red square, **sharp**", sink, view));
        await Annotations.UpdateAsync(await Second, id, 2, Box(25, 12, 50, 30, "moved", sink, view));

        var row = Db(db => db.Annotations.AsNoTracking().Single(a => a.Id == id));
        Assert.Equal((3, "moved", 25.0, 50.0), (row.Version, row.Body, row.X, row.W));
        var people = Db(db => db.Users.ToDictionary(u => u.Email!, u => u.Id));
        var revisions = RevisionsOf(id);
        Assert.Equal([1, 2, 3], revisions.Select(r => r.Version));
        Assert.Equal([RevisionAction.Created, RevisionAction.Edited, RevisionAction.Edited], revisions.Select(r => r.Action));
        Assert.Equal([people[PortalFactory.ResearcherEmail], people[PortalFactory.AdminEmail], people[ReviewHost.SecondResearcherEmail]], revisions.Select(r => r.AuthorId));
        // Each snapshot is the row after its change.
        var v2 = System.Text.Json.Nodes.JsonNode.Parse(revisions[1].Snapshot)!;
        Assert.Equal("the red square, **sharp**", v2["Body"]!.GetValue<string>());
        Assert.Equal(sink.ToString(), v2["LabelId"]!.GetValue<string>());
        Assert.Equal(2, v2["Version"]!.GetValue<int>());
        Assert.Equal("Box", v2["Shape"]!.GetValue<string>());
        Assert.Equal(20.0, v2["X"]!.GetValue<double>());
        Assert.Equal(1, v2["Step"]!.GetValue<int>());
        Assert.Equal("tiles", v2["ViewName"]!.GetValue<string>());
        Assert.Equal(people[PortalFactory.AdminEmail], v2["UpdatedById"]!.GetValue<string>());

        // History: newest first, with names (the admin's display name, else the user name).
        var history = await Annotations.HistoryAsync(id);
        Assert.Equal([3, 2, 1], history.Select(h => h.Version));
        Assert.Equal([ReviewHost.SecondResearcherEmail, "Administrator", PortalFactory.ResearcherEmail], history.Select(h => h.AuthorName));
        Assert.Equal("moved", history[0].Snapshot["Body"]!.GetValue<string>());

        var shown = (await Annotations.GetAsync(id))!;
        Assert.Equal((PortalFactory.ResearcherEmail, ReviewHost.SecondResearcherEmail, true), (shown.AuthorName, shown.UpdatedByName, shown.Edited));
        Assert.Equal("attention sink", shown.Label!.Name);
        Assert.Equal(view, shown.View);
    }

    [Fact]
    public async Task DeletionIsSoftAndRestoreBringsTheAnnotationAndItsCommentsBack()
    {
        var researcher = await Researcher;
        var id = await Annotations.CreateAsync(researcher, Run, Note("to be deleted"));
        var commentId = await Annotations.AddCommentAsync(await Second, id, "a reply");
        Assert.Contains(await Annotations.ListAsync(Run), a => a.Id == id);

        await Annotations.DeleteAsync(researcher, id, 1);
        var row = Db(db => db.Annotations.AsNoTracking().Single(a => a.Id == id));
        Assert.NotNull(row.DeletedUtc);
        Assert.Equal(2, row.Version);
        Assert.DoesNotContain(await Annotations.ListAsync(Run), a => a.Id == id);
        var deleted = Assert.Single(await Annotations.ListAsync(Run, includeDeleted: true), a => a.Id == id);
        Assert.True(deleted.IsDeleted);
        Assert.Equal("to be deleted", deleted.Body);
        Assert.Equal("a reply", Assert.Single(deleted.Comments).Body);
        Assert.True(Db(db => db.Comments.Any(c => c.Id == commentId)));
        // Nothing may be added to a deleted annotation.
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => Annotations.AddCommentAsync(researcher, id, "too late"));
        Assert.Contains("deleted", refused.Message);

        await Annotations.RestoreAsync(researcher, id, 2);
        Assert.Contains(await Annotations.ListAsync(Run), a => a.Id == id && !a.IsDeleted);
        Assert.Equal([RevisionAction.Restored, RevisionAction.Deleted, RevisionAction.Created], (await Annotations.HistoryAsync(id)).Select(h => h.Action));
        Assert.Equal("to be deleted", (await Annotations.HistoryAsync(id))[1].Snapshot["Body"]!.GetValue<string>());

        // Comments: the same, by their author.
        var second = await Second;
        await Annotations.DeleteCommentAsync(second, commentId, 1);
        Assert.Empty(Assert.Single(await Annotations.ListAsync(Run), a => a.Id == id).Comments);
        Assert.Single(Assert.Single(await Annotations.ListAsync(Run, includeDeleted: true), a => a.Id == id).Comments, c => c.IsDeleted);
        await Annotations.RestoreCommentAsync(second, commentId, 2);
        await Annotations.EditCommentAsync(second, commentId, 3, "a better reply");
        Assert.Equal([RevisionAction.Edited, RevisionAction.Restored, RevisionAction.Deleted, RevisionAction.Created],
            (await Annotations.CommentHistoryAsync(commentId)).Select(h => h.Action));
        Assert.Equal("a better reply", Assert.Single(Assert.Single(await Annotations.ListAsync(Run), a => a.Id == id).Comments).Body);
    }

    [Fact]
    public async Task AStaleChangeIsRefusedNamingWhoChangedItAndWhenAndNothingIsLost()
    {
        var researcher = await Researcher;
        var id = await Annotations.CreateAsync(researcher, Run, Note("first words"));
        await Annotations.UpdateAsync(await Admin, id, 1, Note("the admin's words"));

        // The researcher still has version 1 on screen.
        var conflict = await Assert.ThrowsAsync<ReviewConflictException>(() => Annotations.UpdateAsync(researcher, id, 1, Note("the researcher's words")));
        var edited = RevisionsOf(id)[^1];
        Assert.Equal($"Administrator edited this annotation at {edited.Utc.ToString("HH:mm", CultureInfo.InvariantCulture)} UTC; your change was not saved — reload to see theirs.", conflict.Message);
        Assert.Equal("the admin's words", Db(db => db.Annotations.Single(a => a.Id == id).Body));
        Assert.Equal(2, RevisionsOf(id).Count);
        // A stale delete is refused the same way; with the version now shown, both go through.
        await Assert.ThrowsAsync<ReviewConflictException>(() => Annotations.DeleteAsync(researcher, id, 1));
        await Annotations.UpdateAsync(researcher, id, 2, Note("the researcher's words"));
        await Annotations.DeleteAsync(researcher, id, 3);
        var admin = await Admin;
        var conflictOnDeleted = await Assert.ThrowsAsync<ReviewConflictException>(() => Annotations.UpdateAsync(admin, id, 2, Note("?")));
        Assert.StartsWith($"{PortalFactory.ResearcherEmail} deleted this annotation at ", conflictOnDeleted.Message);
        Assert.Equal(["first words", "the admin's words", "the researcher's words", "the researcher's words"],
            (await Annotations.HistoryAsync(id)).Reverse().Select(h => h.Snapshot["Body"]!.GetValue<string>()));
    }

    [Fact]
    public async Task OfTwoContextsThatReadVersionOneAndBothSaveExactlyOneWins()
    {
        var id = await Annotations.CreateAsync(await Researcher, Run, Note("v1"));
        var people = Db(db => db.Users.ToDictionary(u => u.Email!, u => u.Id));
        using var scopeA = host.Factory.Services.CreateScope();
        using var scopeB = host.Factory.Services.CreateScope();
        var dbA = scopeA.ServiceProvider.GetRequiredService<PortalDbContext>();
        var dbB = scopeB.ServiceProvider.GetRequiredService<PortalDbContext>();
        // Both read version 1 before either writes (what two open pages hold).
        var rowA = await dbA.Annotations.SingleAsync(a => a.Id == id);
        var rowB = await dbB.Annotations.SingleAsync(a => a.Id == id);
        Assert.Equal((1, 1), (rowA.Version, rowB.Version));
        rowA.Body = "A's text";
        rowB.Body = "B's text";
        var now = DateTime.UtcNow;
        await ReviewStore.SaveAsync(dbA, rowA, id, RevisionAction.Edited, 1, new ReviewActor(people[PortalFactory.AdminEmail], PortalFactory.AdminEmail, await Admin), "annotation", now);
        var conflict = await Assert.ThrowsAsync<ReviewConflictException>(() =>
            ReviewStore.SaveAsync(dbB, rowB, id, RevisionAction.Edited, 1, new ReviewActor(people[ReviewHost.SecondResearcherEmail], ReviewHost.SecondResearcherEmail, Second.Result), "annotation", now));
        Assert.StartsWith("Administrator edited this annotation at ", conflict.Message);
        Assert.Equal(("A's text", 2), Db(db => db.Annotations.Where(a => a.Id == id).Select(a => ValueTuple.Create(a.Body, a.Version)).Single()));
        Assert.Equal([(1, RevisionAction.Created), (2, RevisionAction.Edited)], RevisionsOf(id).Select(r => (r.Version, r.Action)));

        // The same through the service, the two writes racing: one wins, the other is told who won.
        for (int round = 0; round < 4; round++)
        {
            var raced = await Annotations.CreateAsync(await Researcher, Run, Note("v1"));
            var writers = new[] { (await Admin, "Administrator"), (await Second, ReviewHost.SecondResearcherEmail) };
            var outcomes = await Task.WhenAll(writers.Select(async w =>
            {
                try { await Annotations.UpdateAsync(w.Item1, raced, 1, Note($"by {w.Item2}")); return (Name: w.Item2, Error: (ReviewConflictException?)null); }
                catch (ReviewConflictException e) { return (Name: w.Item2, Error: e); }
            }));
            var winner = Assert.Single(outcomes, o => o.Error is null);
            var loser = Assert.Single(outcomes, o => o.Error is not null);
            Assert.StartsWith($"{winner.Name} edited this annotation at ", loser.Error!.Message);
            Assert.Equal(($"by {winner.Name}", 2), Db(db => db.Annotations.Where(a => a.Id == raced).Select(a => ValueTuple.Create(a.Body, a.Version)).Single()));
            Assert.Equal(2, RevisionsOf(raced).Count);
        }
    }

    [Fact]
    public async Task AViewerIsRefusedEveryWriteAndNothingIsWritten()
    {
        var viewer = await Viewer;
        var existing = await Annotations.CreateAsync(await Researcher, Run, Note("by the researcher"));
        int annotations = Db(db => db.Annotations.Count()), revisions = Db(db => db.Revisions.Count());
        var writes = new Func<Task>[]
        {
            () => Annotations.CreateAsync(viewer, Run, Note("mine")),
            () => Annotations.UpdateAsync(viewer, existing, 1, Note("mine")),
            () => Annotations.DeleteAsync(viewer, existing, 1),
            () => Annotations.AddCommentAsync(viewer, existing, "mine"),
            () => Labels.CreateAsync(viewer, "mine", "#123456"),
            () => HeadTags.AddAsync(viewer, host.ModelName, 0, 0, "mine"),
        };
        foreach (var write in writes)
        {
            var refused = await Assert.ThrowsAsync<UnauthorizedAccessException>(write);
            Assert.StartsWith("Viewers can read", refused.Message);
        }
        Assert.Equal((annotations, revisions), (Db(db => db.Annotations.Count()), Db(db => db.Revisions.Count())));
        // Reading is fine.
        Assert.Contains(await Annotations.ListAsync(Run), a => a.Id == existing);
    }

    [Fact]
    public async Task OnlyTheAuthorOrAnAdminDeletesAnAnnotationOrChangesAComment()
    {
        var (researcher, second, admin) = (await Researcher, await Second, await Admin);
        var id = await Annotations.CreateAsync(researcher, Run, Note("mine"));
        var comment = await Annotations.AddCommentAsync(researcher, id, "my comment");
        // Another researcher may edit the annotation (it is versioned) but not delete it, nor touch the comment.
        await Annotations.UpdateAsync(second, id, 1, Note("improved by a colleague"));
        Assert.Contains("Only its author or an admin", (await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Annotations.DeleteAsync(second, id, 2))).Message);
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Annotations.EditCommentAsync(second, comment, 1, "not mine"));
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => Annotations.DeleteCommentAsync(second, comment, 1));
        // An admin may.
        await Annotations.EditCommentAsync(admin, comment, 1, "moderated");
        await Annotations.DeleteCommentAsync(admin, comment, 2);
        await Annotations.DeleteAsync(admin, id, 2);
        Assert.NotNull(Db(db => db.Annotations.Single(a => a.Id == id).DeletedUtc));
    }

    public static TheoryData<string, string> BadAnnotations => new()
    {
        { "box outside", "The box at (150, 10) of 60 × 40 px reaches outside the 200 × 130 image wide.png." },
        { "box above", "The box at (10, -5) of 20 × 20 px reaches outside the 200 × 130 image wide.png." },
        { "box without width", "A box needs a width and a height above 0 (got 0 × 20)." },
        { "box NaN", "The box's position and size must be numbers." },
        { "point outside", "The point (201, 50) lies outside the 200 × 130 image wide.png." },
        { "empty note", "A note needs some text." },
        { "long text", "An annotation is 20,001 characters long; at most 20,000 are allowed." },
        { "unknown label", "There is no label 00000000-0000-0000-0000-000000000001." },
        { "layer", "There is no layer 2: there are 2 (layer 0 to 1)." },
        { "head", "There is no head 3: there are 3 (head 0 to 2)." },
        { "token", "There is no token 3: there are 3 (token 0 to 2)." },
        { "negative head", "The head number cannot be negative (got -1)." },
        { "view", "There is no image view “nope”; the run has base, tiles, tile 0,0, tile 0,1, tile 0,2, tile 1,0, tile 1,1, tile 1,2." },
    };

    [Theory]
    [MemberData(nameof(BadAnnotations))]
    public async Task BadAnnotationsAreRefusedWithTheProblemNamed(string @case, string message)
    {
        var draft = @case switch
        {
            "box outside" => Box(150, 10, 60, 40),
            "box above" => Box(10, -5, 20, 20),
            "box without width" => Box(10, 10, 0, 20),
            "box NaN" => Box(double.NaN, 10, 5, 5),
            "point outside" => new AnnotationDraft(MarkGeometry.Point(201, 50), "", null, ViewState.None),
            "empty note" => Note("  \n "),
            "long text" => Box(10, 10, 5, 5, new string('x', 20_001)),
            "unknown label" => Box(10, 10, 5, 5, label: Guid.Parse("00000000-0000-0000-0000-000000000001")),
            "layer" => Box(10, 10, 5, 5, view: new ViewState(0, 2, 0, null)),
            "head" => Box(10, 10, 5, 5, view: new ViewState(0, 1, 3, null)),
            "token" => Box(10, 10, 5, 5, view: new ViewState(3, null, null, null)),
            "negative head" => Box(10, 10, 5, 5, view: new ViewState(null, null, -1, null)),
            "view" => Box(10, 10, 5, 5, view: new ViewState(null, null, null, "nope")),
            _ => throw new ArgumentOutOfRangeException(nameof(@case)),
        };
        var previous = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture; // the expected numbers are written with "." and ","
        try
        {
            int before = Db(db => db.Annotations.Count());
            var refused = await Assert.ThrowsAsync<ArgumentException>(async () => await Annotations.CreateAsync(await Researcher, Run, draft));
            Assert.Equal(message, refused.Message);
            Assert.Equal(before, Db(db => db.Annotations.Count()));
        }
        finally { CultureInfo.CurrentCulture = previous; }
    }

    [Fact]
    public async Task EdgesOfTheImageAreInsideAndOtherTargetsAndTextsAreChecked()
    {
        var researcher = await Researcher;
        // The whole image as a box, a point on its far corner, and the last token/layer/head of a tile view are fine.
        var whole = await Annotations.CreateAsync(researcher, Run, Box(0, 0, 200, 130, view: new ViewState(2, 1, 2, "tile 1,2")));
        var corner = await Annotations.CreateAsync(researcher, Run, new AnnotationDraft(MarkGeometry.Point(200, 130), "", null, ViewState.None));
        Assert.Equal((200.0, 130.0), Db(db => db.Annotations.Where(a => a.Id == whole).Select(a => ValueTuple.Create(a.W, a.H)).Single()));
        Assert.Equal((0.0, 0.0), Db(db => db.Annotations.Where(a => a.Id == corner).Select(a => ValueTuple.Create(a.W, a.H)).Single()));

        Assert.Equal("There is no run 00000000-0000-0000-0000-000000000002.",
            (await Assert.ThrowsAsync<ArgumentException>(() => Annotations.CreateAsync(researcher, AnnotationTarget.Run(Guid.Parse("00000000-0000-0000-0000-000000000002")), Note("x")))).Message);
        Assert.Equal("There is no comparison 00000000-0000-0000-0000-000000000003.",
            (await Assert.ThrowsAsync<ArgumentException>(() => Annotations.CreateAsync(researcher, AnnotationTarget.Comparison(Guid.Parse("00000000-0000-0000-0000-000000000003")), Note("x")))).Message);
        Assert.Equal("A comment needs some text.", (await Assert.ThrowsAsync<ArgumentException>(() => Annotations.AddCommentAsync(researcher, whole, " "))).Message);

        // A deleted label cannot be chosen any more, but an annotation that has it keeps it through an edit.
        var label = await Labels.CreateAsync(researcher, "fleeting", "#abc");
        var labelled = await Annotations.CreateAsync(researcher, Run, Box(1, 1, 5, 5, "x", label));
        await Labels.DeleteAsync(researcher, label, 1);
        Assert.Equal("The label “fleeting” was deleted; pick another.",
            (await Assert.ThrowsAsync<ArgumentException>(() => Annotations.CreateAsync(researcher, Run, Box(1, 1, 5, 5, "x", label)))).Message);
        await Annotations.UpdateAsync(researcher, labelled, 1, Box(1, 1, 5, 5, "still fleeting", label));
        var kept = (await Annotations.GetAsync(labelled))!;
        Assert.Equal(("fleeting", true), (kept.Label!.Name, kept.Label.IsDeleted));
    }

    [Fact]
    public async Task LabelsAreRenamedRecolouredDeletedAndRestoredWithChecks()
    {
        var researcher = await Researcher;
        var id = await Labels.CreateAsync(researcher, "  Hallucination ", "#AA00FF", "made up");
        var created = (await Labels.ListAsync()).Single(l => l.Id == id);
        Assert.Equal(("Hallucination", "#aa00ff", "made up", 1), (created.Name, created.Color, created.Description, created.Version));
        Assert.Equal("There is already a label “grounded”.", (await Assert.ThrowsAsync<ArgumentException>(() => Labels.CreateAsync(researcher, "Grounded", "#000"))).Message);
        Assert.Equal("A label colour is #rgb or #rrggbb (got “red; background: url(x)”).",
            (await Assert.ThrowsAsync<ArgumentException>(() => Labels.CreateAsync(researcher, "evil", "red; background: url(x)"))).Message);
        Assert.Equal("A label needs a name.", (await Assert.ThrowsAsync<ArgumentException>(() => Labels.CreateAsync(researcher, " ", "#000"))).Message);

        await Labels.UpdateAsync(await Second, id, 1, "hallucinated object", "#f0f", null);
        await Assert.ThrowsAsync<ReviewConflictException>(() => Labels.UpdateAsync(researcher, id, 1, "stale", "#000", null));
        await Labels.DeleteAsync(researcher, id, 2);
        Assert.DoesNotContain(await Labels.ListAsync(), l => l.Id == id);
        Assert.Contains(await Labels.ListAsync(includeDeleted: true), l => l.Id == id && l.IsDeleted);
        // While deleted, its name is free; a restore that would clash is refused.
        var taken = await Labels.CreateAsync(researcher, "Hallucinated Object", "#000");
        Assert.Equal("There is already a label “Hallucinated Object”.", (await Assert.ThrowsAsync<ArgumentException>(() => Labels.RestoreAsync(researcher, id, 3))).Message);
        await Labels.DeleteAsync(researcher, taken, 1);
        await Labels.RestoreAsync(researcher, id, 3);
        Assert.Equal([RevisionAction.Restored, RevisionAction.Deleted, RevisionAction.Edited, RevisionAction.Created], (await Labels.HistoryAsync(id)).Select(h => h.Action));
        Assert.Equal("hallucinated object", (await Labels.ListAsync()).Single(l => l.Id == id).Name);
    }

    [Fact]
    public async Task HeadTagsFollowTheModelAndAreCheckedAgainstItsLayersAndHeads()
    {
        var (researcher, second) = (await Researcher, await Second);
        var id = await HeadTags.AddAsync(researcher, host.ModelName, 1, 2, " localization head ", "peaks on the object");
        // Another run of the same model shows the tag (tags belong to the model, not the run).
        var other = await host.Factory.AddAnyresRunAsync();
        var model = Db(db => db.Runs.Single(r => r.Id == other).ModelName);
        var tag = Assert.Single(await HeadTags.ListAsync(model), t => t.Id == id);
        Assert.Equal((1, 2, "localization head", "peaks on the object", PortalFactory.ResearcherEmail), (tag.Layer, tag.Head, tag.Tag, tag.Note, tag.AuthorName));
        Assert.Empty(await HeadTags.ListAsync(PortalFactory.DemoModel));

        Assert.Equal("Layer 1, head 2 is already tagged “localization head”.",
            (await Assert.ThrowsAsync<ArgumentException>(() => HeadTags.AddAsync(second, host.ModelName, 1, 2, "localization head"))).Message);
        Assert.Equal("There is no layer 2: there are 2 (layer 0 to 1).", (await Assert.ThrowsAsync<ArgumentException>(() => HeadTags.AddAsync(second, host.ModelName, 2, 0, "x"))).Message);
        Assert.Equal("There is no head 3: there are 3 (head 0 to 2).", (await Assert.ThrowsAsync<ArgumentException>(() => HeadTags.AddAsync(second, host.ModelName, 0, 3, "x"))).Message);
        Assert.Equal("There is no model “no-such-model”.", (await Assert.ThrowsAsync<ArgumentException>(() => HeadTags.AddAsync(second, "no-such-model", 0, 0, "x"))).Message);
        // A configured model that has never run: its counts are unknown, so only negative numbers are refused.
        await HeadTags.AddAsync(second, PortalFactory.DemoModel, 30, 30, "deep head");
        await Assert.ThrowsAsync<ArgumentException>(() => HeadTags.AddAsync(second, PortalFactory.DemoModel, -1, 0, "x"));

        await HeadTags.UpdateAsync(second, id, 1, "localization head", "peaks on the object, layer 1 only");
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => HeadTags.DeleteAsync(second, id, 2));
        await HeadTags.DeleteAsync(researcher, id, 2);
        Assert.DoesNotContain(await HeadTags.ListAsync(host.ModelName), t => t.Id == id);
        Assert.Equal([RevisionAction.Deleted, RevisionAction.Edited, RevisionAction.Created], (await HeadTags.HistoryAsync(id)).Select(h => h.Action));
    }

    [Fact]
    public async Task EveryWriteIsAnnouncedOnItsTopic()
    {
        var changes = new List<ReviewChange>();
        var events = host.Service<ReviewEvents>();
        void Record(ReviewChange c) { lock (changes) changes.Add(c); }
        events.Changed += Record;
        try
        {
            var researcher = await Researcher;
            var id = await Annotations.CreateAsync(researcher, Run, Note("announced"));
            var comment = await Annotations.AddCommentAsync(researcher, id, "also announced");
            await Annotations.UpdateAsync(researcher, id, 1, Note("edited"));
            var label = await Labels.CreateAsync(researcher, "announced label", "#123");
            var tag = await HeadTags.AddAsync(researcher, host.ModelName, 0, 1, "announced tag");
            string run = ReviewEvents.RunTopic(host.RunId);
            List<ReviewChange> mine;
            lock (changes) mine = changes.Where(c => c.EntityId == id || c.EntityId == comment || c.EntityId == label || c.EntityId == tag).ToList();
            Assert.Equal(
            [
                new ReviewChange(run, "annotation", id, PortalFactory.ResearcherEmail),
                new ReviewChange(run, "comment", comment, PortalFactory.ResearcherEmail),
                new ReviewChange(run, "annotation", id, PortalFactory.ResearcherEmail),
                new ReviewChange(ReviewEvents.LabelsTopic, "label", label, PortalFactory.ResearcherEmail),
                new ReviewChange(ReviewEvents.ModelTopic(host.ModelName), "headtag", tag, PortalFactory.ResearcherEmail),
            ], mine);
            // A refused write announces nothing.
            int count;
            lock (changes) count = changes.Count;
            await Assert.ThrowsAsync<ReviewConflictException>(() => Annotations.UpdateAsync(researcher, id, 1, Note("stale")));
            lock (changes) Assert.Equal(count, changes.Count);
        }
        finally { events.Changed -= Record; }
    }
}
