using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Checkpoints;

/// <summary>
/// A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors), merged into the base weights at
/// load time: W += (lora_alpha / r) · B·A (or lora_alpha / √r with use_rslora), computed in float32. The
/// LLaVA-Alternating-Attn checkpoints are LoRA fine-tunes of this kind.
/// </summary>
public sealed class LoraAdapter
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";
    private const string Prefix = "base_model.model.";

    public string Directory { get; }
    public double Scale { get; }
    public int Rank { get; }
    /// <summary>base_model_name_or_path, as written.</summary>
    public string? BaseModel { get; }

    private LoraAdapter(string dir, int rank, double scale, string? baseModel) => (Directory, Rank, Scale, BaseModel) = (dir, rank, scale, baseModel);

    public static bool IsAdapterDirectory(string dir) => File.Exists(Path.Combine(dir, ConfigFile));

    public static LoraAdapter Load(string dir)
    {
        string path = Path.Combine(dir, ConfigFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: not a PEFT adapter directory (no {ConfigFile})", path);
        if (!File.Exists(Path.Combine(dir, WeightsFile)))
            throw new FileNotFoundException($"{Path.Combine(dir, WeightsFile)}: adapter weights not found"
                + (File.Exists(Path.Combine(dir, "adapter_model.bin")) ? " (adapter_model.bin is a pickle: re-save the adapter with safetensors)" : ""));
        if (File.Exists(Path.Combine(dir, "non_lora_trainables.bin")))
            throw new NotSupportedException($"{dir}: non_lora_trainables.bin (weights trained outside LoRA, a pickle) cannot be read; merge the adapter in Python and load the merged checkpoint");
        JsonObject c;
        try { c = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException("not a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})"); }
        string type = c["peft_type"]?.GetValue<string>() ?? "";
        if (type != "LORA") throw new NotSupportedException($"{path}: peft_type '{type}' is not supported (LORA is)");
        foreach (var flag in new[] { "use_dora", "fan_in_fan_out" })
            if (c[flag] is JsonValue v && v.GetValue<bool>()) throw new NotSupportedException($"{path}: {flag} true is not supported");
        if (c["modules_to_save"] is JsonArray { Count: > 0 })
            throw new NotSupportedException($"{path}: modules_to_save is not supported (only LoRA-adapted linear layers are merged)");
        if (c["rank_pattern"] is JsonObject { Count: > 0 } || c["alpha_pattern"] is JsonObject { Count: > 0 })
            throw new NotSupportedException($"{path}: per-module rank_pattern/alpha_pattern is not supported");
        int r = c["r"]?.GetValue<int>() ?? throw new InvalidDataException($"{path}: r is missing");
        double alpha = c["lora_alpha"]?.GetValue<double>() ?? r;
        if (r <= 0) throw new InvalidDataException($"{path}: r must be positive");
        bool rs = c["use_rslora"] is JsonValue u && u.GetValue<bool>();
        return new LoraAdapter(Path.GetFullPath(dir), r, rs ? alpha / Math.Sqrt(r) : alpha / r, c["base_model_name_or_path"]?.GetValue<string>());
    }

    /// <summary>The base checkpoint directory: base_model_name_or_path when it names an existing directory (absolute,
    /// or relative to the adapter directory).</summary>
    public string ResolveBase()
    {
        if (string.IsNullOrWhiteSpace(BaseModel))
            throw new InvalidDataException($"{Path.Combine(Directory, ConfigFile)}: base_model_name_or_path is empty: give the base checkpoint path explicitly");
        string candidate = Path.IsPathRooted(BaseModel) ? BaseModel : Path.GetFullPath(Path.Combine(Directory, BaseModel));
        if (!System.IO.Directory.Exists(candidate))
            throw new DirectoryNotFoundException($"{Path.Combine(Directory, ConfigFile)}: base model '{BaseModel}' is not a local directory (looked for {candidate}); give the base checkpoint path explicitly");
        return candidate;
    }

    /// <param name="parameters">The model's parameters by canonical name.</param>
    /// <param name="canonicalKey">Maps a base-checkpoint weight key to the canonical name.</param>
    internal void MergeInto(IReadOnlyDictionary<string, TorchSharp.Modules.Parameter> parameters, Func<string, string> canonicalKey)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(Directory, WeightsFile));
        var modules = new Dictionary<string, (SafeTensorInfo? A, SafeTensorInfo? B)>(StringComparer.Ordinal);
        foreach (var info in file.Tensors.Values)
        {
            string name = info.Name.StartsWith(Prefix, StringComparison.Ordinal) ? info.Name[Prefix.Length..] : info.Name;
            bool isA = name.EndsWith(".lora_A.weight", StringComparison.Ordinal), isB = name.EndsWith(".lora_B.weight", StringComparison.Ordinal);
            if (!isA && !isB)
                throw new NotSupportedException($"{file.Path}: tensor '{info.Name}' is not a lora_A/lora_B weight (only LoRA on linear layers is supported)");
            string module = name[..^".lora_A.weight".Length];
            modules.TryGetValue(module, out var pair);
            modules[module] = isA ? (info, pair.B) : (pair.A, info);
        }
        if (modules.Count == 0) throw new InvalidDataException($"{file.Path}: no LoRA weights");

        using var noGrad = torch.no_grad();
        foreach (var (module, (a, b)) in modules)
        {
            if (a is null || b is null) throw new InvalidDataException($"{file.Path}: '{module}' has lora_{(a is null ? "A" : "B")} missing");
            string key = canonicalKey(module + ".weight");
            if (!parameters.TryGetValue(key, out var weight))
                throw new InvalidDataException($"{file.Path}: '{module}' adapts a weight the model does not have ({key})");
            if (a.Shape.Length != 2 || b.Shape.Length != 2 || a.Shape[0] != Rank || b.Shape[1] != Rank
                || b.Shape[0] != weight.shape[0] || a.Shape[1] != weight.shape[1])
                throw new InvalidDataException($"{file.Path}: '{module}' has A [{string.Join(", ", a.Shape)}] and B [{string.Join(", ", b.Shape)}], which do not fit rank {Rank} and weight [{string.Join(", ", weight.shape)}]");
            using var scope = torch.NewDisposeScope();
            var A = CheckpointLoader.ReadTensor(file, a).to(ScalarType.Float32, weight.device);
            var B = CheckpointLoader.ReadTensor(file, b).to(ScalarType.Float32, weight.device);
            var merged = weight.to(ScalarType.Float32) + torch.matmul(B, A) * Scale;
            weight.copy_(merged.to(weight.dtype));
        }
    }
}
