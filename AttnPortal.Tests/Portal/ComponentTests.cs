using System.Globalization;
using AttnPortal.Data;
using AttnPortal.Inference.Images;
using AttnPortal.Web.Rendering;
using AttnPortal.Web.Components.Pages;
using AttnPortal.Web.Components.Shared;
using Bunit;
using Bunit.TestDoubles;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor.Services;

namespace AttnPortal.Tests.Portal;

/// <summary>bUnit: small components rendered on their own, without a server.</summary>
public sealed class ComponentTests : BunitContext, IAsyncLifetime
{
    // MudBlazor registers services that only dispose asynchronously; xunit 2 calls this before Dispose().
    Task IAsyncLifetime.InitializeAsync() => Task.CompletedTask;
    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    public ComponentTests()
    {
        Services.AddMudServices();
        JSInterop.Mode = JSRuntimeMode.Loose;
    }

    [Theory]
    [InlineData(RunStatus.Queued, "mud-chip-color-default")]
    [InlineData(RunStatus.Running, "mud-chip-color-info")]
    [InlineData(RunStatus.Succeeded, "mud-chip-color-success")]
    [InlineData(RunStatus.Failed, "mud-chip-color-error")]
    [InlineData(RunStatus.Canceled, "mud-chip-color-warning")]
    public void StatusChipShowsTheStatusInItsColour(RunStatus status, string colourClass)
    {
        var chip = Render<StatusChip>(p => p.Add(c => c.Status, status));
        var element = chip.Find("[data-testid=status]");
        Assert.Equal(status.ToString(), element.TextContent.Trim());
        Assert.Contains(colourClass, element.ClassList);
        // exactly one colour: a chip is never two states at once
        Assert.Single(element.ClassList, c => c.StartsWith("mud-chip-color-", StringComparison.Ordinal));
    }

    [Fact]
    public void StatusChipFollowsItsParameter()
    {
        var chip = Render<StatusChip>(p => p.Add(c => c.Status, RunStatus.Running));
        chip.Render(p => p.Add(c => c.Status, RunStatus.Failed));
        Assert.Equal("Failed", chip.Find("[data-testid=status]").TextContent.Trim());
        Assert.Contains("mud-chip-color-error", chip.Find("[data-testid=status]").ClassList);
    }

    [Fact]
    public void RedirectToLoginSendsASignedOutVisitorToLoginWithTheWayBack()
    {
        AddAuthorization(); // signed out
        var nav = Services.GetRequiredService<BunitNavigationManager>();
        nav.NavigateTo("/runs/3f2504e0-4f89-11d3-9a0c-0305e82c3301?step=2");
        Render<RedirectToLogin>();
        var target = nav.History.First();
        Assert.Equal("http://localhost/login?returnUrl=" + Uri.EscapeDataString("/runs/3f2504e0-4f89-11d3-9a0c-0305e82c3301?step=2"), nav.Uri);
        Assert.True(target.Options.ForceLoad, "the sign-in page is a plain form: it must be loaded, not routed to in the circuit");
    }

    [Fact]
    public void RedirectToLoginSendsASignedInVisitorWithoutTheRoleToDenied()
    {
        AddAuthorization().SetAuthorized("viewer@portal.test").SetRoles(Roles.Viewer);
        var nav = Services.GetRequiredService<BunitNavigationManager>();
        nav.NavigateTo("/queue");
        Render<RedirectToLogin>();
        Assert.Equal("http://localhost/denied", nav.Uri);
        Assert.True(nav.History.First().Options.ForceLoad);
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("invalid", "Wrong email or password.")]
    [InlineData("locked", "Too many failed attempts")]
    public void LoginFormPostsToTheAccountEndpointAndShowsTheError(string? error, string? message)
    {
        var nav = Services.GetRequiredService<BunitNavigationManager>();
        nav.NavigateTo(error is null ? "/login?returnUrl=%2Fqueue" : $"/login?error={error}&returnUrl=%2Fqueue");
        var page = Render<Login>();

        var form = page.Find("form");
        Assert.Equal("post", form.GetAttribute("method"));
        Assert.Equal("/account/login", form.GetAttribute("action"));
        Assert.Equal("/queue", page.Find("input[name=returnUrl]").GetAttribute("value"));
        Assert.Equal("email", page.Find("input[name=email]").GetAttribute("type"));
        Assert.Equal("password", page.Find("input[name=password]").GetAttribute("type"));
        var alerts = page.FindAll("[role=alert]");
        if (message is null) Assert.Empty(alerts);
        else Assert.Contains(message, Assert.Single(alerts).TextContent);
    }

