using System.Text.Json.Nodes;
using AttnPortal.Inference;
using AttnPortal.Inference.Artifacts;
using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Images;
using AttnPortal.Web.Rendering;

namespace AttnPortal.Tests.Rendering;

/// <summary>Two real artifacts of the tiny model, written once for the rendering tests: wide.png padded and tall-alpha.png cropped.</summary>
public sealed class RenderingArtifacts : IDisposable
{
    private readonly Fixture.TempDir _dir = new();

    public string Pad { get; }
    public string Crop { get; }
    public ImageGeometry PadGeometry { get; }
    public ImageGeometry CropGeometry { get; }
    public InferenceResult PadResult { get; }

    public RenderingArtifacts()
    {
        using var engine = LlavaEngine.Load(Fixture.Checkpoint);
        (Pad, PadGeometry, PadResult) = Write(engine, "wide.png", AspectMode.Pad);
        (Crop, CropGeometry, _) = Write(engine, "tall-alpha.png", AspectMode.Crop);
    }

    private (string, ImageGeometry, InferenceResult) Write(LlavaEngine engine, string image, AspectMode mode)
    {
        var request = new InferenceRequest(RgbImage.Load(Fixture.Image(image)), "What is in the picture?", Aspect: mode,
            MaxNewTokens: 6, ImageName: image);
        var result = engine.Run(request);
        string path = _dir[$"{Path.GetFileNameWithoutExtension(image)}-{mode}.safetensors"];
        AttentionArtifact.Write(path, result, AttentionArtifact.Describe(result, engine, request));
        return (path, result.Image.Geometry!, result);
    }

    public void Dispose() => _dir.Dispose();
}

public sealed class AttentionRunTests(RenderingArtifacts artifacts) : IClassFixture<RenderingArtifacts>
{
    private const int HfImageTokenId = 600;

    /// <summary>The HF reference run: attention [8, 3, 4, 598], no modality, no metadata.</summary>
    private static readonly string Reference = Fixture.Run("wide-pad");

    private static float[] RawAttention => Fixture.Tensor<float>(Reference, "attention");

    private static double Raw(float[] att, int keys, int layers, int heads, int s, int l, int h, int k) =>
        att[((s * layers + l) * heads + h) * keys + k];

    [Fact]
    public void ReferenceRunWithoutMetadataFindsTheImageTokens()
    {
        var run = AttentionRun.Open(Reference);
        var ids = Fixture.Tensor<long>(Reference, "input_ids");
        Assert.Equal((8, 3, 4, 598, 591), (run.Steps, run.Layers, run.Heads, run.Keys, run.PromptLength));
        Assert.Equal(Array.IndexOf(ids, (long)HfImageTokenId), run.ImageTokenStart);
        Assert.Equal(576, run.ImageTokenCount);
        Assert.Equal(576, ids.Count(i => i == HfImageTokenId));
        Assert.Equal(new ImageGridView("image", 0, 24, 24, 24, new ImageRect(0, 0, 24, 24)), Assert.Single(run.Views));
        Assert.Equal((24, 24), (run.OriginalWidth, run.OriginalHeight)); // no metadata: the grid stands for the image
        Assert.Null(run.Geometry);
        Assert.Empty(run.InputTokens);
        Assert.Equal(run.ImageTokenStart, AttentionRun.Open(Reference, imageTokenId: HfImageTokenId).ImageTokenStart);
        for (int k = 0; k < run.Keys; k++)
        {
            var expected = k >= 591 ? KeyModality.Generated : ids[k] == HfImageTokenId ? KeyModality.Image : KeyModality.Text;
            Assert.Equal(expected, run.Modality[k]);
        }
        Assert.Equal(8L * 3 * 4 * 598 * 4, run.AttentionBytes);
    }

    [Fact]
    public void ImageGridOfOneHeadIsTheRawSliceRowMajor()
    {
        var run = AttentionRun.Open(Reference);
        var att = RawAttention;
        int start = run.ImageTokenStart;
        var grid = run.ImageGrid(new AttentionSelection(5, 1, 2));
        Assert.Equal(576, grid.Length);
        for (int r = 0; r < 24; r++)
            for (int c = 0; c < 24; c++)
                Assert.Equal(Raw(att, 598, 3, 4, 5, 1, 2, start + r * 24 + c), grid[r * 24 + c]);
        Assert.True(grid.Max() > 0, "the slice must not be empty");
        Assert.Equal(run.Row(5, 1, 2).Slice(start, 576).ToArray(), grid);
    }

