using System.Globalization;
using System.Net;
using System.Text.Json;
using AttnPortal.Data;
using AttnPortal.Tests.Rendering;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace AttnPortal.Tests.Portal;

/// <summary>The export endpoints on a real portal: annotations as JSON and COCO (per run and over a search), per-head CSV.</summary>
public sealed class ExportEndpointTests(ExportEndpointTests.Host host) : IClassFixture<ExportEndpointTests.Host>
{
    /// <summary>
    /// Runs A and B of wide.png (200 × 130) with the hand-made anyres artifact, and run C of small.webp without one (it
    /// failed). A has a labelled box with a comment thread (one comment deleted), a labelled point, a note, an unlabelled
    /// box and a deleted box; B has one box; C one box with the other label.
    /// </summary>
    public sealed class Host : PortalHost
    {
        public Guid RunA { get; private set; }
        public Guid RunB { get; private set; }
        public Guid RunC { get; private set; }
        public Guid Grounded { get; private set; }
        public Guid Sink { get; private set; }
        public const string OtherModel = "other-model";

        protected override async Task SeedAsync()
        {
            RunA = await Factory.AddAnyresRunAsync();
            RunB = await Factory.AddAnyresRunAsync();
            using var scope = Factory.Services.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<PortalDbContext>();
            var users = scope.ServiceProvider.GetRequiredService<UserManager<PortalUser>>();
            string researcher = (await users.FindByEmailAsync(PortalFactory.ResearcherEmail))!.Id;
            string admin = (await users.FindByEmailAsync(PortalFactory.AdminEmail))!.Id;
            var webp = await scope.ServiceProvider.GetRequiredService<Web.Services.ImageStore>()
                .SaveAsync(File.ReadAllBytes(Fixture.Image("small.webp")), "small.webp", researcher);
            var t0 = new DateTime(2026, 11, 20, 10, 0, 0);
            RunC = Guid.NewGuid();
            db.Runs.Add(new Run
            {
                Id = RunC, ImageId = webp.Id, ModelName = OtherModel, Schedule = "standard", Question = "Where?", Aspect = "pad", MaxNewTokens = 4,
                Status = RunStatus.Failed, Error = "out of memory", OwnerId = researcher, BatchId = Guid.NewGuid(), CreatedUtc = t0,
            });
            Grounded = Guid.NewGuid();
            Sink = Guid.NewGuid();
            db.Labels.AddRange(new Label { Id = Grounded, Name = "grounded", Color = "#2ca02c", CreatedById = admin, CreatedUtc = t0 },
                new Label { Id = Sink, Name = "attention sink", Color = "#d62728", CreatedById = admin, CreatedUtc = t0 });

            int minute = 0;
            Annotation Mark(Guid run, AnnotationShape shape, double x, double y, double w, double h, Guid? label, string body = "") => new()
            {
                Id = Guid.NewGuid(), RunId = run, Shape = shape, X = x, Y = y, W = w, H = h, LabelId = label, Body = body, AuthorId = researcher,
                CreatedUtc = t0.AddMinutes(++minute), UpdatedUtc = t0.AddMinutes(minute), Version = 1, Step = 1, Layer = 0, Head = 2, ViewName = "tiles",
            };
            var box = Mark(RunA, AnnotationShape.Box, 20, 10, 60, 40, Grounded, "the **red** square");
            box.Version = 3;
            box.UpdatedById = admin;
            box.UpdatedUtc = t0.AddHours(1);
            box.Comments.Add(new Comment { Id = Guid.NewGuid(), Body = "agreed", AuthorId = admin, CreatedUtc = t0.AddMinutes(30), UpdatedUtc = t0.AddMinutes(30), Version = 1 });
            box.Comments.Add(new Comment { Id = Guid.NewGuid(), Body = "retracted", AuthorId = researcher, CreatedUtc = t0.AddMinutes(31), UpdatedUtc = t0.AddMinutes(32), Version = 2, DeletedUtc = t0.AddMinutes(32) });
            var point = Mark(RunA, AnnotationShape.Point, 100, 65, 0, 0, Sink, "sink here");
            var note = Mark(RunA, AnnotationShape.Note, 0, 0, 0, 0, null, "a note");
            var unlabelled = Mark(RunA, AnnotationShape.Box, 30.5, 30, 10, 20.25, null);
            var deleted = Mark(RunA, AnnotationShape.Box, 1, 1, 5, 5, Grounded);
            deleted.DeletedUtc = t0.AddDays(1);
            var onB = Mark(RunB, AnnotationShape.Box, 0, 0, 200, 130, Grounded);
            var onC = Mark(RunC, AnnotationShape.Box, 1, 2, 3, 4, Sink);
            db.Annotations.AddRange(box, point, note, unlabelled, deleted, onB, onC);
            await db.SaveChangesAsync();
        }
    }

