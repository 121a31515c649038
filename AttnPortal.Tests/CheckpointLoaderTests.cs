using System.Text.Json.Nodes;
using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Tests;

public sealed class CheckpointLoaderTests
{
    private static LlavaConfig Config => LlavaConfig.Load(Fixture.Checkpoint);

    private static LlavaForConditionalGeneration LoadFrom(string dir)
    {
        var model = new LlavaForConditionalGeneration(Config, new ParameterFactory(torch.CPU, ScalarType.Float32));
        CheckpointLoader.Load(model, dir);
        return model;
    }

    [Theory]
    [InlineData("language_model.model.layers.0.self_attn.q_proj.weight", "model.language_model.layers.0.self_attn.q_proj.weight")]
    [InlineData("language_model.lm_head.weight", "lm_head.weight")]
    [InlineData("vision_tower.vision_model.embeddings.class_embedding", "model.vision_tower.vision_model.embeddings.class_embedding")]
    [InlineData("vision_tower.embeddings.class_embedding", "model.vision_tower.vision_model.embeddings.class_embedding")]
    [InlineData("multi_modal_projector.linear_1.bias", "model.multi_modal_projector.linear_1.bias")]
    [InlineData("model.vision_tower.vision_model.post_layernorm.weight", "model.vision_tower.vision_model.post_layernorm.weight")]
    [InlineData("model.vision_tower.post_layernorm.weight", "model.vision_tower.vision_model.post_layernorm.weight")]
    [InlineData("model.language_model.norm.weight", "model.language_model.norm.weight")]
    [InlineData("lm_head.weight", "lm_head.weight")]
    public void EveryKnownLayoutMapsOntoTheModuleTree(string key, string expected) =>
        Assert.Equal(expected, CheckpointLoader.CanonicalKey(key));

    [Theory]
    [InlineData("hub-v4-sharded-bf16", ScalarType.BFloat16)]
    [InlineData("model-prefixed-f16", ScalarType.Float16)]
    [InlineData("flat-vision-bf16", ScalarType.BFloat16)]
    public void OtherLayoutsAndDtypesLoadTheSameWeights(string layout, ScalarType stored)
    {
        using var reference = LoadFrom(Fixture.Checkpoint);
        using var other = LoadFrom(Fixture.Layout(layout));
        var expected = reference.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        int compared = 0;
        foreach (var (name, p) in other.named_parameters())
        {
            using var rounded = expected[name].to(stored).to(ScalarType.Float32);
            Assert.True(rounded.eq(p).all().item<bool>(), $"{name} differs from the F32 weights rounded to {stored}");
            compared++;
        }
        Assert.Equal(expected.Count, compared);
        Assert.True(compared > 80);
    }

    [Fact]
    public void HalfPrecisionModelLoadsFromF32Checkpoint()
    {
        var model = new LlavaForConditionalGeneration(Config, new ParameterFactory(torch.CPU, ScalarType.BFloat16));
        using var _ = model;
        CheckpointLoader.Load(model, Fixture.Checkpoint);
        Assert.All(model.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
    }

    [Fact]
    public void CheckpointOfSymbolicLinksLoadsAsHfCacheSnapshotsAre()
    {
        // HF's cache: snapshots/<revision>/<file> are links to blobs/<hash>.
        using var tmp = new Fixture.TempDir();
        var snapshot = Directory.CreateDirectory(Path.Combine(tmp.Path, "snapshots", "main")).FullName;
        var blobs = Directory.CreateDirectory(Path.Combine(tmp.Path, "blobs")).FullName;
        foreach (var file in Directory.GetFiles(Fixture.Checkpoint))
        {
            string blob = Path.Combine(blobs, Guid.NewGuid().ToString("N"));
            File.Copy(file, blob);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), blob);
        }
        Assert.NotNull(new FileInfo(Path.Combine(snapshot, "model.safetensors")).LinkTarget);

