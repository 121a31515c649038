using System.Text.Json.Nodes;
using AttnPortal.Inference.Artifacts;
using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Images;

namespace AttnPortal.Tests.Rendering;

/// <summary>
/// A hand-made artifact shaped like an anyres run over wide.png (200 × 130): after two text tokens come the image
/// tokens, a 4 × 4 base view of the whole image (tokens 0–15), then a 6 × 9 grid of stitched tiles with an
/// image_newline token after every row (row stride 10, tokens 16–75), then two more text tokens. The tiles view lies
/// on [20, 200) × [10, 130) (cells of 20 × 20 pixels) and is cut into 2 × 3 tiles of 3 × 3 ("tile r,c"). Every
/// attention value is distinct and tells where it came from (<see cref="Value"/>).
/// </summary>
public static class AnyresArtifact
{
    public const int Width = 200, Height = 130;
    public const int Steps = 3, Layers = 2, Heads = 3;
    public const int TokenStart = 2, BaseSide = 4, TileRows = 6, TileCols = 9, RowStride = TileCols + 1, TilesOffset = BaseSide * BaseSide;
    public const int ImageTokens = TilesOffset + TileRows * RowStride; // 76
    public const int PromptLength = TokenStart + ImageTokens + 2;     // 80
    public const int Keys = PromptLength + Steps - 1;                 // 82
    public static readonly ImageRect TilesFrame = new(20, 10, 180, 120);

    /// <summary>attention[s, l, h, k]: exact in float, different for every key and row.</summary>
    public static float Value(int step, int layer, int head, int key) => ((step * Layers + layer) * Heads + head) * 1000 + key;

    /// <summary>The key of image token <paramref name="imageToken"/>.</summary>
    public static int Key(int imageToken) => TokenStart + imageToken;

    /// <summary>The keys of the newline tokens that end each row of the tiles.</summary>
    public static IEnumerable<int> NewlineKeys => Enumerable.Range(0, TileRows).Select(r => Key(TilesOffset + r * RowStride + TileCols));

    public static JsonObject View(string name, int offset, int rows, int cols, int stride, ImageRect frame) => new()
    {
        ["name"] = name, ["token_offset"] = offset, ["rows"] = rows, ["cols"] = cols, ["row_stride"] = stride,
        ["frame"] = new JsonObject { ["x"] = frame.X, ["y"] = frame.Y, ["width"] = frame.Width, ["height"] = frame.Height },
    };

    /// <summary>image.views as the engine describes an anyres image: base, tiles, then each tile.</summary>
    public static JsonArray Views()
    {
        var views = new JsonArray(
            View("base", 0, BaseSide, BaseSide, BaseSide, new ImageRect(0, 0, Width, Height)),
            View("tiles", TilesOffset, TileRows, TileCols, RowStride, TilesFrame));
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 3; c++)
                views.Add(View($"tile {r},{c}", TilesOffset + r * 3 * RowStride + c * 3, 3, 3, RowStride,
                    new ImageRect(TilesFrame.X + c * 60, TilesFrame.Y + r * 60, 60, 60)));
        return views;
    }

    /// <summary>Writes the artifact; <paramref name="editImage"/> may change the metadata's <c>image</c> object first.</summary>
    public static string Write(string path, Action<JsonObject>? editImage = null)
    {
        var attention = new float[Steps * Layers * Heads * Keys];
        for (int s = 0, i = 0; s < Steps; s++)
            for (int l = 0; l < Layers; l++)
                for (int h = 0; h < Heads; h++)
                    for (int k = 0; k < Keys; k++) attention[i++] = Value(s, l, h, k);
        var modality = new byte[Keys];
        for (int k = 0; k < Keys; k++) modality[k] = (byte)(k >= PromptLength ? 2 : k >= TokenStart && k < TokenStart + ImageTokens ? 1 : 0);
        var inputIds = new long[PromptLength];
        for (int k = 0; k < PromptLength; k++) inputIds[k] = modality[k] == 1 ? 9 : 100 + k;

        var image = new JsonObject
        {
            ["source"] = "wide.png", ["width"] = Width, ["height"] = Height, ["patch_size"] = 14, ["tile_size"] = 56, ["tiles"] = 7,
            ["token_start"] = TokenStart, ["token_count"] = ImageTokens, ["views"] = Views(),
        };
        editImage?.Invoke(image);
        var meta = new JsonObject
        {
            ["format"] = AttentionArtifact.Format,
            ["model"] = new JsonObject { ["architecture"] = "LlavaOnevisionForConditionalGeneration", ["layers"] = Layers, ["heads"] = Heads },
            ["tokens"] = new JsonObject
            {
                ["input"] = new JsonArray(Enumerable.Range(0, PromptLength).Select(k => (JsonNode?)(modality[k] == 1 ? "<image>" : $"t{k}")).ToArray()),
                ["generated"] = new JsonArray("▁A", "▁red", "</s>"),
                ["generated_text"] = "A red",
            },
            ["image"] = image,
        };
        new SafeTensorsWriter()
            .Add("input_ids", SafeTensorDType.I64, [PromptLength], inputIds)
            .Add("generated_ids", SafeTensorDType.I64, [Steps], new long[] { 5, 6, 2 })
            .Add("attention", SafeTensorDType.F32, [Steps, Layers, Heads, Keys], attention)
            .Add("modality", SafeTensorDType.U8, [Keys], modality)
            .Metadata(AttentionArtifact.MetadataKey, meta.ToJsonString())
            .WriteAtomically(path);
        return path;
    }
}