    private PortalFactory Factory => host.Factory;

    private static async Task<JsonElement> JsonAsync(HttpClient client, string url)
    {
        using var response = await client.GetAsync(url);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("attachment", response.Content.Headers.ContentDisposition?.DispositionType);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.Clone();
    }

    [Fact]
    public async Task AnnotationsJsonHasTheLiveAnnotationsWithLabelsViewsAndComments()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        var doc = await JsonAsync(viewer, $"/api/runs/{host.RunA}/annotations.json");
        Assert.Equal("attnportal.annotations/1", doc.GetProperty("format").GetString());
        var run = doc.GetProperty("run");
        Assert.Equal(host.RunA, run.GetProperty("id").GetGuid());
        Assert.Equal("What is red?", run.GetProperty("question").GetString());
        var image = run.GetProperty("image");
        Assert.Equal(("wide.png", AnyresArtifact.Width, AnyresArtifact.Height),
            (image.GetProperty("file_name").GetString(), image.GetProperty("width").GetInt32(), image.GetProperty("height").GetInt32()));

        var marks = doc.GetProperty("annotations").EnumerateArray().ToList();
        Assert.Equal(["box", "point", "note", "box"], marks.Select(a => a.GetProperty("shape").GetString())); // oldest first, the deleted box left out

        var box = marks[0];
        var g = box.GetProperty("geometry");
        Assert.Equal((20.0, 10.0, 60.0, 40.0), (g.GetProperty("x").GetDouble(), g.GetProperty("y").GetDouble(), g.GetProperty("width").GetDouble(), g.GetProperty("height").GetDouble()));
        Assert.Equal("grounded", box.GetProperty("label").GetProperty("name").GetString());
        Assert.Equal("#2ca02c", box.GetProperty("label").GetProperty("color").GetString());
        Assert.Equal("the **red** square", box.GetProperty("body").GetString());
        Assert.Equal(PortalFactory.ResearcherEmail, box.GetProperty("author").GetString());
        Assert.Equal(PortalFactory.AdminEmail, box.GetProperty("updated_by").GetString());
        Assert.Equal(3, box.GetProperty("version").GetInt32());
        Assert.Equal("2026-11-20T10:01:00Z", box.GetProperty("created_utc").GetString());
        Assert.Equal("2026-11-20T11:00:00Z", box.GetProperty("updated_utc").GetString());
        var view = box.GetProperty("view");
        Assert.Equal((1, 0, 2, "tiles"), (view.GetProperty("step").GetInt32(), view.GetProperty("layer").GetInt32(), view.GetProperty("head").GetInt32(), view.GetProperty("image_view").GetString()));
        var comment = Assert.Single(box.GetProperty("comments").EnumerateArray().ToList()); // the deleted one left out
        Assert.Equal(("agreed", PortalFactory.AdminEmail), (comment.GetProperty("body").GetString(), comment.GetProperty("author").GetString()));

