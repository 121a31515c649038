using AttnPortal.Data;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

/// <summary>
/// Box annotations as COCO object detection JSON: one image per distinct photo of the runs (its original size, in whose
/// pixels the boxes are), one category per label used (and "unlabeled" for boxes without one), one annotation per
/// live box. Points and notes have no COCO form and are left out. Ids are 1, 2, … in a stable order; each image and
/// annotation also carries the portal's id.
/// </summary>
public static class CocoExport
{
    public const string Unlabeled = "unlabeled";

    public sealed record Document(Info Info, IReadOnlyList<Image> Images, IReadOnlyList<Category> Categories, IReadOnlyList<Box> Annotations);
    public sealed record Info(string Description, string Version, DateTime DateCreated);
    public sealed record Image(int Id, string FileName, int Width, int Height, string CocoUrl, Guid AttnportalImageId);
    public sealed record Category(int Id, string Name, string Supercategory);
    public sealed record Box(int Id, int ImageId, int CategoryId, double[] Bbox, double Area, int Iscrowd, Guid AttnportalAnnotationId, Guid AttnportalRunId);

    /// <param name="runs">The runs to export (a run id, or everything a search matches).</param>
    /// <param name="imageUrl">The URL of a photo by its portal id (for coco_url).</param>
    public static async Task<Document> ForRunsAsync(PortalDbContext db, IQueryable<Run> runs, Func<Guid, string> imageUrl, CancellationToken cancel = default)
    {
        var images = await db.Images.AsNoTracking().Where(i => runs.Any(r => r.ImageId == i.Id))
            .OrderBy(i => i.CreatedUtc).ThenBy(i => i.Id).ToListAsync(cancel);
        var boxes = await db.Annotations.AsNoTracking()
            .Where(a => a.DeletedUtc == null && a.Shape == AnnotationShape.Box && runs.Any(r => r.Id == a.RunId))
            .OrderBy(a => a.CreatedUtc).ThenBy(a => a.Id)
            .Select(a => new { a.Id, RunId = a.RunId!.Value, a.Run!.ImageId, a.X, a.Y, a.W, a.H, a.LabelId, LabelName = a.Label != null ? a.Label.Name : null })
            .ToListAsync(cancel);

        var imageIds = new Dictionary<Guid, int>();
        var usedNames = new HashSet<string>(StringComparer.Ordinal);
        var cocoImages = new List<Image>();
        foreach (var image in images)
        {
            imageIds[image.Id] = cocoImages.Count + 1;
            cocoImages.Add(new Image(cocoImages.Count + 1, UniqueFileName(image, usedNames), image.Width, image.Height, imageUrl(image.Id), image.Id));
        }

        var labels = boxes.Where(b => b.LabelId is not null).Select(b => (Id: b.LabelId!.Value, Name: b.LabelName!)).Distinct()
            .OrderBy(l => l.Name, StringComparer.Ordinal).ThenBy(l => l.Id).ToList();
        var categories = labels.Select((l, i) => new Category(i + 1, l.Name, "label")).ToList();
        var categoryIds = labels.Select((l, i) => (l.Id, Category: i + 1)).ToDictionary(x => x.Id, x => x.Category);
        int? unlabeled = null;
        if (boxes.Any(b => b.LabelId is null))
        {
            unlabeled = categories.Count + 1;
            // A team label that happens to be called "unlabeled" keeps its name; the category of boxes without one yields.
            categories.Add(new Category(unlabeled.Value, labels.Any(l => l.Name == Unlabeled) ? $"({Unlabeled})" : Unlabeled, "label"));
        }

        var annotations = boxes.Select((b, i) => new Box(i + 1, imageIds[b.ImageId], b.LabelId is { } l ? categoryIds[l] : unlabeled!.Value,
            [b.X, b.Y, b.W, b.H], b.W * b.H, 0, b.Id, b.RunId)).ToList();
        return new Document(new Info("AttnPortal box annotations", "1.0", DateTime.UtcNow), cocoImages, categories, annotations);
    }

    /// <summary>The uploaded name, made unique among the images of one export (two different photos may share a name).</summary>
    private static string UniqueFileName(ImageAsset image, HashSet<string> used)
    {
        string name = Path.GetFileName(image.FileName);
        if (name.Length == 0) name = image.Sha256[..12];
        if (!used.Add(name))
        {
            name = $"{Path.GetFileNameWithoutExtension(name)}-{image.Sha256[..12]}{Path.GetExtension(name)}";
            used.Add(name);
        }
        return name;
    }
}
