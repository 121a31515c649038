using System.Globalization;
using System.Security.Claims;
using AttnPortal.Data;
using AttnPortal.Tests.Portal;
using AttnPortal.Web.Components.Shared;
using AttnPortal.Web.Services;
using Bunit;
using Bunit.TestDoubles;
using Microsoft.AspNetCore.Components.Web;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor.Services;

namespace AttnPortal.Tests.Review;

/// <summary>bUnit: the annotation layer's drawing and mapping, the panel (safe Markdown, conflicts, roles), presence, head tags.
/// Writes go to the real services of a portal on a SQLite file.</summary>
public sealed class ReviewComponentTests : BunitContext, IAsyncLifetime, IClassFixture<ReviewHost>
{
    private readonly ReviewHost _host;
    private BunitAuthorizationContext? _auth;

    Task IAsyncLifetime.InitializeAsync() => Task.CompletedTask;
    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    public ReviewComponentTests(ReviewHost host)
    {
        _host = host;
        Services.AddMudServices();
        JSInterop.Mode = JSRuntimeMode.Loose;
        Services.AddSingleton(host.Service<AnnotationService>()).AddSingleton(host.Service<LabelService>())
            .AddSingleton(host.Service<HeadTagService>()).AddSingleton(host.Service<ReviewEvents>());
    }

    /// <summary>Signs the bUnit renderer in as a portal user (id, name and roles as the cookie carries them).</summary>
    private async Task<ClaimsPrincipal> SignInAsync(string email)
    {
        var principal = await _host.PrincipalAsync(email);
        var auth = _auth ??= AddAuthorization(); // once per context; later calls sign someone else in
        auth.SetAuthorized(email);
        auth.SetRoles(principal.FindAll(ClaimTypes.Role).Select(c => c.Value).ToArray());
        auth.SetClaims(new Claim(ClaimTypes.NameIdentifier, principal.FindFirstValue(ClaimTypes.NameIdentifier)!));
        return principal;
    }

    private static readonly LabelView Grounded = new(Guid.NewGuid(), "grounded", "#2ca02c", null, 1, null);

    private static AnnotationView Mark(MarkGeometry geometry, string body, LabelView? label = null, bool deleted = false) =>
        new(Guid.NewGuid(), AnnotationTarget.Run(Guid.NewGuid()), geometry, body, label, new ViewState(1, 0, 2, "tiles"), "someone", "someone@lab.org",
            new DateTime(2026, 11, 23, 14, 2, 0), "someone@lab.org", new DateTime(2026, 11, 23, 14, 2, 0), 1, deleted ? DateTime.UtcNow : null, []);

    [Fact]
    public void LayerDrawsBoxesAndPointsInOriginalImagePixelsWithTheirLabelColour()
    {
        var previous = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE"); // decimal commas must not reach the SVG
        try
        {
            var box = Mark(MarkGeometry.Box(20.5, 10, 60.25, 40), "red square\nmore", Grounded);
            var point = Mark(MarkGeometry.Point(150, 65), "here");
            var layer = Render<AnnotationLayer>(p => p.Add(c => c.ImageWidth, 200).Add(c => c.ImageHeight, 130)
                .Add(c => c.Annotations, [box, point, Mark(MarkGeometry.Note, "a note"), Mark(MarkGeometry.Box(1, 1, 5, 5), "gone", deleted: true)]));

            var svg = layer.Find("svg[data-testid=annotation-layer]");
            Assert.Equal("0 0 200 130", svg.GetAttribute("viewBox"));
            Assert.Equal("none", svg.GetAttribute("preserveAspectRatio"));
            var marks = layer.FindAll("[data-testid=annotation-mark]");
            Assert.Equal(2, marks.Count); // neither the note (no place) nor the deleted box
            var rect = layer.Find($"[data-annotation='{box.Id}'] rect.box");
            Assert.Equal(("20.5", "10", "60.25", "40"), (rect.GetAttribute("x"), rect.GetAttribute("y"), rect.GetAttribute("width"), rect.GetAttribute("height")));
            Assert.Contains("color: #2ca02c", layer.Find($"[data-annotation='{box.Id}']").GetAttribute("style"));
            Assert.Equal("grounded: red square", layer.Find($"[data-annotation='{box.Id}'] text").TextContent);
            var circle = layer.Find($"[data-annotation='{point.Id}'] circle.point");
            Assert.Equal(("150", "65"), (circle.GetAttribute("cx"), circle.GetAttribute("cy")));
            Assert.Contains($"color: {AnnotationLayer.Unlabelled}", layer.Find($"[data-annotation='{point.Id}']").GetAttribute("style"));
        }
        finally { CultureInfo.CurrentCulture = previous; }
    }