    [Theory]
    [InlineData(3, null, null)]
    [InlineData(null, 2, null)]
    [InlineData(null, null, 1)]
    [InlineData(6, 0, null)]
    [InlineData(null, 1, 3)]
    [InlineData(null, null, null)]
    public void ImageGridMeansMatchAHandComputation(int? step, int? layer, int? head)
    {
        var run = AttentionRun.Open(Reference);
        var att = RawAttention;
        int start = run.ImageTokenStart;
        var expected = new double[576];
        int rows = 0;
        for (int s = 0; s < 8; s++)
            for (int l = 0; l < 3; l++)
                for (int h = 0; h < 4; h++)
                {
                    if ((step ?? s) != s || (layer ?? l) != l || (head ?? h) != h) continue;
                    rows++;
                    for (int i = 0; i < 576; i++) expected[i] += Raw(att, 598, 3, 4, s, l, h, start + i);
                }
        Assert.Equal((step is null ? 8 : 1) * (layer is null ? 3 : 1) * (head is null ? 4 : 1), rows);
        var grid = run.ImageGrid(new AttentionSelection(step, layer, head));
        for (int i = 0; i < 576; i++) Assert.Equal(expected[i] / rows, grid[i], 1e-7);
        // The mean differs from any single head (so a wrong axis would be caught).
        Assert.NotEqual(run.ImageGrid(new AttentionSelection(step ?? 0, layer ?? 0, head ?? 0)), grid);
    }

    [Fact]
    public void AllHeadsIsTheStridedSliceAndItsStepMean()
    {
        var run = AttentionRun.Open(Reference);
        var att = RawAttention;
        int start = run.ImageTokenStart;
        var heads = run.AllHeads(4);
        Assert.Equal(3 * 4 * 576, heads.Length);
        for (int l = 0; l < 3; l++)
            for (int h = 0; h < 4; h++)
                for (int i = 0; i < 576; i++)
                    Assert.Equal(Raw(att, 598, 3, 4, 4, l, h, start + i), heads[(l * 4 + h) * 576 + i]);

        var pooled = new float[3 * 4 * 576 + 10];
        run.AllHeads(4, pooled);
        Assert.Equal(heads, pooled.AsSpan(0, heads.Length).ToArray());
        Assert.Throws<ArgumentException>(() => run.AllHeads(4, new float[3 * 4 * 576 - 1]));

        var mean = run.AllHeads(null);
        for (int l = 0; l < 3; l++)
            for (int h = 0; h < 4; h++)
                Assert.Equal(run.ImageGrid(new AttentionSelection(null, l, h)), mean.AsSpan((l * 4 + h) * 576, 576).ToArray(),
                    (a, b) => Math.Abs(a - b) < 1e-7);
    }

    [Fact]
    public void ImageShareSplitsEachLayersMassByModality()
    {
        var run = AttentionRun.Open(Reference);
        var att = RawAttention;
        int start = run.ImageTokenStart;
        var shares = run.ImageShare(2);
        Assert.Equal(3, shares.Length);
        for (int l = 0; l < 3; l++)
        {
            double image = 0, text = 0, generated = 0;
            for (int h = 0; h < 4; h++)
                for (int k = 0; k < 598; k++)
                {
                    double v = Raw(att, 598, 3, 4, 2, l, h, k);
                    if (k >= 591) generated += v;
                    else if (k >= start && k < start + 576) image += v;
                    else text += v;
                }
            Assert.Equal(image / 4, shares[l].Image, 1e-6);
            Assert.Equal(text / 4, shares[l].Text, 1e-6);
            Assert.Equal(generated / 4, shares[l].Generated, 1e-6);
            Assert.Equal(1, shares[l].Image + shares[l].Text + shares[l].Generated, 1e-4); // softmax rows
            Assert.True(shares[l].Generated > 0, "step 2 sees two generated keys");
        }
        Assert.All(run.ImageShare(0), s => Assert.Equal(0, s.Generated)); // step 0 sees no generated key
        var all = run.ImageShare(null);
        for (int l = 0; l < 3; l++)
            Assert.Equal(Enumerable.Range(0, 8).Average(s => run.ImageShare(s)[l].Image), all[l].Image, 1e-6);
    }

