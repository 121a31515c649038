using System.Text.Json.Nodes;
using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Generation;
using AttnPortal.Inference.Images;
using AttnPortal.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Tests;

/// <summary>config.json of the new families and the original LLaVA-NeXT layout, LoRA adapters, and the schedule masks.</summary>
public sealed class FamilyConfigTests
{
    private static string Dir(string name) => Path.Combine(FamilyParityTests.Root, name);
    private static JsonObject Json(string name) => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Dir(name), "config.json")))!;

    [Fact]
    public void ReadsOneVisionNextAndTheOriginalLayout()
    {
        var ov = LlavaConfig.Load(Dir("tiny-onevision"));
        Assert.Equal((LlavaFamily.LlavaOnevision, "qwen2", true, true, false), (ov.Family, ov.Text.ModelType, ov.Vision.IsSiglip, ov.Text.QkvBias, ov.Text.OutputBias));
        Assert.Equal((4, (int?)null, true, "full", -1), (ov.AnyresMaxTiles, ov.Text.SlidingWindow, ov.Text.TieWordEmbeddings, ov.VisionFeatureSelectStrategy, ov.VisionFeatureLayer));
        Assert.Equal(AttentionSchedule.Standard, ov.DefaultSchedule);

        var next = LlavaConfig.Load(Dir("tiny-next-mistral"));
        Assert.Equal((LlavaFamily.LlavaNext, "mistral", false, (int?)48, (int?)null), (next.Family, next.Text.ModelType, next.Vision.IsSiglip, next.Text.SlidingWindow, next.AnyresMaxTiles));
        Assert.Equal("default", next.VisionFeatureSelectStrategy);

        // The original layout of the same weights: flat decoder fields, mm_* keys, and the seed's alternating model type.
        var orig = LlavaConfig.Load(Dir("tiny-onevision-original"));
        Assert.True(orig.OriginalLayout);
        Assert.Equal(AttentionSchedule.Alternating, orig.DefaultSchedule);
        Assert.Equal((ov.Family, ov.AnyresMaxTiles, ov.ImageTokenId, ov.VisionFeatureLayer, ov.VisionFeatureSelectStrategy), (orig.Family, orig.AnyresMaxTiles, orig.ImageTokenId, orig.VisionFeatureLayer, orig.VisionFeatureSelectStrategy));
        Assert.Equal(ov.Text, orig.Text);
        Assert.Equal(ov.Vision, orig.Vision);
        Assert.Equal(ov.ImageGridPinpoints, orig.ImageGridPinpoints);
    }

    [Theory]
    [InlineData("llava_qwen_with_alternating_cross_attn", AttentionSchedule.AlternatingCross)]
    [InlineData("llava_mistral_with_alternating_attn", AttentionSchedule.Alternating)]
    [InlineData("llava_qwen", AttentionSchedule.Standard)]
    public void OriginalModelTypeSetsTheDefaultSchedule(string modelType, AttentionSchedule expected)
    {
        var json = Json("tiny-onevision-original");
        json["model_type"] = modelType;
        Assert.Equal(expected, LlavaConfig.Parse(json).DefaultSchedule);
    }

    [Fact]
    public void OriginalLayoutKnowsSiglipSo400mByNameAndExpandsRangePinpoints()
    {
        var json = Json("tiny-onevision-original");
        json.Remove("vision_config");
        json["mm_vision_tower"] = "google/siglip-so400m-patch14-384";
        json["image_grid_pinpoints"] = "(1x1),...,(6x6)";
        var c = LlavaConfig.Parse(json);
        Assert.Equal((1152, 26, 16, 384, true), (c.Vision.HiddenSize, c.Vision.NumHiddenLayers, c.Vision.NumAttentionHeads, c.Vision.ImageSize, c.Vision.IsSiglip));
        Assert.Equal(36, c.ImageGridPinpoints.Count);
        Assert.Equal([new PixelSize(384, 384), new PixelSize(384, 768)], c.ImageGridPinpoints.Take(2));
        Assert.Equal(new PixelSize(2304, 2304), c.ImageGridPinpoints[^1]);
    }

    [Theory]
    [InlineData("mm_vision_tower", "someone/unknown-tower", "unknown vision tower 'someone/unknown-tower'")]
    [InlineData("mm_projector_type", "linear", "unsupported mm_projector_type 'linear'")]
    [InlineData("mm_patch_merge_type", "flat", "unsupported mm_patch_merge_type 'flat'")]
    [InlineData("image_aspect_ratio", "pad", "unsupported image_aspect_ratio 'pad'")]
    [InlineData("model_type", "llava_gemma", "unsupported original LLaVA model_type 'llava_gemma'")]
    public void OriginalLayoutRejectsWhatItCannotRunByName(string key, string value, string message)
    {
        var json = Json("tiny-onevision-original");
        if (key == "mm_vision_tower") json.Remove("vision_config");
        json[key] = value;
        Assert.Contains(message, Assert.Throws<NotSupportedException>(() => LlavaConfig.Parse(json)).Message);
    }

    [Fact]
    public void HfConfigsRejectBadAnyresSettings()
    {
        var json = Json("tiny-onevision");
        json["vision_aspect_ratio"] = "anyres_max_x";
        Assert.Contains("unsupported image aspect ratio 'anyres_max_x'", Assert.Throws<NotSupportedException>(() => LlavaConfig.Parse(json)).Message);
        json = Json("tiny-onevision");
        json["image_grid_pinpoints"] = new JsonArray(new JsonArray(56, 100));
        Assert.Contains("grid pinpoint [56, 100] is not a positive multiple of the tile size 56", Assert.Throws<InvalidDataException>(() => LlavaConfig.Parse(json)).Message);
        json = Json("tiny-onevision");
        json["vision_feature_select_strategy"] = "default";
        Assert.Contains("SigLIP has none", Assert.Throws<InvalidDataException>(() => LlavaConfig.Parse(json)).Message);
        json = Json("tiny-next-mistral");
        json["text_config"]!["model_type"] = "gemma";
        Assert.Contains("unsupported language model 'gemma'", Assert.Throws<NotSupportedException>(() => LlavaConfig.Parse(json)).Message);
    }

    [Fact]
    public void LoraAdapterMergesIntoTheBaseAndChangesIt()
    {
        var adapter = LoraAdapter.Load(Dir("tiny-onevision-lora"));
        Assert.Equal((4, 2.0), (adapter.Rank, adapter.Scale));
        Assert.Equal(Path.GetFullPath(Dir("tiny-onevision-original")), adapter.ResolveBase());
        var config = LlavaConfig.Load(adapter.ResolveBase());
        using var plain = new LlavaForConditionalGeneration(config, new ParameterFactory(torch.CPU, ScalarType.Float32));
        using var merged = new LlavaForConditionalGeneration(config, new ParameterFactory(torch.CPU, ScalarType.Float32));
        CheckpointLoader.Load(plain, adapter.ResolveBase());
        CheckpointLoader.Load(merged, adapter.ResolveBase(), adapter);
        var a = plain.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var changed = merged.named_parameters().Where(p => !p.parameter.allclose(a[p.name], rtol: 0, atol: 0)).Select(p => p.name).ToList();
        Assert.Equal(6 * 7, changed.Count); // every linear of every decoder layer, nothing else
        Assert.All(changed, n => Assert.StartsWith("model.language_model.layers.", n));
    }

    [Fact]
    public void LoraAdapterErrorsNameTheProblem()
    {
        using var tmp = new Fixture.TempDir();
        Assert.Contains("not a PEFT adapter directory", Assert.Throws<FileNotFoundException>(() => LoraAdapter.Load(tmp.Path)).Message);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Dir("tiny-onevision-lora"), "adapter_config.json")))!;
        File.WriteAllText(tmp["adapter_config.json"], config.ToJsonString());
        Assert.Contains("adapter weights not found", Assert.Throws<FileNotFoundException>(() => LoraAdapter.Load(tmp.Path)).Message);
        File.Copy(Path.Combine(Dir("tiny-onevision-lora"), "adapter_model.safetensors"), tmp["adapter_model.safetensors"]);
        config["use_dora"] = true;
        File.WriteAllText(tmp["adapter_config.json"], config.ToJsonString());
        Assert.Contains("use_dora true is not supported", Assert.Throws<NotSupportedException>(() => LoraAdapter.Load(tmp.Path)).Message);
        config["use_dora"] = false;
        config["base_model_name_or_path"] = "Qwen/not-here";
        File.WriteAllText(tmp["adapter_config.json"], config.ToJsonString());
        Assert.Contains("base model 'Qwen/not-here' is not a local directory", Assert.Throws<DirectoryNotFoundException>(() => LoraAdapter.Load(tmp.Path).ResolveBase()).Message);
        // An adapter for a different model: rank/shape mismatch is named with both shapes.
        config["r"] = 8;
        File.WriteAllText(tmp["adapter_config.json"], config.ToJsonString());
        var base_ = Dir("tiny-onevision-original");
        var c = LlavaConfig.Load(base_);
        using var model = new LlavaForConditionalGeneration(c, new ParameterFactory(torch.CPU, ScalarType.Float32));
        var e = Assert.Throws<InvalidDataException>(() => CheckpointLoader.Load(model, base_, LoraAdapter.Load(tmp.Path)));
        Assert.Contains("do not fit rank 8", e.Message);
    }

    [Theory]
    [InlineData(AttentionSchedule.Standard, false)]
    [InlineData(AttentionSchedule.Alternating, false)]
    [InlineData(AttentionSchedule.AlternatingCross, false)]
    [InlineData(AttentionSchedule.AlternatingCross, true)]
    public void LayerMasksFollowTheSeedsRules(AttentionSchedule schedule, bool seed)
    {
        // 0-1 text, 2-4 image, 5-7 text; 6 layers: layers 1 and 3 are modality layers, 5 (the last) is not. A prompt
        // of 6 positions, then the decoding step at position 6 of a cache of 8.
        bool[] image = [false, false, true, true, true, false, false, false];
        using var isImage = torch.tensor(image);
        var masks = new LayerMasks(schedule, seed, 6, null, isImage);
        using var position = torch.tensor(new long[] { 6 });
        var decodeRows = masks.DecodeRows(position);
        for (int layer = 0; layer < 6; layer++)
        {
            bool modal = schedule != AttentionSchedule.Standard && layer is 1 or 3;
            using var prefill = masks.For(layer, 6);
            var d = decodeRows[layer].data<bool>().ToArray();
            Assert.False(d[7], $"layer {layer}: the key after the query"); // causal
            Assert.Equal(modal, prefill is not null);
            if (!modal)
            {
                Assert.All(d.Take(7), Assert.True);
                continue;
            }
            var p = prefill!.data<bool>().ToArray();
            for (int q = 0; q < 6; q++)
                for (int k = 0; k < 6; k++)
                {
                    bool expected = k <= q && (schedule == AttentionSchedule.Alternating ? image[k] == image[q] : image[k] != image[q] || k == q);
                    Assert.True(expected == p[q * 6 + k], $"layer {layer} prefill q {q} k {k}");
                }
            int row = seed ? 0 : 6; // the seed's decoding row is position 0's
            for (int k = 0; k < 7; k++)
            {
                bool expected = schedule == AttentionSchedule.Alternating ? image[k] == image[row] : image[k] != image[row] || k == row;
                Assert.True(expected == d[k], $"layer {layer} decode k {k}");
            }
        }
    }

    [Fact]
    public void SlidingWindowMasksEveryLayerOnceTheSequenceIsLonger()
    {
        using var isImage = torch.zeros(10, ScalarType.Bool);
        var masks = new LayerMasks(AttentionSchedule.Standard, false, 2, 4, isImage);
        Assert.Null(masks.For(0, 4));
        using var m = masks.For(1, 6)!;
        var v = m.data<bool>().ToArray();
        for (int q = 0; q < 6; q++)
            for (int k = 0; k < 6; k++)
                Assert.Equal(k <= q && k > q - 4, v[q * 6 + k]);
        Assert.Equal(["standard", "alternating", "alternating-cross"], AttentionSchedules.Names);
        Assert.Contains("unknown attention schedule 'cross'", Assert.Throws<ArgumentException>(() => AttentionSchedules.Parse("cross")).Message);
    }
}