        var point = marks[1].GetProperty("geometry");
        Assert.Equal((100.0, 65.0), (point.GetProperty("x").GetDouble(), point.GetProperty("y").GetDouble()));
        Assert.Equal(JsonValueKind.Null, point.GetProperty("width").ValueKind);
        Assert.Equal(JsonValueKind.Null, marks[2].GetProperty("geometry").ValueKind); // a note has no place
        Assert.Equal(JsonValueKind.Null, marks[3].GetProperty("label").ValueKind);
    }

    [Fact]
    public async Task CocoOfARunHasItsPhotoTheLabelsOfItsBoxesAndTheBoxes()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        var coco = await JsonAsync(viewer, $"/api/runs/{host.RunA}/annotations.coco.json");

        var image = Assert.Single(coco.GetProperty("images").EnumerateArray().ToList());
        Assert.Equal(("wide.png", 200, 130), (image.GetProperty("file_name").GetString(), image.GetProperty("width").GetInt32(), image.GetProperty("height").GetInt32()));
        int imageId = image.GetProperty("id").GetInt32();
        Assert.EndsWith($"/api/images/{Factory.WithDb(db => db.Runs.Single(r => r.Id == host.RunA).ImageId)}", image.GetProperty("coco_url").GetString());

        // The point's label (attention sink) is not a category: only boxes are exported.
        var categories = coco.GetProperty("categories").EnumerateArray().ToDictionary(c => c.GetProperty("id").GetInt32(), c => c.GetProperty("name").GetString());
        Assert.Equal(["grounded", "unlabeled"], categories.Values.Order());
        Assert.Equal(categories.Count, categories.Keys.Distinct().Count());

        var boxes = coco.GetProperty("annotations").EnumerateArray().ToList();
        Assert.Equal(2, boxes.Count);
        Assert.Equal(boxes.Count, boxes.Select(b => b.GetProperty("id").GetInt32()).Distinct().Count());
        foreach (var (box, bbox, label) in new[] { (boxes[0], new[] { 20.0, 10, 60, 40 }, "grounded"), (boxes[1], new[] { 30.5, 30, 10, 20.25 }, "unlabeled") })
        {
            Assert.Equal(bbox, box.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()));
            Assert.Equal(bbox[2] * bbox[3], box.GetProperty("area").GetDouble());
            Assert.Equal(0, box.GetProperty("iscrowd").GetInt32());
            Assert.Equal(imageId, box.GetProperty("image_id").GetInt32());
            Assert.Equal(label, categories[box.GetProperty("category_id").GetInt32()]);
        }
    }

    [Fact]
    public async Task CocoOverASearchHasOneImagePerDistinctPhoto()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        // A and B: one photo, three boxes.
        var coco = await JsonAsync(viewer, "/api/annotations.coco.json?model=" + Uri.EscapeDataString("llava-onevision (hand-made artifact)"));
        Assert.Equal(["wide.png"], coco.GetProperty("images").EnumerateArray().Select(i => i.GetProperty("file_name").GetString()));
        Assert.Equal(3, coco.GetProperty("annotations").GetArrayLength());
        var whole = Assert.Single(coco.GetProperty("annotations").EnumerateArray().ToList(), a => a.GetProperty("bbox")[2].GetDouble() == 200); // B's
        Assert.Equal([0.0, 0, 200, 130], whole.GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()));

        // Every run: both photos, each box on its own photo.
        var all = await JsonAsync(viewer, "/api/annotations.coco.json");
        var images = all.GetProperty("images").EnumerateArray().ToDictionary(i => i.GetProperty("id").GetInt32(), i => i.GetProperty("file_name").GetString());
        Assert.Equal(["small.webp", "wide.png"], images.Values.Order());
        var boxes = all.GetProperty("annotations").EnumerateArray().ToList();
        Assert.Equal(4, boxes.Count);
        var onC = Assert.Single(boxes, b => b.GetProperty("bbox")[2].GetDouble() == 3);
        Assert.Equal("small.webp", images[onC.GetProperty("image_id").GetInt32()]);
        Assert.Equal(["attention sink", "grounded", "unlabeled"], all.GetProperty("categories").EnumerateArray().Select(c => c.GetProperty("name").GetString()));

        // A label filter: runs with a live "attention sink" annotation are A (its point) and C.
        var sink = await JsonAsync(viewer, "/api/annotations.coco.json?label=attention%20sink");
        Assert.Equal(2, sink.GetProperty("images").GetArrayLength());
        Assert.Equal(3, sink.GetProperty("annotations").GetArrayLength()); // A's two boxes and C's

        using var bad = await viewer.GetAsync("/api/annotations.coco.json?from=yesterday");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("from 'yesterday' is not a date", await PortalHttp.ErrorOf(bad));
    }

    [Fact]
    public async Task HeadsCsvHasAHeaderAndARowPerStepLayerAndHeadThenTheMeans()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        using var response = await viewer.GetAsync($"/api/runs/{host.RunA}/heads.csv");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("step,layer,head,image_share,text_share,generated_share,entropy,max_image_weight,max_image_row,max_image_col", lines[0]);
        const int S = AnyresArtifact.Steps, L = AnyresArtifact.Layers, H = AnyresArtifact.Heads;
        Assert.Equal(S * L * H + L * H, lines.Length - 1);
        Assert.Equal(S * L * H, lines.Count(l => char.IsDigit(l[0])));
        Assert.Equal(L * H, lines.Count(l => l.StartsWith("mean,", StringComparison.Ordinal)));

        // Step 2, layer 1, head 0: every value of the hand-made artifact grows with the key, so the largest on the
        // default (tiles) view is its last cell; the shares are sums over the keys of each kind.
        var line = lines.Single(l => l.StartsWith("2,1,0,", StringComparison.Ordinal)).Split(',');
        int imageStart = AnyresArtifact.TokenStart, imageEnd = AnyresArtifact.TokenStart + AnyresArtifact.ImageTokens;
        double Sum(Func<int, bool> keys) => Enumerable.Range(0, AnyresArtifact.Keys).Where(keys).Sum(k => (double)AnyresArtifact.Value(2, 1, 0, k));
        double image = Sum(k => k >= imageStart && k < imageEnd), generated = Sum(k => k >= AnyresArtifact.PromptLength), text = Sum(k => k < imageStart || k >= imageEnd && k < AnyresArtifact.PromptLength);
        double Field(int i) => double.Parse(line[i], CultureInfo.InvariantCulture);
        Assert.Equal(image, Field(3), image * 1e-6);
        Assert.Equal(text, Field(4), text * 1e-6);
        Assert.Equal(generated, Field(5), generated * 1e-6);
        int lastTileKey = AnyresArtifact.Key(AnyresArtifact.TilesOffset + (AnyresArtifact.TileRows - 1) * AnyresArtifact.RowStride + AnyresArtifact.TileCols - 1);
        Assert.Equal(AnyresArtifact.Value(2, 1, 0, lastTileKey), float.Parse(line[7], CultureInfo.InvariantCulture));
        Assert.Equal((AnyresArtifact.TileRows - 1, AnyresArtifact.TileCols - 1), (int.Parse(line[8], CultureInfo.InvariantCulture), int.Parse(line[9], CultureInfo.InvariantCulture)));

        // ?view= picks the grid of the max cell; an unknown one is refused by name.
        var baseView = (await viewer.GetStringAsync($"/api/runs/{host.RunA}/heads.csv?view=base")).Split('\n').Single(l => l.StartsWith("2,1,0,", StringComparison.Ordinal)).Split(',');
        Assert.Equal(("3", "3"), (baseView[8], baseView[9]));
        using var unknown = await viewer.GetAsync($"/api/runs/{host.RunA}/heads.csv?view=nope");
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("unknown view 'nope'", await PortalHttp.ErrorOf(unknown));
    }

    [Fact]
    public async Task UnknownRunsAreNotFoundAndARunWithoutArtifactHasNoStatistics()
    {
        using var viewer = await Factory.SignInAsync(PortalFactory.ViewerEmail);
        foreach (var export in new[] { "annotations.json", "annotations.coco.json", "heads.csv" })
        {
            using var response = await viewer.GetAsync($"/api/runs/{Guid.NewGuid()}/{export}");
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{export}: {(int)response.StatusCode}");
        }
        using var failed = await viewer.GetAsync($"/api/runs/{host.RunC}/heads.csv");
        Assert.Equal(HttpStatusCode.NotFound, failed.StatusCode);
        Assert.Contains("has no attention artifact", await PortalHttp.ErrorOf(failed));
        // Its annotations are there all the same.
        var coco = await JsonAsync(viewer, $"/api/runs/{host.RunC}/annotations.coco.json");
        Assert.Equal([1.0, 2, 3, 4], Assert.Single(coco.GetProperty("annotations").EnumerateArray().ToList()).GetProperty("bbox").EnumerateArray().Select(v => v.GetDouble()));
    }

    [Fact]
    public async Task SignedOutGetsNoExports()
    {
        using var client = Factory.Anonymous();
        foreach (var url in new[] { $"/api/runs/{host.RunA}/annotations.json", $"/api/runs/{host.RunA}/annotations.coco.json", $"/api/runs/{host.RunA}/heads.csv", "/api/annotations.coco.json" })
        {
            using var response = await client.GetAsync(url);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{url}: {(int)response.StatusCode}");
            Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        }
    }
}