    [Fact]
    public void DraggingInBoxModeGivesTheBoxInImagePixels()
    {
        // The 200 × 130 image is shown at 400 × 260; the press lands 100, 50 px into the layer.
        JSInterop.Setup<double[]>("attnPortal.clickOffset", _ => true).SetResult([100, 50, 400, 260]);
        var drawn = new List<MarkGeometry>();
        var layer = Render<AnnotationLayer>(p => p.Add(c => c.ImageWidth, 200).Add(c => c.ImageHeight, 130).Add(c => c.Tool, AnnotationTool.Box)
            .Add(c => c.OnDrawn, (MarkGeometry g) => drawn.Add(g)));

        layer.Find("svg").PointerDown(new PointerEventArgs { ClientX = 110, ClientY = 60, Button = 0 });
        // While dragging, a surface reports moves and the box is previewed.
        layer.FindAll("rect.canvas")[^1].PointerMove(new PointerEventArgs { ClientX = 160, ClientY = 86 });
        var preview = layer.Find("[data-testid=draft-mark]");
        Assert.Equal(("50", "25", "25", "13"), (preview.GetAttribute("x"), preview.GetAttribute("y"), preview.GetAttribute("width"), preview.GetAttribute("height")));
        layer.Find("svg").PointerUp(new PointerEventArgs { ClientX = 210, ClientY = 112 });

        Assert.Equal([MarkGeometry.Box(50, 25, 50, 26)], drawn);
        Assert.Empty(layer.FindAll("[data-testid=draft-mark]"));
        Assert.Single(layer.FindAll("rect.canvas")); // the drag surface is gone with the gesture

        // A click (no real drag) is not a box.
        layer.Find("svg").PointerDown(new PointerEventArgs { ClientX = 110, ClientY = 60, Button = 0 });
        layer.Find("svg").PointerUp(new PointerEventArgs { ClientX = 111, ClientY = 60 });
        Assert.Single(drawn);
    }

    [Fact]
    public void ClickingInPointModeGivesThePointAndSelectModeDrawsNothing()
    {
        JSInterop.Setup<double[]>("attnPortal.clickOffset", _ => true).SetResult([300, 26, 400, 260]);
        var drawn = new List<MarkGeometry>();
        Guid? selected = null;
        var mark = Mark(MarkGeometry.Box(10, 10, 20, 20), "pick me");
        var layer = Render<AnnotationLayer>(p => p.Add(c => c.ImageWidth, 200).Add(c => c.ImageHeight, 130).Add(c => c.Tool, AnnotationTool.Point)
            .Add(c => c.Annotations, [mark]).Add(c => c.OnDrawn, (MarkGeometry g) => drawn.Add(g)).Add(c => c.SelectedChanged, (Guid? id) => selected = id));
        layer.Find("svg").PointerDown(new PointerEventArgs { ClientX = 500, ClientY = 300, Button = 0 });
        layer.Find("svg").PointerUp(new PointerEventArgs { ClientX = 500, ClientY = 300 });
        Assert.Equal([MarkGeometry.Point(150, 13)], drawn);

        layer.Render(p => p.Add(c => c.Tool, AnnotationTool.Select));
        int asked = JSInterop.Invocations.Count(i => i.Identifier == "attnPortal.clickOffset");
        layer.Find("svg").PointerDown(new PointerEventArgs { ClientX = 500, ClientY = 300, Button = 0 });
        layer.Find("svg").PointerUp(new PointerEventArgs { ClientX = 600, ClientY = 400 });
        Assert.Single(drawn);
        Assert.Equal(asked, JSInterop.Invocations.Count(i => i.Identifier == "attnPortal.clickOffset"));
        Assert.DoesNotContain("drawing", layer.Find("svg").ClassList);
        layer.Find($"[data-annotation='{mark.Id}']").Click();
        Assert.Equal(mark.Id, selected);
    }