    [Fact]
    public void KeyRowCoversEveryKey()
    {
        var run = AttentionRun.Open(Reference);
        var row = run.KeyRow(new AttentionSelection(7, 2, 0));
        Assert.Equal(run.Row(7, 2, 0).ToArray(), row);
        Assert.Equal(598, row.Length);
    }

    [Fact]
    public void SelectionsOutsideTheRunAreRejected()
    {
        var run = AttentionRun.Open(Reference);
        Assert.Throws<ArgumentOutOfRangeException>(() => run.ImageGrid(new AttentionSelection(8, 0, 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => run.ImageGrid(new AttentionSelection(0, 3, 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => run.ImageGrid(new AttentionSelection(0, 0, -1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => run.AllHeads(-1));
    }

    [Fact]
    public void RealArtifactCarriesGeometryTokensAndModality()
    {
        var run = AttentionRun.Open(artifacts.Pad);
        var r = artifacts.PadResult;
        Assert.Equal(artifacts.PadGeometry, run.Geometry);
        Assert.Equal(AspectMode.Pad, run.Geometry!.Mode);
        Assert.Equal((r.Generation.Steps, 3, 4), (run.Steps, run.Layers, run.Heads));
        Assert.Equal((r.ImageTokenStart, 576), (run.ImageTokenStart, run.ImageTokenCount));
        // The engine's one view, as written into the artifact's image.views.
        Assert.Equal(new ImageGridView("image", 0, 24, 24, 24, artifacts.PadGeometry.Frame), Assert.Single(run.Views));
        Assert.Equal(r.Image.Views, run.Views);
        Assert.Equal((r.Image.OriginalWidth, r.Image.OriginalHeight), (run.OriginalWidth, run.OriginalHeight));
        // Tokens as readable text (the tokenizer's TokenText: "▁the" as " the"), image positions as "<image>".
        var tok = AttnPortal.Inference.Text.LlavaTokenizer.Load(Fixture.Checkpoint);
        var inputText = r.InputIds.Select((id, i) => r.Modality[i] == (byte)KeyModality.Image ? "<image>" : tok.TokenText((int)id)).ToArray();
        var generatedText = r.Generation.GeneratedIds.Select(id => tok.TokenText((int)id)).ToArray();
        Assert.Equal(inputText, run.InputTokens);
        Assert.Equal(generatedText, run.GeneratedTokens);
        Assert.Equal(r.GeneratedText, run.GeneratedText);
        Assert.Equal(r.Modality.Select(m => (KeyModality)m), run.Modality);
        Assert.Equal(inputText[^1], run.QueryToken(0));
        Assert.Equal(generatedText[0], run.QueryToken(1));
        Assert.Equal(generatedText[0], run.PredictedToken(0));
        Assert.Equal(r.InputIds.Length - 1 + 2, run.QueryPosition(2));
        Assert.Equal("attnportal.attention/1", run.Metadata!["format"]!.GetValue<string>());
        // The loaded tensor is the engine's capture, row for row.
        int keys = run.Keys;
        for (int s = 0; s < run.Steps; s++)
            for (int l = 0; l < 3; l++)
                for (int h = 0; h < 4; h++)
                    Assert.Equal(r.Generation.Attention.AsSpan(((s * 3 + l) * 4 + h) * keys, keys).ToArray(), run.Row(s, l, h).ToArray());

        var crop = AttentionRun.Open(artifacts.Crop);
        Assert.Equal(artifacts.CropGeometry, crop.Geometry);
        Assert.Equal(AspectMode.Crop, crop.Geometry!.Mode);
    }

    [Fact]
    public void BadArtifactsAreRefusedNamingTheFile()
    {
        using var dir = new Fixture.TempDir();
        string path = dir["bad.safetensors"];

        // Keys that do not match prompt + steps - 1.
        new SafeTensorsWriter()
            .Add("input_ids", SafeTensorDType.I64, [4], new long[] { 1, 5, 5, 2 })
            .Add("generated_ids", SafeTensorDType.I64, [2], new long[] { 3, 4 })
            .Add("attention", SafeTensorDType.F32, [2, 1, 1, 4], new float[8])
            .WriteAtomically(path);
        var e = Assert.Throws<InvalidDataException>(() => AttentionRun.Open(path));
        Assert.Contains("bad.safetensors", e.Message);
        Assert.Contains("keys", e.Message);

        // Image tokens that do not form a square.
        new SafeTensorsWriter()
            .Add("input_ids", SafeTensorDType.I64, [6], new long[] { 1, 7, 7, 7, 7, 7 })
            .Add("generated_ids", SafeTensorDType.I64, [1], new long[] { 3 })
            .Add("attention", SafeTensorDType.F32, [1, 1, 1, 6], new float[6])
            .WriteAtomically(path);
        e = Assert.Throws<InvalidDataException>(() => AttentionRun.Open(path));
        Assert.Contains("square", e.Message);

        // No attention at all.
        new SafeTensorsWriter().Add("input_ids", SafeTensorDType.I64, [1], new long[] { 1 }).WriteAtomically(path);
        e = Assert.Throws<InvalidDataException>(() => AttentionRun.Open(path));
        Assert.Contains("'attention'", e.Message);
    }

    [Fact]
    public void SmallHandMadeRunIsReadExactly()
    {
        // 2 steps, 2 layers, 1 head; prompt [t, i, i, i, i, t]: a 2x2 image grid at tokens 1..4; keys = 6 + 2 - 1 = 7.
        var att = new float[2 * 2 * 1 * 7];
        for (int i = 0; i < att.Length; i++) att[i] = i;
        using var dir = new Fixture.TempDir();
        string path = dir["small.safetensors"];
        var meta = new JsonObject
        {
            ["format"] = AttentionArtifact.Format,
            ["tokens"] = new JsonObject { ["input"] = new JsonArray("a", "<image>", "<image>", "<image>", "<image>", "b"), ["generated"] = new JsonArray("x", "y") },
            ["image"] = new JsonObject
            {
                ["width"] = 40, ["height"] = 20, ["aspect"] = "pad", ["frame_size"] = 28,
                ["frame_in_original"] = new JsonObject { ["x"] = 0, ["y"] = -10, ["width"] = 40, ["height"] = 40 },
                ["grid"] = new JsonArray(2, 2), ["patch_size"] = 14, ["token_start"] = 1, ["token_count"] = 4,
            },
        };
        new SafeTensorsWriter()
            .Add("input_ids", SafeTensorDType.I64, [6], new long[] { 1, 9, 9, 9, 9, 2 })
            .Add("generated_ids", SafeTensorDType.I64, [2], new long[] { 3, 4 })
            .Add("attention", SafeTensorDType.F32, [2, 2, 1, 7], att)
            .Add("modality", SafeTensorDType.U8, [7], new byte[] { 0, 1, 1, 1, 1, 0, 2 })
            .Metadata(AttentionArtifact.MetadataKey, meta.ToJsonString())
            .WriteAtomically(path);

        var run = AttentionRun.Open(path);
        // No image.views (an artifact from before them): one view derived from grid and frame_in_original.
        Assert.Equal(new ImageGridView("image", 0, 2, 2, 2, new ImageRect(0, -10, 40, 40)), Assert.Single(run.Views));
        Assert.Equal((40, 20), (run.OriginalWidth, run.OriginalHeight));
        Assert.Equal(new ImageGeometry(40, 20, AspectMode.Pad, 28, 28, 0, -10, 40, 40), run.Geometry);
        // Row (s, l, 0) holds the values (2s + l) * 7 + key; the image keys are 1..4.
        Assert.Equal(new float[] { 15, 16, 17, 18 }, run.ImageGrid(new AttentionSelection(1, 0, 0)));
        Assert.Equal(new float[] { 18.5f, 19.5f, 20.5f, 21.5f }, run.ImageGrid(new AttentionSelection(1, null, 0)));
        Assert.Equal(new float[] { 11.5f, 12.5f, 13.5f, 14.5f }, run.ImageGrid(new AttentionSelection(null, null, null)));
        Assert.Equal("b", run.QueryToken(0));
        Assert.Equal("x", run.QueryToken(1));
        Assert.Equal("y", run.PredictedToken(1));
    }
}
