using System.Runtime.InteropServices;
using System.Text.Json;
using AttnPortal.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Checkpoints;

/// <summary>
/// Loads a LLaVA checkpoint's safetensors weights into the module tree. Every key layout seen in the wild is mapped onto
/// the module tree's names (transformers ≥ 4.52 in-memory names: model.vision_tower.vision_model.*,
/// model.language_model.*, model.multi_modal_projector.*, lm_head.*).
/// </summary>
public static class CheckpointLoader
{
    private const string IndexFile = "model.safetensors.index.json";
    private const string SingleFile = "model.safetensors";

    /// <summary>Buffers some checkpoints carry that the model derives itself.</summary>
    private static bool IsDerivedBuffer(string key) =>
        key.EndsWith("embeddings.position_ids", StringComparison.Ordinal) || key.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal);

    /// <summary>
    /// Maps a key of any supported layout to the module tree's name:
    /// hub (transformers 4): vision_tower.vision_model.*, language_model.model.*, language_model.lm_head.*, multi_modal_projector.*;
    /// transformers 5 save: vision_tower.* (no vision_model), language_model.model.*, language_model.lm_head.*;
    /// model-prefixed: model.vision_tower.(vision_model.)*, model.language_model.*, model.multi_modal_projector.*, lm_head.*.
    /// </summary>
    public static string CanonicalKey(string key, bool originalLayout = false)
    {
        if (originalLayout) return OriginalKey(key);
        string k = key.StartsWith("model.", StringComparison.Ordinal) ? key["model.".Length..] : key;
        if (k.StartsWith("language_model.lm_head.", StringComparison.Ordinal)) return k["language_model.".Length..];
        if (k.StartsWith("lm_head.", StringComparison.Ordinal)) return k;
        if (k.StartsWith("language_model.model.", StringComparison.Ordinal)) k = "language_model." + k["language_model.model.".Length..];
        if (k.StartsWith("vision_tower.", StringComparison.Ordinal) && !k.StartsWith("vision_tower.vision_model.", StringComparison.Ordinal))
            k = "vision_tower.vision_model." + k["vision_tower.".Length..];
        return "model." + k;
    }

    /// <summary>
    /// The original LLaVA-NeXT layout: model.embed_tokens/layers/norm (the decoder at the top), model.mm_projector.0/2
    /// (nn.Sequential: linear, GELU, linear), model.vision_tower.vision_tower.vision_model.*, model.image_newline.
    /// </summary>
    private static string OriginalKey(string key)
    {
        const string tower = "model.vision_tower.vision_tower.";
        if (key.StartsWith("lm_head.", StringComparison.Ordinal) || key == "model.image_newline") return key;
        if (key.StartsWith(tower, StringComparison.Ordinal)) return "model.vision_tower." + key[tower.Length..];
        if (key.StartsWith("model.mm_projector.0.", StringComparison.Ordinal)) return "model.multi_modal_projector.linear_1." + key["model.mm_projector.0.".Length..];
        if (key.StartsWith("model.mm_projector.2.", StringComparison.Ordinal)) return "model.multi_modal_projector.linear_2." + key["model.mm_projector.2.".Length..];
        if (key.StartsWith("model.", StringComparison.Ordinal)) return "model.language_model." + key["model.".Length..];
        return key;
    }

    /// <summary>Weights LLaVA never uses: SigLIP's post-layernorm and pooling head (LLaVA reads an encoder layer).</summary>
    private static bool IsUnused(string canonicalKey, LlavaConfig config) =>
        config.Vision.IsSiglip && (canonicalKey.StartsWith("model.vision_tower.vision_model.post_layernorm.", StringComparison.Ordinal)
                                   || canonicalKey.StartsWith("model.vision_tower.vision_model.head.", StringComparison.Ordinal));

    public static IReadOnlyList<string> WeightFiles(string checkpointDir)
    {
        string index = Path.Combine(checkpointDir, IndexFile);
        if (File.Exists(index))
        {
            Dictionary<string, string> map;
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(index));
                map = doc.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new InvalidDataException($"{index}: corrupt shard index ({e.Message})");
            }
            var files = map.Values.Distinct().Order(StringComparer.Ordinal).Select(f => Path.Combine(checkpointDir, f)).ToList();
            foreach (var f in files.Where(f => !File.Exists(f)))
                throw new FileNotFoundException($"{f}: shard listed in {IndexFile} is missing", f);
            return files;
        }
        string single = Path.Combine(checkpointDir, SingleFile);
        if (File.Exists(single)) return [single];
        var others = Directory.Exists(checkpointDir) ? Directory.GetFiles(checkpointDir, "*.safetensors") : [];
        if (others.Length > 0) return others.Order(StringComparer.Ordinal).ToList();
        bool pickle = Directory.Exists(checkpointDir) && Directory.GetFiles(checkpointDir, "*.bin").Length > 0;
        throw new FileNotFoundException(
            $"{checkpointDir}: no {SingleFile} or {IndexFile}" + (pickle ? " (PyTorch .bin checkpoints are not supported: re-save with safetensors)" : ""));
    }

    /// <summary>Copies every weight into the model's parameters, tensor by tensor, converting dtype on the way, then
    /// merges the LoRA adapter if one is given.</summary>
    public static void Load(LlavaForConditionalGeneration model, string checkpointDir, LoraAdapter? adapter = null)
    {
        var files = WeightFiles(checkpointDir).Select(SafeTensorsFile.Open).ToList();
        try
        {
            var sources = new Dictionary<string, (SafeTensorsFile File, SafeTensorInfo Info)>(StringComparer.Ordinal);
            foreach (var file in files)
                foreach (var info in file.Tensors.Values)
                {
                    if (IsDerivedBuffer(info.Name)) continue;
                    string key = CanonicalKey(info.Name, model.Config.OriginalLayout);
                    if (IsUnused(key, model.Config)) continue;
                    if (sources.TryGetValue(key, out var other))
                        throw new InvalidDataException($"{checkpointDir}: tensor '{info.Name}' ({Path.GetFileName(file.Path)}) and '{other.Info.Name}' ({Path.GetFileName(other.File.Path)}) are the same weight under two layouts");
                    sources[key] = (file, info);
                }

            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            bool tied = model.Config.Text.TieWordEmbeddings && !sources.ContainsKey("lm_head.weight");
            var missing = parameters.Keys.Where(k => !sources.ContainsKey(k) && !(tied && k == "lm_head.weight")).ToList();
            var unexpected = sources.Keys.Where(k => !parameters.ContainsKey(k)).Select(k => sources[k].Info.Name).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new InvalidDataException($"{checkpointDir}: the weights do not match a {model.Config.Text.NumHiddenLayers}-layer LLaVA model described by config.json."
                    + Describe("missing", missing) + Describe("unexpected", unexpected));

            foreach (var (name, parameter) in parameters)
            {
                var (file, info) = Source(name);
                if (!info.Shape.SequenceEqual(parameter.shape))
                    throw new InvalidDataException($"{Path.GetFileName(file.Path)}: tensor '{info.Name}' has shape [{string.Join(", ", info.Shape)}], the model expects [{string.Join(", ", parameter.shape)}]");
            }

            // File by file, releasing each mapping once its tensors are copied: the process never holds more than
            // one shard's pages besides the model itself.
            using var noGrad = torch.no_grad();
            using var pinned = new PinnedStaging();
            foreach (var group in parameters.GroupBy(p => Source(p.Key).File).ToList())
            {
                foreach (var (name, parameter) in group) CopyInto(parameter, group.Key, Source(name).Info, pinned);
                pinned.Drain(); // the transfers read the pinned buffers, not the mapping, but finish them before the next shard
                group.Key.Dispose();
            }
            adapter?.MergeInto(parameters, key => CanonicalKey(key, model.Config.OriginalLayout));

            (SafeTensorsFile File, SafeTensorInfo Info) Source(string name) =>
                sources[tied && name == "lm_head.weight" ? "model.language_model.embed_tokens.weight" : name];
        }
        finally
        {
            foreach (var f in files) f.Dispose();
        }
    }

    private static string Describe(string what, List<string> keys) =>
        keys.Count == 0 ? "" : $" {keys.Count} {what} tensor(s): {string.Join(", ", keys.Take(8))}{(keys.Count > 8 ? ", ..." : "")}.";

    internal static ScalarType ScalarTypeOf(SafeTensorsFile file, SafeTensorInfo info) => info.DType switch
        {
            SafeTensorDType.F32 => ScalarType.Float32,
            SafeTensorDType.F16 => ScalarType.Float16,
            SafeTensorDType.BF16 => ScalarType.BFloat16,
            SafeTensorDType.F64 => ScalarType.Float64,
            _ => throw new InvalidDataException($"{Path.GetFileName(file.Path)}: tensor '{info.Name}' has dtype {info.DType}; weights must be F32, F16 or BF16"),
        };

    /// <summary>A CPU tensor over a copy of the stored bytes.</summary>
    internal static Tensor ReadTensor(SafeTensorsFile file, SafeTensorInfo info)
    {
        var tensor = torch.empty(info.Shape, ScalarTypeOf(file, info));
        var bytes = file.Bytes(info);
        tensor.bytes = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(bytes), bytes.Length);
        return tensor;
    }

    private static void CopyInto(Tensor parameter, SafeTensorsFile file, SafeTensorInfo info, PinnedStaging pinned)
    {
        var dtype = ScalarTypeOf(file, info);
        var bytes = file.Bytes(info);
        if (parameter.device_type == DeviceType.CUDA)
        {
            pinned.CopyToDevice(parameter, bytes, dtype, info.ElementCount);
            return;
        }
        // set_bytes only reads from the span; the mapping itself is read-only.
        var span = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(bytes), bytes.Length);
        if (parameter.device_type == DeviceType.CPU && parameter.dtype == dtype && parameter.is_contiguous())
        {
            parameter.bytes = span;
            return;
        }
        using var staging = torch.empty(info.Shape, dtype);
        staging.bytes = span;
        parameter.copy_(staging);
    }
}
