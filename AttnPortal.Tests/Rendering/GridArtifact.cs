using System.Text.Json.Nodes;
using AttnPortal.Inference.Artifacts;
using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Images;
using AttnPortal.Web.Rendering;

namespace AttnPortal.Tests.Rendering;

/// <summary>
/// A hand-made artifact for comparisons: one text token, a rows × cols grid of image tokens (one view, "image", over the
/// whole 200 × 130 wide.png), one more text token, then the generated tokens. Every row is a probability distribution:
/// half the mass spread evenly over the visible keys, the other half on the key <c>hot(step, layer, head)</c> names.
/// </summary>
public static class GridArtifact
{
    public const int Width = 200, Height = 130, Layers = 2, Heads = 2, ImageStart = 1;

    /// <summary>The key of image cell (r, c) of a grid <paramref name="cols"/> wide.</summary>
    public static int Key(int r, int c, int cols) => ImageStart + r * cols + c;

    /// <summary>The rows, as <see cref="AttentionRun"/> would hold them: [steps, layers, heads, keys].</summary>
    public static float[] Attention(int rows, int cols, int steps, Func<int, int, int, int> hot)
    {
        int prompt = rows * cols + 2, keys = prompt + steps - 1;
        var attention = new float[steps * Layers * Heads * keys];
        for (int s = 0, i = 0; s < steps; s++)
            for (int l = 0; l < Layers; l++)
                for (int h = 0; h < Heads; h++, i += keys)
                {
                    int visible = prompt + s; // step s sees the prompt and s generated tokens
                    for (int k = 0; k < visible; k++) attention[i + k] = 0.5f / visible;
                    attention[i + hot(s, l, h)] += 0.5f;
                }
        return attention;
    }

    /// <summary>Writes the artifact; the generated tokens' strings are <paramref name="tokens"/> (one per step).</summary>
    public static string Write(string path, int rows, int cols, string[] tokens, Func<int, int, int, int> hot)
    {
        int steps = tokens.Length, prompt = rows * cols + 2, keys = prompt + steps - 1;
        var modality = new byte[keys];
        for (int k = 0; k < keys; k++) modality[k] = (byte)(k >= prompt ? 2 : k >= ImageStart && k < ImageStart + rows * cols ? 1 : 0);
        var inputIds = Enumerable.Range(0, prompt).Select(k => modality[k] == 1 ? 9L : 100 + k).ToArray();
        var view = new JsonObject
        {
            ["name"] = "image", ["token_offset"] = 0, ["rows"] = rows, ["cols"] = cols, ["row_stride"] = cols,
            ["frame"] = new JsonObject { ["x"] = 0, ["y"] = 0, ["width"] = Width, ["height"] = Height },
        };
        var meta = new JsonObject
        {
            ["format"] = AttentionArtifact.Format,
            ["tokens"] = new JsonObject
            {
                ["input"] = new JsonArray(Enumerable.Range(0, prompt).Select(k => (JsonNode?)(modality[k] == 1 ? "<image>" : $"t{k}")).ToArray()),
                ["generated"] = new JsonArray(tokens.Select(t => (JsonNode?)t).ToArray()),
                ["generated_text"] = string.Concat(tokens).Replace('▁', ' ').Trim(),
            },
            ["image"] = new JsonObject
            {
                ["source"] = "wide.png", ["width"] = Width, ["height"] = Height, ["token_start"] = ImageStart, ["token_count"] = rows * cols,
                ["views"] = new JsonArray(view),
            },
        };
        new SafeTensorsWriter()
            .Add("input_ids", SafeTensorDType.I64, [prompt], inputIds)
            .Add("generated_ids", SafeTensorDType.I64, [steps], Enumerable.Range(0, steps).Select(i => 500L + i).ToArray())
            .Add("attention", SafeTensorDType.F32, [steps, Layers, Heads, keys], Attention(rows, cols, steps, hot))
            .Add("modality", SafeTensorDType.U8, [keys], modality)
            .Metadata(AttentionArtifact.MetadataKey, meta.ToJsonString())
            .WriteAtomically(path);
        return path;
    }
}