    [Fact]
    public void HeatmapStageLaysTheHeatmapOverTheFrameTheModelSaw()
    {
        var previous = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE"); // decimal commas must not reach the CSS
        try
        {
            // A 400×200 photo padded to a square: the 400×400 frame starts 100 px above the photo.
            var pad = new ImageGeometry(400, 200, AspectMode.Pad, 336, 336, 0, -100, 400, 400);
            var stage = Render<HeatmapStage>(p => p.Add(c => c.ImageUrl, "/api/images/x").Add(c => c.HeatmapUrl, "/api/runs/y/heatmap.png?step=0")
                .Add(c => c.Frame, pad.Frame).Add(c => c.ImageWidth, 400).Add(c => c.ImageHeight, 200).Add(c => c.Opacity, 0.35));
            Assert.Equal("/api/images/x", stage.Find("img[data-testid=photo]").GetAttribute("src"));
            var heat = stage.Find("img[data-testid=heatmap]");
            Assert.Equal("/api/runs/y/heatmap.png?step=0", heat.GetAttribute("src"));
            string style = heat.GetAttribute("style")!;
            Assert.Contains("left: 0%", style);
            Assert.Contains("top: -50%", style);
            Assert.Contains("width: 100%", style);
            Assert.Contains("height: 200%", style);
            Assert.Contains("opacity: 0.35", style);

            // A centre crop of a 300×200 photo: the frame is the middle 200×200.
            var crop = new ImageGeometry(300, 200, AspectMode.Crop, 336, 336, 50, 0, 200, 200);
            stage.Render(p => p.Add(c => c.Frame, crop.Frame).Add(c => c.ImageWidth, 300));
            style = stage.Find("img[data-testid=heatmap]").GetAttribute("style")!;
            Assert.Contains("left: 16.6667%", style);
            Assert.Contains("width: 66.6667%", style);
            Assert.Contains("top: 0%", style);
            Assert.Contains("height: 100%", style);
        }
        finally { CultureInfo.CurrentCulture = previous; }
    }

    [Fact]
    public void HeatmapStagePlacesAnAnyresViewByItsFrame()
    {
        string StyleFor(ImageRect frame)
        {
            var stage = Render<HeatmapStage>(p => p.Add(c => c.ImageUrl, "/api/images/x").Add(c => c.HeatmapUrl, "/api/runs/y/heatmap.png?view=tiles")
                .Add(c => c.Frame, frame).Add(c => c.ImageWidth, 200).Add(c => c.ImageHeight, 130));
            return stage.Find("img[data-testid=heatmap]").GetAttribute("style")!;
        }
        // The base view covers the whole 200×130 photo (its square grid stretched over it).
        string whole = StyleFor(new ImageRect(0, 0, 200, 130));
        Assert.Contains("left: 0%; top: 0%; width: 100%; height: 100%", whole);
        // The tiles view lies on [20, 200) × [10, 130).
        string tiles = StyleFor(new ImageRect(20, 10, 180, 120));
        Assert.Contains("left: 10%; top: 7.6923%; width: 90%; height: 92.3077%", tiles);
        // A tile reaching past the photo (padding the model saw) keeps its size and is clipped by the stage.
        string tile = StyleFor(new ImageRect(140, 70, 80, 80));
        Assert.Contains("left: 70%; top: 53.8462%; width: 40%; height: 61.5385%", tile);

        // Without the image size there is nothing to place the heatmap on.
        var unsized = Render<HeatmapStage>(p => p.Add(c => c.ImageUrl, "/api/images/x").Add(c => c.HeatmapUrl, "/h.png").Add(c => c.Frame, new ImageRect(0, 0, 1, 1)));
        Assert.Empty(unsized.FindAll("[data-testid=heatmap]"));
    }