    [Fact]
    public async Task PanelRendersMarkdownWithoutScriptAndShowsAViewerNoControls()
    {
        await SignInAsync(PortalFactory.ViewerEmail);
        var evil = Mark(MarkGeometry.Note, "<script>alert('x')</script> **fine** [click](javascript:alert(1)) <img src=x onerror=alert(2)>", Grounded);
        var shown = new List<ViewState>();
        var panel = Render<AnnotationPanel>(p => p.Add(c => c.Target, AnnotationTarget.Run(Guid.NewGuid())).Add(c => c.Annotations, [evil])
            .Add(c => c.Labels, [Grounded]).Add(c => c.OnShowView, (ViewState v) => shown.Add(v)));

        var markdown = panel.Find("[data-annotation] [data-testid=markdown]");
        Assert.Empty(panel.FindAll("script"));
        Assert.Empty(markdown.QuerySelectorAll("img"));
        Assert.Contains("<script>alert('x')</script>", markdown.TextContent);
        Assert.Equal("fine", markdown.QuerySelector("strong")!.TextContent);
        Assert.DoesNotContain("javascript", markdown.InnerHtml.Replace(markdown.TextContent, ""), StringComparison.OrdinalIgnoreCase);
        Assert.All(markdown.QuerySelectorAll("a"), a => Assert.DoesNotContain("script:", a.GetAttribute("href") ?? "", StringComparison.OrdinalIgnoreCase));
        Assert.Equal("grounded", panel.Find("[data-annotation] [data-testid=label-chip]").TextContent);
        Assert.Contains("2026-11-23 14:02 UTC", panel.Find("[data-annotation]").TextContent);

        // The view it was made on, and the button that goes back to it.
        var view = panel.Find("[data-testid=show-view]");
        Assert.Contains("token 1 · layer 0 · head 2 · tiles", view.TextContent);
        view.Click();
        Assert.Equal([new ViewState(1, 0, 2, "tiles")], shown);

        // A viewer reads: no editor, no edit, delete or comment controls.
        foreach (var control in new[] { "annotation-edit", "annotation-delete", "annotation-restore", "comment-add", "comment-body", "annotation-editor" })
            Assert.Empty(panel.FindAll($"[data-testid={control}]"));
        Assert.Single(panel.FindAll("[data-testid=annotation-history]"));
    }

    [Fact]
    public async Task PanelSavesADraftWithItsTextAndLabel()
    {
        var user = await SignInAsync(PortalFactory.ResearcherEmail);
        var labels = await _host.Service<LabelService>().ListAsync();
        var target = AnnotationTarget.Run(_host.RunId);
        var draft = new AnnotationDraft(MarkGeometry.Box(10, 20, 30, 40), "", null, new ViewState(0, 1, 1, "base"));
        AnnotationDraft? after = draft;
        var panel = Render<AnnotationPanel>(p => p.Add(c => c.Target, target).Add(c => c.Labels, labels).Add(c => c.Draft, draft)
            .Add(c => c.DraftChanged, (AnnotationDraft? d) => after = d));

        Assert.Contains("box at (10, 20), 30 × 40 px", panel.Find("[data-testid=annotation-editor]").TextContent);
        panel.Find("textarea[data-testid=annotation-body]").Input("drawn in **bUnit**");
        panel.Find("[data-testid=annotation-editor] [data-testid=label-chip][data-label='spurious']").Click();
        panel.Find("button[data-testid=annotation-save]").Click();

        panel.WaitForAssertion(() => Assert.Null(after));
        var saved = Assert.Single(await _host.Service<AnnotationService>().ListAsync(target), a => a.Body == "drawn in **bUnit**");
        Assert.Equal(("spurious", MarkGeometry.Box(10, 20, 30, 40), new ViewState(0, 1, 1, "base")), (saved.Label!.Name, saved.Geometry, saved.View));
        Assert.Equal(user.FindFirstValue(ClaimTypes.NameIdentifier), saved.AuthorId);
    }