        using var reference = LoadFrom(Fixture.Checkpoint);
        using var linked = LoadFrom(snapshot);
        var expected = reference.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.All(linked.named_parameters(), p => Assert.True(expected[p.name].eq(p.parameter).all().item<bool>(), p.name));
    }

    /// <summary>Rewrites the tiny checkpoint's weights through <paramref name="edit"/> into a new directory.</summary>
    private static void WriteEdited(string dir, Action<Dictionary<string, (SafeTensorDType DType, long[] Shape, byte[] Data)>> edit)
    {
        Fixture.CopyCheckpointFiles(dir);
        var tensors = new Dictionary<string, (SafeTensorDType, long[], byte[])>();
        using (var f = SafeTensorsFile.Open(Path.Combine(Fixture.Checkpoint, "model.safetensors")))
            foreach (var info in f.Tensors.Values) tensors[info.Name] = (info.DType, info.Shape, f.Bytes(info).ToArray());
        edit(tensors);
        var writer = new SafeTensorsWriter();
        foreach (var (name, (dtype, shape, data)) in tensors) writer.Add(name, dtype, shape, data);
        writer.WriteAtomically(Path.Combine(dir, "model.safetensors"));
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        using var tmp = new Fixture.TempDir();
        WriteEdited(tmp.Path, t => t.Remove("language_model.model.layers.1.mlp.up_proj.weight"));
        var e = Assert.Throws<InvalidDataException>(() => LoadFrom(tmp.Path));
        Assert.Contains("1 missing tensor(s): model.language_model.layers.1.mlp.up_proj.weight", e.Message);
    }

    [Fact]
    public void UnexpectedTensorIsNamed()
    {
        using var tmp = new Fixture.TempDir();
        WriteEdited(tmp.Path, t => t["language_model.model.layers.7.extra.weight"] = (SafeTensorDType.F32, [1], new byte[4]));
        var e = Assert.Throws<InvalidDataException>(() => LoadFrom(tmp.Path));
        Assert.Contains("unexpected tensor(s): language_model.model.layers.7.extra.weight", e.Message);
    }

    [Fact]
    public void WrongShapeIsNamedWithBothShapes()
    {
        using var tmp = new Fixture.TempDir();
        WriteEdited(tmp.Path, t => t["multi_modal_projector.linear_2.bias"] = (SafeTensorDType.F32, [32], new byte[128]));
        var e = Assert.Throws<InvalidDataException>(() => LoadFrom(tmp.Path));
        Assert.Contains("'multi_modal_projector.linear_2.bias' has shape [32], the model expects [64]", e.Message);
    }

    [Fact]
    public void DerivedBuffersInOldCheckpointsAreIgnored()
    {
        using var tmp = new Fixture.TempDir();
        WriteEdited(tmp.Path, t => t["vision_tower.embeddings.position_ids"] = (SafeTensorDType.I64, [1, 577], new byte[577 * 8]));
        using var model = LoadFrom(tmp.Path);
    }

    [Fact]
    public void TruncatedWeightsFileIsReportedByName()
    {
        using var tmp = new Fixture.TempDir();
        Fixture.CopyCheckpointFiles(tmp.Path);
        var bytes = File.ReadAllBytes(Path.Combine(Fixture.Checkpoint, "model.safetensors"));
        File.WriteAllBytes(tmp["model.safetensors"], bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => LoadFrom(tmp.Path));
        Assert.Contains("model.safetensors", e.Message);
    }

    [Fact]
    public void GarbageWeightsFileIsNotASafetensorsFile()
    {
        using var tmp = new Fixture.TempDir();
        Fixture.CopyCheckpointFiles(tmp.Path);
        File.WriteAllText(tmp["model.safetensors"], "this is not a checkpoint at all");
        var e = Assert.Throws<InvalidDataException>(() => LoadFrom(tmp.Path));
        Assert.Contains("model.safetensors: not a safetensors file", e.Message);
    }

    [Fact]
    public void MissingShardIsNamed()
    {
        using var tmp = new Fixture.TempDir();
        foreach (var f in Directory.GetFiles(Fixture.Layout("hub-v4-sharded-bf16")))
            if (!f.EndsWith("00002-of-00003.safetensors", StringComparison.Ordinal)) File.Copy(f, tmp[Path.GetFileName(f)]);
        var e = Assert.Throws<FileNotFoundException>(() => CheckpointLoader.WeightFiles(tmp.Path));
        Assert.Contains("model-00002-of-00003.safetensors: shard listed in model.safetensors.index.json is missing", e.Message);
    }

    [Fact]
    public void DirectoryWithoutWeightsSaysSo()
    {
        using var tmp = new Fixture.TempDir();
        File.WriteAllText(tmp["pytorch_model.bin"], "");
        var e = Assert.Throws<FileNotFoundException>(() => CheckpointLoader.WeightFiles(tmp.Path));
        Assert.Contains("no model.safetensors or model.safetensors.index.json", e.Message);
        Assert.Contains(".bin checkpoints are not supported", e.Message);
    }
}

