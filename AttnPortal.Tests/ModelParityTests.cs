using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Generation;
using AttnPortal.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Tests;

/// <summary>The model against HF transformers' eager-attention reference: same inputs, same numbers.</summary>
public sealed class ModelParityTests
{
    private const double Tolerance = 1e-4;

    /// <summary>A LLaVA-1.5 prompt: image positions are where the ids hold the image token (600 in the fixture).</summary>
    private static GenerationInput Input(long[] ids, Tensor? pixels) =>
        new(ids, ids.Select(i => i == 600).ToArray(), pixels, null);

    private static (LlavaForConditionalGeneration Model, RotaryTables Rope) Load(string dir)
    {
        var config = LlavaConfig.Load(Fixture.Checkpoint);
        var model = new LlavaForConditionalGeneration(config, new ParameterFactory(torch.CPU, ScalarType.Float32));
        CheckpointLoader.Load(model, dir);
        return (model, new RotaryTables(config.Text, torch.CPU, ScalarType.Float32));
    }

    [Theory]
    [InlineData("wide-pad", "wide.png.pad")]
    [InlineData("tall-crop", "tall-alpha.png.crop")]
    public void GreedyRunMatchesHfIdsLogitsAndEveryAttentionRow(string run, string frame)
    {
        var (model, rope) = Load(Fixture.Checkpoint);
        using var _ = model;
        using var __ = rope;
        string reference = Fixture.Run(run);
        var inputIds = Fixture.Tensor<long>(reference, "input_ids");
        var hfIds = Fixture.Tensor<long>(reference, "generated_ids");
        using var pixels = torch.tensor(Fixture.HfPixelValues(frame), [1, 3, 336, 336]);

        var result = new GreedyGenerator(model, rope, torch.CPU).Generate(Input(inputIds, pixels), hfIds.Length, new HashSet<long> { 2 }, saveLogits: true);

        Assert.Equal(hfIds, result.GeneratedIds);
        Assert.Equal([hfIds.Length, 3, 4, inputIds.Length + hfIds.Length - 1], new[] { result.Steps, result.Layers, result.Heads, result.Keys });
        double attention = Fixture.MaxAbsDiff(result.Attention, Fixture.Tensor<float>(reference, "attention"));
        double logits = Fixture.MaxAbsDiff(result.StepLogits!, Fixture.Tensor<float>(reference, "step_logits"));
        Assert.True(attention <= Tolerance, $"attention max abs diff {attention:E2}");
        Assert.True(logits <= Tolerance, $"logits max abs diff {logits:E2}");
    }

    [Fact]
    public void ImageFeaturesMatchHfVisionTowerAndProjector()
    {
        var (model, rope) = Load(Fixture.Checkpoint);
        using var _ = model;
        using var __ = rope;
        using var noGrad = torch.no_grad();
        using var pixels = torch.tensor(Fixture.HfPixelValues("wide.png.pad"), [1, 3, 336, 336]);
        using var features = model.Model.ImageFeatures(pixels, null);
        Assert.Equal(new long[] { 576, 64 }, features.shape);
        double diff = Fixture.MaxAbsDiff(features.data<float>().ToArray(), Fixture.Tensor<float>(Fixture.Run("wide-pad"), "image_features"));
        Assert.True(diff <= Tolerance, $"image features max abs diff {diff:E2}");
    }

    [Fact]
    public void EndOfSequenceStopsGenerationAfterEmittingIt()
    {
        var (model, rope) = Load(Fixture.Checkpoint);
        using var _ = model;
        using var __ = rope;
        string reference = Fixture.Run("wide-pad");
        var inputIds = Fixture.Tensor<long>(reference, "input_ids");
        var hfIds = Fixture.Tensor<long>(reference, "generated_ids");
        using var pixels = torch.tensor(Fixture.HfPixelValues("wide.png.pad"), [1, 3, 336, 336]);
        // Greedy decoding is deterministic, so declaring the third token an end-of-sequence id must stop right there.
        var result = new GreedyGenerator(model, rope, torch.CPU).Generate(Input(inputIds, pixels), 8, new HashSet<long> { hfIds[2] }, saveLogits: false);

        Assert.True(result.StoppedAtEos);
        Assert.Equal(hfIds[..3], result.GeneratedIds);
        Assert.Equal(inputIds.Length + 2, result.Keys);
    }

