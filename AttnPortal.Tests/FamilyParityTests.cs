using System.Text.Json.Nodes;
using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Generation;
using AttnPortal.Inference.Images;
using AttnPortal.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Tests;

/// <summary>
/// LLaVA-OneVision (Qwen2 + SigLIP, anyres_max) and LLaVA-NeXT (Mistral with a sliding window + CLIP) against HF
/// transformers, for the three schedules and the seed's decoding rows: ids, logits and every captured attention row.
/// The references (tools/fixtures/make_family_fixtures.py) recompute each step without a cache, so every row is
/// HF's eager attention over all keys, with the seed's per-layer masks given to HF's decoder layers.
/// </summary>
public sealed class FamilyParityTests
{
    private const double Tolerance = 1e-4;

    public static string Root => Path.Combine(AppContext.BaseDirectory, "Fixtures", "hf-families");
    public static string RunFile(string name) => Path.Combine(Root, "runs", name + ".safetensors");
    public static JsonObject RunInfo(string name) => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Root, "runs", name + ".json")))!;

    public static TheoryData<string> Runs()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(Root, "runs"), "*.json").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileNameWithoutExtension(f));
        return data;
    }

    /// <summary>The checkpoint directory (or LoRA adapter directory) a fixture run was made with.</summary>
    public static string CheckpointOf(string run) =>
        run.StartsWith("onevision-lora-", StringComparison.Ordinal) ? Path.Combine(Root, "tiny-onevision-lora")
        : run.StartsWith("onevision-", StringComparison.Ordinal) ? Path.Combine(Root, "tiny-onevision")
        : Path.Combine(Root, "tiny-next-mistral");

    /// <summary>The standard run of the same checkpoint and image: it holds the image inputs (pixel values, features).</summary>
    private static string StandardRunOf(string run)
    {
        foreach (var suffix in new[] { "-alternating-cross-seed", "-alternating-cross", "-alternating-seed", "-alternating", "-standard" })
            if (run.EndsWith(suffix, StringComparison.Ordinal)) return run[..^suffix.Length] + "-standard";
        throw new ArgumentException($"fixture run '{run}' does not end in a schedule");
    }

    private static (LlavaForConditionalGeneration Model, RotaryTables Rope) Load(string dir)
    {
        LoraAdapter? adapter = null;
        if (LoraAdapter.IsAdapterDirectory(dir))
        {
            adapter = LoraAdapter.Load(dir);
            dir = adapter.ResolveBase();
        }
        var config = LlavaConfig.Load(dir);
        var model = new LlavaForConditionalGeneration(config, new ParameterFactory(torch.CPU, ScalarType.Float32));
        CheckpointLoader.Load(model, dir, adapter);
        return (model, new RotaryTables(config.Text, torch.CPU, ScalarType.Float32));
    }

    [Theory]
    [MemberData(nameof(Runs))]
    public void GreedyRunMatchesHf(string run)
    {
        var info = RunInfo(run);
        var (model, rope) = Load(CheckpointOf(run));
        using var _ = model;
        using var __ = rope;
        string reference = RunFile(run), images = RunFile(StandardRunOf(run));
        var inputIds = Fixture.Tensor<long>(reference, "input_ids");
        var hfIds = Fixture.Tensor<long>(reference, "generated_ids");
        var size = Fixture.Tensor<long>(reference, "image_sizes");
        var config = model.Config;
        int tile = config.Vision.ImageSize;
        var pixelValues = Fixture.Tensor<float>(images, "pixel_values");
        using var pixels = torch.tensor(pixelValues, [pixelValues.Length / (3 * tile * tile), 3, tile, tile]);
        var packing = ImagePreparer.Packing(ImagePreparer.Layout(config, new PixelSize((int)size[0], (int)size[1])));
        var schedule = AttentionSchedules.Parse(info["schedule"]!.GetValue<string>());
        bool seed = info["seed_compatible"]!.GetValue<bool>();
        var input = new GenerationInput(inputIds, inputIds.Select(id => id == config.ImageTokenId).ToArray(), pixels, packing, schedule, seed);

        var result = new GreedyGenerator(model, rope, torch.CPU).Generate(input, hfIds.Length, new HashSet<long>(), saveLogits: true);

        Assert.Equal(hfIds, result.GeneratedIds);
        double attention = Fixture.MaxAbsDiff(result.Attention, Fixture.Tensor<float>(reference, "attention"));
        double logits = Fixture.MaxAbsDiff(result.StepLogits!, Fixture.Tensor<float>(reference, "step_logits"));
        Assert.True(attention <= Tolerance, $"attention max abs diff {attention:E2}");
        Assert.True(logits <= Tolerance, $"logits max abs diff {logits:E2}");
        Assert.Equal(0.0, ForbiddenMass(result, input, config.Text.SlidingWindow));
    }

    /// <summary>
    /// The largest captured attention on a key the schedule forbids, from first principles (not the engine's masks):
    /// on odd layers except the last, alternating allows same-modality keys, alternating-cross other-modality keys and
    /// the query itself (position 0 instead of the query on seed decoding rows); every layer is causal and windowed.
    /// </summary>
    private static double ForbiddenMass(GenerationResult r, GenerationInput input, int? window)
    {
        int prompt = input.InputIds.Length;
        bool Image(int position) => position < prompt && input.ImagePositions[position];
        double worst = 0;
        for (int step = 0; step < r.Steps; step++)
        {
            int q = prompt - 1 + step;
            for (int layer = 0; layer < r.Layers; layer++)
            {
                bool modal = input.Schedule != AttentionSchedule.Standard && layer % 2 == 1 && layer != r.Layers - 1;
                int rowOf = input.SeedCompatibleDecoding && step > 0 ? 0 : q;
                for (int head = 0; head < r.Heads; head++)
                    for (int k = 0; k < r.Keys; k++)
                    {
                        bool allowed = k <= q && (window is not int w || k > q - w);
                        if (allowed && modal)
                            allowed = input.Schedule == AttentionSchedule.Alternating
                                ? Image(k) == Image(rowOf)
                                : Image(k) != Image(rowOf) || k == rowOf;
                        if (!allowed)
                            worst = Math.Max(worst, Math.Abs(r.Attention[(((long)step * r.Layers + layer) * r.Heads + head) * r.Keys + k]));
                    }
            }
        }
        return worst;
    }

    [Theory]
    [InlineData("onevision-wide-standard")]
    [InlineData("onevision-tall-standard")]
    [InlineData("onevision-small-standard")]
    [InlineData("next-mistral-wide-standard")]
    [InlineData("next-mistral-tall-standard")]
    public void PackingGivesHfImageTokenCountAndViewsCoverTheImage(string run)
    {
        var info = RunInfo(run);
        var config = LlavaConfig.Load(CheckpointOf(run));
        var size = Fixture.Tensor<long>(RunFile(run), "image_sizes");
        int height = (int)size[0], width = (int)size[1];
        var layout = ImagePreparer.Layout(config, new PixelSize(height, width));
        var packing = ImagePreparer.Packing(layout);
        int count = layout.TokenCount;
        Assert.Equal(info["image_tokens"]!.GetValue<int>(), count);
        Assert.Equal(info["tiles"]!.GetValue<int>(), packing.Tiles);

        var views = ImagePreparer.Views(layout);
        Assert.Equal(["base", "tiles"], views.Take(2).Select(v => v.Name));
        var used = new HashSet<int>();
        foreach (var v in views.Take(2))
            for (int r = 0; r < v.Rows; r++)
                for (int c = 0; c < v.Cols; c++)
                {
                    int t = v.TokenIndex(r, c);
                    Assert.InRange(t, 0, count - 1);
                    Assert.True(used.Add(t), $"token {t} is in two cells");
                }
        // Base and stitched tiles use every token but one newline per grid row.
        var (rows, _) = packing.Downscaled ?? (packing.Rows, packing.Cols);
        Assert.Equal(count - rows, used.Count);
        // The stitched grid covers the image (unpadding keeps at least the image; at most a patch of padding remains).
        var tiles = views[1].Frame;
        double patch = (double)width / 4; // generous: a patch is far smaller than a quarter of the image
        Assert.True(tiles.X <= 0.5 && tiles.Y <= 0.5 && tiles.Right >= width - 0.5 && tiles.Bottom >= height - 0.5, $"tiles frame {tiles}");
        Assert.True(tiles.X > -patch && tiles.Y > -patch && tiles.Right < width + patch && tiles.Bottom < height + patch, $"tiles frame {tiles}");
        // Tile views partition the stitched grid when it was not downscaled.
        if (packing.Downscaled is null)
            Assert.Equal(views[1].Rows * views[1].Cols, views.Skip(2).Sum(v => v.Rows * v.Cols));
        else
            Assert.Equal(2, views.Count);
    }

    [Fact]
    public void OddLayersOfAlternatingRunsPutExactlyZeroOnForbiddenKeysAndTheSeedRowsDiffer()
    {
        // The seed's decoding rows change alternating-cross (a generated token no longer sees itself) but not
        // alternating (every text row is the same): checked on HF's own references, so the fixture means what we think.
        var cross = Fixture.Tensor<float>(RunFile("onevision-wide-alternating-cross"), "attention");
        var crossSeed = Fixture.Tensor<float>(RunFile("onevision-wide-alternating-cross-seed"), "attention");
        var alt = Fixture.Tensor<float>(RunFile("onevision-wide-alternating"), "attention");
        var altSeed = Fixture.Tensor<float>(RunFile("onevision-wide-alternating-seed"), "attention");
        Assert.True(Fixture.MaxAbsDiff(cross, crossSeed) > 1e-3);
        Assert.Equal(0.0, Fixture.MaxAbsDiff(alt, altSeed));
    }
}
