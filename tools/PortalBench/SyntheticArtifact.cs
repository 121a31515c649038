using System.Text.Json.Nodes;
using AttnPortal.Inference.Artifacts;
using AttnPortal.Inference.Checkpoints;

namespace AttnPortal.PortalBench;

/// <summary>
/// An attention artifact with LLaVA-1.5-7B's shapes: 32 steps × 32 layers × 32 heads over a 595-token prompt (5 text
/// tokens, 576 image tokens in a 24 × 24 grid, 14 text tokens), so 626 keys: ~82 MB of float32. Each row is a random
/// distribution over the keys its step can see (the later ones are 0), as the engine writes them.
/// </summary>
public static class SyntheticArtifact
{
    public const int Steps = 32, Layers = 32, Heads = 32, ImageStart = 5, Side = 24, ImageTokens = Side * Side, Prompt = ImageStart + ImageTokens + 14;
    public const int Keys = Prompt + Steps - 1;

    /// <summary>Writes the artifact for a <paramref name="width"/> × <paramref name="height"/> photo padded to a square.</summary>
    public static void Write(string path, int seed, int width, int height)
    {
        var random = new Random(seed);
        var attention = new float[(long)Steps * Layers * Heads * Keys];
        for (int s = 0, row = 0; s < Steps; s++)
            for (int lh = 0; lh < Layers * Heads; lh++, row++)
            {
                var values = attention.AsSpan(row * Keys, Keys);
                int visible = Prompt + s;
                float sum = 0;
                for (int k = 0; k < visible; k++) sum += values[k] = (float)Math.Pow(random.NextDouble(), 4); // peaked, like real heads
                for (int k = 0; k < visible; k++) values[k] /= sum;
            }
        var modality = new byte[Keys];
        for (int k = 0; k < Keys; k++) modality[k] = (byte)(k >= Prompt ? 2 : k >= ImageStart && k < ImageStart + ImageTokens ? 1 : 0);
        var inputIds = Enumerable.Range(0, Prompt).Select(k => modality[k] == 1 ? 32000L : 100L + k).ToArray();
        var generatedIds = Enumerable.Range(0, Steps).Select(s => 200L + s).ToArray();

        int frame = Math.Max(width, height);
        var image = new JsonObject
        {
            ["source"] = "bench.png", ["width"] = width, ["height"] = height, ["patch_size"] = 14, ["tile_size"] = 336, ["tiles"] = 1,
            ["token_start"] = ImageStart, ["token_count"] = ImageTokens, ["aspect"] = "pad", ["frame_size"] = 336, ["grid"] = new JsonArray(Side, Side),
            ["frame_in_original"] = new JsonObject { ["x"] = (width - frame) / 2.0, ["y"] = (height - frame) / 2.0, ["width"] = frame, ["height"] = frame },
        };
        var meta = new JsonObject
        {
            ["format"] = AttentionArtifact.Format,
            ["model"] = new JsonObject { ["architecture"] = "LlavaForConditionalGeneration", ["layers"] = Layers, ["heads"] = Heads },
            ["tokens"] = new JsonObject
            {
                ["input"] = new JsonArray(Enumerable.Range(0, Prompt).Select(k => (JsonNode?)(modality[k] == 1 ? "<image>" : $"t{k}")).ToArray()),
                ["generated"] = new JsonArray(Enumerable.Range(0, Steps).Select(s => (JsonNode?)$"▁w{s}").ToArray()),
                ["generated_text"] = string.Join(" ", Enumerable.Range(0, Steps).Select(s => $"w{s}")),
            },
            ["image"] = image,
        };
        new SafeTensorsWriter()
            .Add("input_ids", SafeTensorDType.I64, [Prompt], inputIds)
            .Add("generated_ids", SafeTensorDType.I64, [Steps], generatedIds)
            .Add("attention", SafeTensorDType.F32, [Steps, Layers, Heads, Keys], attention)
            .Add("modality", SafeTensorDType.U8, [Keys], modality)
            .Metadata(AttentionArtifact.MetadataKey, meta.ToJsonString())
            .WriteAtomically(path);
    }
}
