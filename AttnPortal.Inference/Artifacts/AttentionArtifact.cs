using System.Text.Json;
using System.Text.Json.Nodes;
using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Generation;

namespace AttnPortal.Inference.Artifacts;

/// <summary>
/// The portal's attention artifact: one safetensors file per run (layout in README.md, "Attention artifact").
/// Tensors: input_ids I64 [L], generated_ids I64 [N], attention F32 [N, layers, heads, L+N-1] (keys a step cannot see
/// yet are 0), modality U8 [L+N-1] (0 text, 1 image, 2 generated), pixel_values F32 [3, S, S] (LLaVA-1.5) or
/// [tiles, 3, S, S] (anyres), optional step_logits F32 [N, vocab]; the metadata entry "attnportal" holds a JSON
/// document describing the run, including image.views: where each grid of image tokens lies on the original image.
/// </summary>
public static class AttentionArtifact
{
    public const string Format = "attnportal.attention/1";
    public const string MetadataKey = "attnportal";

    public static JsonObject Describe(InferenceResult r, LlavaEngine engine, InferenceRequest request)
    {
        var g = r.Generation;
        var image = new JsonObject
        {
            ["source"] = request.ImageName,
            ["width"] = r.Image.OriginalWidth, ["height"] = r.Image.OriginalHeight,
            ["patch_size"] = engine.Config.Vision.PatchSize,
            ["tile_size"] = r.Image.TileSize, ["tiles"] = r.Image.Tiles,
            ["token_start"] = r.ImageTokenStart, ["token_count"] = r.ImageTokenCount,
            ["views"] = new JsonArray(r.Image.Views.Select(v => (JsonNode?)new JsonObject
            {
                ["name"] = v.Name, ["token_offset"] = v.TokenOffset, ["rows"] = v.Rows, ["cols"] = v.Cols, ["row_stride"] = v.RowStride,
                ["frame"] = new JsonObject { ["x"] = v.Frame.X, ["y"] = v.Frame.Y, ["width"] = v.Frame.Width, ["height"] = v.Frame.Height },
            }).ToArray()),
        };
        if (r.Image.Geometry is { } geo) // LLaVA-1.5: the square frame, as version 1 artifacts describe it
        {
            image["aspect"] = request.Aspect.ToString().ToLowerInvariant();
            image["frame_size"] = geo.FrameSize;
            image["frame_in_original"] = new JsonObject { ["x"] = geo.FrameX, ["y"] = geo.FrameY, ["width"] = geo.FrameWidth, ["height"] = geo.FrameHeight };
            image["grid"] = new JsonArray(engine.Config.Vision.PatchesPerSide, engine.Config.Vision.PatchesPerSide);
        }
        return new JsonObject
        {
            ["format"] = Format,
            ["created_utc"] = DateTime.UtcNow.ToString("O"),
            ["model"] = new JsonObject
            {
                ["path"] = engine.CheckpointDir,
                ["name"] = Path.GetFileName(engine.CheckpointDir.TrimEnd('/')),
                ["architecture"] = engine.Config.Family switch
                {
                    Model.LlavaFamily.LlavaNext => "LlavaNextForConditionalGeneration",
                    Model.LlavaFamily.LlavaOnevision => "LlavaOnevisionForConditionalGeneration",
                    _ => "LlavaForConditionalGeneration",
                },
                ["text_model"] = engine.Config.Text.ModelType,
                ["vision_model"] = engine.Config.Vision.ModelType,
                ["adapter"] = engine.AdapterDir,
                ["layers"] = g.Layers, ["heads"] = g.Heads, ["kv_heads"] = engine.Config.Text.NumKeyValueHeads,
                ["vocab"] = g.Vocab, ["device"] = engine.Device.ToString(), ["dtype"] = engine.DType.ToString(),
            },
            ["schedule"] = r.Schedule.Name(),
            ["seed_compatible_decoding"] = r.SeedCompatibleDecoding,
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
                // Readable text of each token ("Ġthe"/"▁the" as " the", "Ċ" as "\n"), for display.
                ["input_text"] = new JsonArray(r.InputIds.Select((id, i) => (JsonNode?)(r.Modality[i] == (byte)KeyModality.Image ? r.InputTokens[i] : engine.Tokenizer.TokenText((int)id))).ToArray()),
                ["generated_text_pieces"] = new JsonArray(r.Generation.GeneratedIds.Select(id => (JsonNode?)engine.Tokenizer.TokenText((int)id)).ToArray()),
                ["generated_text"] = r.GeneratedText,
            },
            ["image"] = image,
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
        long[] pixelShape = r.Image.Geometry is not null ? [3, r.Image.TileSize, r.Image.TileSize] : [r.Image.Tiles, 3, r.Image.TileSize, r.Image.TileSize];
        var writer = new SafeTensorsWriter()
            .Add("input_ids", SafeTensorDType.I64, [r.InputIds.Length], r.InputIds)
            .Add("generated_ids", SafeTensorDType.I64, [g.Steps], g.GeneratedIds)
            .Add("attention", SafeTensorDType.F32, [g.Steps, g.Layers, g.Heads, g.Keys], g.Attention)
            .Add("modality", SafeTensorDType.U8, [r.Modality.Length], r.Modality)
            .Add("pixel_values", SafeTensorDType.F32, pixelShape, r.Image.PixelValues)
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