    [Fact]
    public void OneGeneratorServesRunsOfEveryShapeAsFreshOnesDo()
    {
        // An engine keeps its decoding workspace (cache, buffers, graph) from run to run: a run after a longer one
        // (in its workspace, with room for 768 keys where a fresh one has 640), a run stopped at EOS, another schedule
        // or logits option must come out exactly as on a fresh generator (and the HF runs as HF computed them).
        var (model, rope) = Load(Fixture.Checkpoint);
        using var _ = model;
        using var __ = rope;
        using var shared = new GreedyGenerator(model, rope, torch.CPU);
        var runs = new (string Run, string Frame, int MaxNew, int? Eos, AttentionSchedule Schedule, bool Logits)[]
        {
            ("tall-crop", "tall-alpha.png.crop", 8, null, AttentionSchedule.Standard, true),
            ("wide-pad", "wide.png.pad", 100, null, AttentionSchedule.Standard, false),
            ("wide-pad", "wide.png.pad", 5, null, AttentionSchedule.Standard, false),
            ("wide-pad", "wide.png.pad", 8, 2, AttentionSchedule.Standard, false),
            ("tall-crop", "tall-alpha.png.crop", 6, null, AttentionSchedule.Alternating, false),
            ("wide-pad", "wide.png.pad", 8, null, AttentionSchedule.Standard, true),
        };
        foreach (var (run, frame, maxNew, eos, schedule, logits) in runs)
        {
            string reference = Fixture.Run(run);
            var inputIds = Fixture.Tensor<long>(reference, "input_ids");
            var hfIds = Fixture.Tensor<long>(reference, "generated_ids");
            using var pixels = torch.tensor(Fixture.HfPixelValues(frame), [1, 3, 336, 336]);
            var input = Input(inputIds, pixels) with { Schedule = schedule };
            var eosIds = new HashSet<long>(eos is int k ? [hfIds[k]] : []);
            var again = shared.Generate(input, maxNew, eosIds, logits);
            using var fresh = new GreedyGenerator(model, rope, torch.CPU);
            var expected = fresh.Generate(input, maxNew, eosIds, logits);

            Assert.Equal(expected.GeneratedIds, again.GeneratedIds);
            Assert.Equal(expected.Keys, again.Keys);
            Assert.Equal(expected.Attention, again.Attention);
            Assert.Equal(expected.StepLogits, again.StepLogits);
            if (schedule == AttentionSchedule.Standard && again.Steps <= hfIds.Length)
            {
                Assert.Equal(hfIds[..again.Steps], again.GeneratedIds);
                int keys = inputIds.Length + again.Steps - 1, hfKeys = inputIds.Length + hfIds.Length - 1;
                var hf = Fixture.Tensor<float>(reference, "attention");
                for (int row = 0; row < again.Steps * 3 * 4; row++)
                    Assert.True(Fixture.MaxAbsDiff(again.Attention.AsSpan(row * keys, keys).ToArray(), hf.AsSpan(row * hfKeys, keys).ToArray()) <= Tolerance,
                        $"{run}, {maxNew} steps: row {row} differs from HF");
            }
        }
    }

    [Fact]
    public void RowsAreDistributionsAndKeysNotYetSeenAreZero()
    {
        var (model, rope) = Load(Fixture.Checkpoint);
        using var _ = model;
        using var __ = rope;
        var inputIds = Fixture.Tensor<long>(Fixture.Run("wide-pad"), "input_ids");
        using var pixels = torch.tensor(Fixture.HfPixelValues("wide.png.pad"), [1, 3, 336, 336]);
        var r = new GreedyGenerator(model, rope, torch.CPU).Generate(Input(inputIds, pixels), 5, new HashSet<long>(), saveLogits: false);
        int prompt = inputIds.Length;
        for (int step = 0; step < r.Steps; step++)
            for (int row = 0; row < r.Layers * r.Heads; row++)
            {
                var values = r.Attention.AsSpan((step * r.Layers * r.Heads + row) * r.Keys, r.Keys);
                int visible = prompt + step;
                double sum = 0;
                foreach (var v in values[..visible]) sum += v;
                Assert.InRange(sum, 1 - 1e-4, 1 + 1e-4);
                Assert.True(values[visible..].ToArray().All(v => v == 0), $"step {step} row {row} sees future keys");
            }
    }

    [Fact]
    public void PromptLongerThanThePositionTableIsRejected()
    {
        var (model, rope) = Load(Fixture.Checkpoint);
        using var _ = model;
        using var __ = rope;
        var ids = Enumerable.Repeat(5L, 1020).ToArray();
        var e = Assert.Throws<ArgumentException>(() => new GreedyGenerator(model, rope, torch.CPU).Generate(Input(ids, null), 8, new HashSet<long>(), false));
        Assert.Contains("1024 positions", e.Message);
    }
}
