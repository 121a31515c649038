using System.Text.Json;
using System.Text.Json.Nodes;
using AttnPortal.Inference.Checkpoints;

namespace AttnPortal.Inference.Artifacts;

/// <summary>
/// The portal's attention artifact: one safetensors file per run (layout in README.md, "Attention artifact").
/// Tensors: input_ids I64 [L], generated_ids I64 [N], attention F32 [N, layers, heads, L+N-1] (keys a step cannot see
/// yet are 0), modality U8 [L+N-1] (0 text, 1 image, 2 generated), pixel_values F32 [3, S, S], optional step_logits
/// F32 [N, vocab]; the metadata entry "attnportal" holds a JSON document describing the run.
/// </summary>
public static class AttentionArtifact
{
    public const string Format = "attnportal.attention/1";
    public const string MetadataKey = "attnportal";

    public static JsonObject Describe(InferenceResult r, LlavaEngine engine, InferenceRequest request, string schedule = "standard")
    {
        var g = r.Generation;
        var geo = r.Image.Geometry;
        return new JsonObject
        {
            ["format"] = Format,
            ["created_utc"] = DateTime.UtcNow.ToString("O"),
            ["model"] = new JsonObject
            {
                ["path"] = engine.CheckpointDir,
                ["name"] = Path.GetFileName(engine.CheckpointDir.TrimEnd('/')),
                ["architecture"] = "LlavaForConditionalGeneration",
                ["layers"] = g.Layers, ["heads"] = g.Heads, ["kv_heads"] = engine.Config.Text.NumKeyValueHeads,
                ["vocab"] = g.Vocab, ["device"] = engine.Device.ToString(), ["dtype"] = engine.DType.ToString(),
            },
            ["schedule"] = schedule,
            ["prompt"] = new JsonObject
            {
                ["mode"] = request.RawPrompt is null ? "template" : "raw",
                ["question"] = request.Question,
                ["text"] = r.PromptText,
            },
            ["tokens"] = new JsonObject
            {
                ["input"] = new JsonArray(r.InputTokens.Select(t => (JsonNode?)t).ToArray()),
                ["generated"] = new JsonArray(r.GeneratedTokens.Select(t => (JsonNode?)t).ToArray()),
                ["generated_text"] = r.GeneratedText,
            },
            ["image"] = new JsonObject
            {
                ["source"] = request.ImageName,
                ["width"] = geo.OriginalWidth, ["height"] = geo.OriginalHeight,
                ["aspect"] = request.Aspect.ToString().ToLowerInvariant(),
                ["frame_size"] = geo.FrameSize,
                ["frame_in_original"] = new JsonObject { ["x"] = geo.FrameX, ["y"] = geo.FrameY, ["width"] = geo.FrameWidth, ["height"] = geo.FrameHeight },
                ["grid"] = new JsonArray(r.GridSide, r.GridSide),
                ["patch_size"] = engine.Config.Vision.PatchSize,
                ["token_start"] = r.ImageTokenStart, ["token_count"] = r.ImageTokenCount,
            },
            ["generation"] = new JsonObject
            {
                ["strategy"] = "greedy", ["max_new_tokens"] = request.MaxNewTokens, ["steps"] = g.Steps,
                ["stopped_at_eos"] = g.StoppedAtEos, ["prompt_tokens"] = r.InputIds.Length,
            },
            ["timings_ms"] = new JsonObject
            {
                ["preprocess"] = r.PreprocessTime.TotalMilliseconds, ["vision"] = g.VisionTime.TotalMilliseconds,
                ["prefill"] = g.PrefillTime.TotalMilliseconds, ["decode"] = g.DecodeTime.TotalMilliseconds,
            },
        };
    }

    public static void Write(string path, InferenceResult r, JsonObject metadata)
    {
        var g = r.Generation;
        int frame = r.Image.Geometry.FrameSize;
        var writer = new SafeTensorsWriter()
            .Add("input_ids", SafeTensorDType.I64, [r.InputIds.Length], r.InputIds)
            .Add("generated_ids", SafeTensorDType.I64, [g.Steps], g.GeneratedIds)
            .Add("attention", SafeTensorDType.F32, [g.Steps, g.Layers, g.Heads, g.Keys], g.Attention)
            .Add("modality", SafeTensorDType.U8, [r.Modality.Length], r.Modality)
            .Add("pixel_values", SafeTensorDType.F32, [3, frame, frame], r.Image.PixelValues)
            .Metadata(MetadataKey, metadata.ToJsonString());
        if (g.StepLogits is not null) writer.Add("step_logits", SafeTensorDType.F32, [g.Steps, g.Vocab], g.StepLogits);
        writer.WriteAtomically(path);
    }

    /// <summary>Reads one tensor of an artifact (or any safetensors file) as a flat array with its shape.</summary>
    public static (T[] Data, long[] Shape) Read<T>(SafeTensorsFile file, string name) where T : unmanaged
    {
        if (!file.Tensors.TryGetValue(name, out var info)) throw new InvalidDataException($"{file.Path}: no tensor '{name}'");
        return (System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(file.Bytes(info)).ToArray(), info.Shape);
    }

    public static JsonObject ReadMetadata(SafeTensorsFile file) =>
        file.Metadata.TryGetValue(MetadataKey, out var json) && JsonNode.Parse(json) is JsonObject o
            ? o : throw new InvalidDataException($"{file.Path}: not an AttnPortal attention artifact (no '{MetadataKey}' metadata)");
}