    [Fact]
    public async Task PanelShowsTheConflictWhenSomeoneSavedFirstAndReloads()
    {
        await SignInAsync(PortalFactory.ResearcherEmail);
        var service = _host.Service<AnnotationService>();
        var target = AnnotationTarget.Run(_host.RunId);
        var id = await service.CreateAsync(await _host.PrincipalAsync(PortalFactory.ResearcherEmail), target, new AnnotationDraft(MarkGeometry.Note, "original", null, ViewState.None));
        var shown = await service.ListAsync(target, includeDeleted: true);
        int reloads = 0;
        var panel = Render<AnnotationPanel>(p => p.Add(c => c.Target, target).Add(c => c.Annotations, shown)
            .Add(c => c.OnReload, () => reloads++));

        panel.Find($"[data-annotation='{id}'] button[data-testid=annotation-edit]").Click();
        panel.Find($"[data-annotation='{id}'] textarea[data-testid=annotation-body]").Input("my version");
        // Meanwhile the admin saves theirs.
        await service.UpdateAsync(await _host.PrincipalAsync(PortalFactory.AdminEmail), id, 1, new AnnotationDraft(MarkGeometry.Note, "the admin's version", null, ViewState.None));
        // The page reloads the list on the live notice: the open editor keeps the text and the version it started from.
        var reloaded = await service.ListAsync(target, includeDeleted: true);
        panel.Render(p => p.Add(c => c.Annotations, reloaded));
        Assert.Equal("my version", panel.Find($"[data-annotation='{id}'] textarea[data-testid=annotation-body]").GetAttribute("value") ?? panel.Find($"[data-annotation='{id}'] textarea[data-testid=annotation-body]").TextContent);
        Assert.StartsWith("Administrator changed this at", panel.Find("[data-testid=changed-meanwhile]").TextContent.Trim());
        panel.Find($"[data-annotation='{id}'] button[data-testid=annotation-save]").Click();

        var alert = panel.WaitForElement("[data-testid=review-error]");
        Assert.Matches(@"Administrator edited this annotation at \d\d:\d\d UTC; your change was not saved — reload to see theirs\.", alert.TextContent);
        Assert.Equal("the admin's version", (await service.GetAsync(id))!.Body);
        Assert.Single(panel.FindAll($"[data-annotation='{id}'] [data-testid=annotation-editor]")); // what the user typed is still there

        panel.Find("button[data-testid=review-reload]").Click();
        Assert.Equal(1, reloads);
        Assert.Empty(panel.FindAll("[data-testid=review-error]"));
        Assert.Empty(panel.FindAll($"[data-annotation='{id}'] [data-testid=annotation-editor]"));
    }

    [Fact]
    public async Task PresenceBarShowsTheOthersLiveAndLeavesWithThePage()
    {
        await SignInAsync(PortalFactory.ResearcherEmail);
        var events = _host.Service<ReviewEvents>();
        string topic = ReviewEvents.RunTopic(Guid.NewGuid());
        using var ada = events.Join(topic, "ada.lovelace@lab.org");
        var bar = Render<PresenceBar>(p => p.Add(c => c.Topic, topic));

        var others = bar.WaitForElements("[data-testid=presence-user]");
        Assert.Equal("ada.lovelace@lab.org", Assert.Single(others).GetAttribute("data-user"));
        Assert.Equal("AL", others[0].TextContent.Trim());
        Assert.Contains(PortalFactory.ResearcherEmail, events.Viewers(topic)); // the page counts as viewing, but is not shown to itself

        var grace = events.Join(topic, "grace@lab.org");
        bar.WaitForAssertion(() => Assert.Equal(2, bar.FindAll("[data-testid=presence-user]").Count));
        grace.Dispose();
        bar.WaitForAssertion(() => Assert.Equal(["ada.lovelace@lab.org"], bar.FindAll("[data-testid=presence-user]").Select(e => e.GetAttribute("data-user"))));

        await DisposeComponentsAsync();
        Assert.Equal(["ada.lovelace@lab.org"], events.Viewers(topic));
    }