public sealed class LlavaConfigTests
{
    private static JsonObject FixtureConfig() => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture.Checkpoint, "config.json")))!;

    [Fact]
    public void ReadsTheTinyCheckpoint()
    {
        var c = LlavaConfig.Load(Fixture.Checkpoint);
        Assert.Equal((3, 4, 2, 16, 1024, 640), (c.Text.NumHiddenLayers, c.Text.NumAttentionHeads, c.Text.NumKeyValueHeads, c.Text.HeadDim, c.Text.MaxPositionEmbeddings, c.Text.VocabSize));
        Assert.Equal(20000.0, c.Text.RopeTheta);
        Assert.Equal(600, c.ImageTokenId);
        Assert.Equal(576, c.ImageTokensPerImage);
        Assert.Equal(24, c.Vision.PatchesPerSide);
        Assert.Equal(-2, c.VisionFeatureLayer);
    }

    [Fact]
    public void AcceptsTransformers4RopeTheta()
    {
        var json = FixtureConfig();
        var text = (JsonObject)json["text_config"]!;
        text.Remove("rope_parameters");
        text["rope_theta"] = 5000.0;
        json.Remove("image_token_index");
        json["image_token_index"] = 32000;
        var c = LlavaConfig.Parse(json);
        Assert.Equal(5000.0, c.Text.RopeTheta);
        Assert.Equal(32000, c.ImageTokenId);
    }

    [Fact]
    public void RejectsUnsupportedArchitectureByName()
    {
        using var tmp = new Fixture.TempDir();
        var json = FixtureConfig();
        json["architectures"] = new JsonArray("Qwen2VLForConditionalGeneration");
        json["model_type"] = "qwen2_vl";
        File.WriteAllText(tmp["config.json"], json.ToJsonString());
        var e = Assert.Throws<NotSupportedException>(() => LlavaConfig.Load(tmp.Path));
        Assert.Contains("unsupported architecture Qwen2VLForConditionalGeneration", e.Message);
    }

    [Fact]
    public void RejectsScaledRope()
    {
        var json = FixtureConfig();
        json["text_config"]!["rope_parameters"] = new JsonObject { ["rope_type"] = "yarn", ["rope_theta"] = 10000.0 };
        var e = Assert.Throws<NotSupportedException>(() => LlavaConfig.Parse(json));
        Assert.Contains("rope_type 'yarn'", e.Message);
    }

    [Fact]
    public void CorruptConfigNamesTheFile()
    {
        using var tmp = new Fixture.TempDir();
        File.WriteAllText(tmp["config.json"], "{ \"architectures\": [");
        var e = Assert.Throws<InvalidDataException>(() => LlavaConfig.Load(tmp.Path));
        Assert.Contains("config.json: not valid JSON", e.Message);
    }

    [Fact]
    public void MissingDirectoryAndConfigAreNamed()
    {
        Assert.Contains("checkpoint directory not found", Assert.Throws<DirectoryNotFoundException>(() => LlavaConfig.Load("/nonexistent/ckpt")).Message);
        using var tmp = new Fixture.TempDir();
        Assert.Contains("config.json not found", Assert.Throws<FileNotFoundException>(() => LlavaConfig.Load(tmp.Path)).Message);
    }
}