    [Fact]
    public async Task ViewPickerAppearsOnlyWhenThereIsAChoiceAndReportsIt()
    {
        var image = new ImageGridView("image", 0, 24, 24, 24, new ImageRect(0, -50, 200, 200));
        var single = Render<ViewPicker>(p => p.Add(c => c.Views, [image]).Add(c => c.Selected, "image"));
        Assert.Empty(single.FindAll("[data-testid=view-picker]"));
        Assert.Equal("", single.Markup.Trim());

        ImageGridView[] views =
        [
            new("base", 0, 4, 4, 4, new ImageRect(0, 0, 200, 130)),
            new("tiles", 16, 6, 9, 10, new ImageRect(20, 10, 180, 120)),
            new("tile 0,0", 16, 3, 3, 10, new ImageRect(20, 10, 60, 60)),
        ];
        string? chosen = null;
        var picker = Render<ViewPicker>(p => p.Add(c => c.Views, views).Add(c => c.Selected, "tiles").Add(c => c.SelectedChanged, (string v) => chosen = v));
        var root = picker.Find("[data-testid=view-picker]");
        Assert.Contains("View", root.TextContent); // the label
        Assert.Equal("tiles (6×9)", picker.Find("[data-testid=view-picker] input").GetAttribute("value"));
        var select = picker.FindComponent<MudBlazor.MudSelect<string>>();
        await picker.InvokeAsync(() => select.Instance.ValueChanged.InvokeAsync("base"));
        Assert.Equal("base", chosen);

        // The `v` key: the next view, wrapping around; an unknown one starts at the first.
        Assert.Equal("tile 0,0", ViewPicker.Next(views, "tiles"));
        Assert.Equal("base", ViewPicker.Next(views, "tile 0,0"));
        Assert.Equal("base", ViewPicker.Next(views, "gone"));
        Assert.Equal("image", ViewPicker.Next([image], "image"));
    }

    [Fact]
    public void HeatmapStageWithoutAnArtifactShowsOnlyThePhoto()
    {
        var stage = Render<HeatmapStage>(p => p.Add(c => c.ImageUrl, "/api/images/x"));
        Assert.Single(stage.FindAll("img[data-testid=photo]"));
        Assert.Empty(stage.FindAll("[data-testid=heatmap]"));
    }

    [Fact]
    public void TokenStripShowsEveryTokenVisiblyAndReportsTheChoice()
    {
        int? chosen = -1;
        var strip = Render<TokenStrip>(p => p.Add(c => c.Tokens, ["▁The", "\n", "cat", " "]).Add(c => c.Selected, 2)
            .Add(c => c.SelectedChanged, (int? s) => chosen = s));
        var chips = strip.FindAll("[data-testid=token]");
        Assert.Equal(["·The", "⏎", "cat", "·"], chips.Select(c => c.TextContent));
        Assert.Equal("true", chips[2].GetAttribute("aria-selected"));
        Assert.Equal("false", chips[0].GetAttribute("aria-selected"));
        Assert.Contains("selected", chips[2].ClassList);
        Assert.DoesNotContain("selected", chips[0].ClassList);

        strip.FindAll("[data-testid=token]")[1].Click();
        Assert.Equal(1, chosen);
        strip.Find("[data-testid=token-all]").Click();
        Assert.Null(chosen);
    }

    [Fact]
    public void HeadGridTurnsAClickIntoLayerAndHead()
    {
        // 3 layers × 4 heads of 24×24 cells at 2 px with 2 px gaps: a 198×148 sprite, shown at zoom 2 (396×296 CSS px).
        var layout = new HeadGridLayout(3, 4, 24, 24, 2, 2);
        (int Layer, int Head)? picked = null;
        var grid = Render<HeadGrid>(p => p.Add(c => c.Url, "/api/runs/y/heads.png?step=0").Add(c => c.Layout, layout).Add(c => c.Zoom, 2)
            .Add(c => c.Picked, ((int Layer, int Head) h) => picked = h));
        var img = grid.Find("img[data-testid=head-grid]");
        Assert.Equal("/api/runs/y/heads.png?step=0", img.GetAttribute("src"));
        Assert.Contains("width: 396px", img.GetAttribute("style"));

        // The browser reports the click inside the element (x, y, width, height in CSS pixels).
        var offset = JSInterop.Setup<double[]>("attnPortal.clickOffset", _ => true);
        offset.SetResult([2 * (2 * 50 + 10), 2 * (1 * 50 + 47), 396, 296]); // sprite (210, 97): head 2, layer 1
        img.Click(new MouseEventArgs { ClientX = 500, ClientY = 300 });
        Assert.Equal((1, 2), picked);

        picked = null;
        JSInterop.Setup<double[]>("attnPortal.clickOffset", _ => true).SetResult([2 * 49, 10, 396, 296]); // the gap after head 0
        grid.Find("img[data-testid=head-grid]").Click(new MouseEventArgs { ClientX = 1, ClientY = 1 });
        Assert.Null(picked);
    }
}