    [Fact]
    public async Task HeadTagPanelAddsATagForTheChosenHeadAndListsTheModelsTags()
    {
        await SignInAsync(PortalFactory.ResearcherEmail);
        var tags = _host.Service<HeadTagService>();
        (int, int)? picked = null;
        var panel = Render<HeadTagPanel>(p => p.Add(c => c.ModelName, _host.ModelName).Add(c => c.Layer, 1).Add(c => c.Head, 1)
            .Add(c => c.Picked, ((int Layer, int Head) h) => picked = h));
        Assert.Contains("no tags", panel.Find("[data-testid=head-tags-here]").TextContent);
        panel.Find("input[data-testid=head-tag-text]").Input("sink head");
        panel.Find("button[data-testid=head-tag-add]").Click();
        panel.WaitForAssertion(() => Assert.Empty(panel.FindAll("[data-testid=head-tag-error]")));
        var tag = Assert.Single(await tags.ListAsync(_host.ModelName), t => t.Tag == "sink head");
        Assert.Equal((1, 1), (tag.Layer, tag.Head));

        // The page passes the model's tags back in (it reloads them when told of the change).
        panel.Render(p => p.Add(c => c.Tags, [tag]).Add(c => c.Layer, 0).Add(c => c.Head, 0));
        Assert.Contains("no tags", panel.Find("[data-testid=head-tags-here]").TextContent);
        var listed = panel.Find("[data-testid=model-head-tag]");
        Assert.Equal("L1·H1 sink head", listed.TextContent.Trim());
        listed.Click();
        Assert.Equal((1, 1), picked);

        // A viewer sees the tags but cannot add one.
        await SignInAsync(PortalFactory.ViewerEmail);
        var read = Render<HeadTagPanel>(p => p.Add(c => c.ModelName, _host.ModelName).Add(c => c.Tags, [tag]).Add(c => c.Layer, 1).Add(c => c.Head, 1));
        Assert.Single(read.FindAll("[data-testid=head-tag]"));
        Assert.Empty(read.FindAll("[data-testid=head-tag-add]"));
        Assert.Empty(read.FindAll("[data-testid=head-tag-remove]"));
    }
    [Fact]
    public async Task HistoryDialogListsEveryVersionNewestFirstWithNames()
    {
        await SignInAsync(PortalFactory.ResearcherEmail);
        var service = _host.Service<AnnotationService>();
        var target = AnnotationTarget.Run(_host.RunId);
        var sink = (await _host.Service<LabelService>().ListAsync()).Single(l => l.Name == "attention sink");
        var id = await service.CreateAsync(await _host.PrincipalAsync(PortalFactory.ResearcherEmail), target, new AnnotationDraft(MarkGeometry.Point(5, 6), "first", null, ViewState.None));
        await service.UpdateAsync(await _host.PrincipalAsync(PortalFactory.AdminEmail), id, 1, new AnnotationDraft(MarkGeometry.Point(5, 6), "second", sink.Id, ViewState.None));
        var dialogs = Render<MudBlazor.MudDialogProvider>();
        var annotations = await service.ListAsync(target);
        var panel = Render<AnnotationPanel>(p => p.Add(c => c.Target, target).Add(c => c.Annotations, annotations));

        panel.Find($"[data-annotation='{id}'] button[data-testid=annotation-history]").Click();
        var rows = dialogs.WaitForElements("[data-testid=revision]");
        Assert.Equal(["2", "1"], rows.Select(r => r.GetAttribute("data-version")));
        Assert.Contains("Edited", rows[0].TextContent);
        Assert.Contains("Administrator", rows[0].TextContent);
        Assert.Contains("second", rows[0].TextContent);
        Assert.Contains("label: attention sink", rows[0].TextContent);
        Assert.Contains("Created", rows[1].TextContent);
        Assert.Contains(PortalFactory.ResearcherEmail, rows[1].TextContent);
        Assert.Contains("point at (5, 6)", rows[1].TextContent);
    }

    [Fact]
    public async Task LabelsPageLetsWritersAddAndViewersOnlyRead()
    {
        await SignInAsync(PortalFactory.ViewerEmail);
        var read = Render<AttnPortal.Web.Components.Pages.Labels>();
        read.WaitForAssertion(() => Assert.Contains(read.FindAll("[data-testid=label-row]"), r => r.GetAttribute("data-label") == "grounded"));
        Assert.DoesNotContain("Add a label", read.Markup);
        Assert.DoesNotContain(read.FindAll("button"), b => b.TextContent.Trim() is "Edit" or "Delete");

        await SignInAsync(PortalFactory.ResearcherEmail);
        var write = Render<AttnPortal.Web.Components.Pages.Labels>();
        write.WaitForAssertion(() => Assert.Contains("Add a label", write.Markup));
        write.Find("[data-testid=new-label-color]").Change("#00aa88");
        write.Find("input[data-testid=new-label-name]").Change("occluded");
        write.Find("button[data-testid=new-label-add]").Click();
        // The page hears its own change like anyone else's and lists the new label.
        write.WaitForAssertion(() => Assert.Contains(write.FindAll("[data-testid=label-row]"), r => r.GetAttribute("data-label") == "occluded"));
        Assert.Equal("#00aa88", (await _host.Service<LabelService>().ListAsync()).Single(l => l.Name == "occluded").Color);
    }
}
