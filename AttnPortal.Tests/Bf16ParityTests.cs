using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Generation;
using AttnPortal.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Tests;

/// <summary>
/// bfloat16 against HF float32 on tiny-llava-bf16 (tools/fixtures/make_bf16_fixture.py, made on the GPU machine):
/// tiny-llava's geometry, config, tokenizer and preprocessor, with weights at an ordinary scale (attention neither
/// near-uniform nor one-hot), every one exactly representable in bfloat16, and HF float32 (CPU, eager) references of the
/// wide-pad and tall-crop cases. On tiny-llava no bfloat16 model can meet the target: rounding its weights alone moves
/// attention rows by ~4e-2 (docs/PERFORMANCE.md). Here float32 and bfloat16 use the same weights; only the arithmetic
/// differs.
/// </summary>
public sealed class Bf16ParityTests
{
    private const double Float32Tolerance = 1e-4;        // as ModelParityTests and CliTests
    private const double BFloat16AttentionTarget = 2e-2; // the engine's target for bfloat16 against float32

    public static string Run(string name) => Fixture.Run("bf16fx-" + name);

    /// <summary>Fails (never skips) with what to do when the fixture has not been made yet.</summary>
    private static void RequireFixture()
    {
        string[] needed = [Path.Combine(Fixture.Bf16Checkpoint, "config.json"), Path.Combine(Fixture.Bf16Checkpoint, "model.safetensors"),
            Run("wide-pad"), Run("tall-crop")];
        var missing = needed.Where(f => !File.Exists(f)).ToArray();
        if (missing.Length > 0)
            Assert.Fail($"the bfloat16 fixture is missing ({string.Join(", ", missing.Select(Path.GetFileName))}): make it on the GPU machine " +
                "from the repository root with `python3 tools/fixtures/make_bf16_fixture.py` and commit what it writes under AttnPortal.Tests/Fixtures/hf");
    }

    private static (LlavaForConditionalGeneration Model, RotaryTables Rope) Load(ScalarType dtype)
    {
        RequireFixture();
        var config = LlavaConfig.Load(Fixture.Bf16Checkpoint);
        var model = new LlavaForConditionalGeneration(config, new ParameterFactory(torch.CPU, dtype));
        CheckpointLoader.Load(model, Fixture.Bf16Checkpoint);
        return (model, new RotaryTables(config.Text, torch.CPU, dtype));
    }

    /// <summary>The engine on the CPU at <paramref name="dtype"/>, on the HF reference's ids and pixel values, as many
    /// steps as HF took.</summary>
    private static (GenerationResult Result, long[] InputIds, long[] HfIds) Generate(ScalarType dtype, string run, string frame)
    {
        var (model, rope) = Load(dtype);
        using var _ = model;
        using var __ = rope;
        string reference = Run(run);
        var inputIds = Fixture.Tensor<long>(reference, "input_ids");
        var hfIds = Fixture.Tensor<long>(reference, "generated_ids");
        using var pixels = torch.tensor(Fixture.HfPixelValues(frame), [1, 3, 336, 336]);
        var input = new GenerationInput(inputIds, inputIds.Select(i => i == 600).ToArray(), pixels, null);
        using var generator = new GreedyGenerator(model, rope, torch.CPU);
        return (generator.Generate(input, hfIds.Length, new HashSet<long> { 2 }, saveLogits: true), inputIds, hfIds);
    }

    [Fact]
    public void WeightsAreFloat32HoldingBFloat16Values()
    {
        var (model, rope) = Load(ScalarType.Float32);
        using var _ = model;
        using var __ = rope;
        int count = 0;
        foreach (var (name, p) in model.named_parameters())
        {
            using var rounded = p.to(ScalarType.BFloat16).to(ScalarType.Float32);
            Assert.True(rounded.eq(p).all().item<bool>(), $"{name} is not exactly representable in bfloat16");
            count++;
        }
        Assert.True(count > 80);
    }

    [Theory]
    [InlineData("wide-pad", "wide.png.pad")]
    [InlineData("tall-crop", "tall-alpha.png.crop")]
    public void Float32OnCpuMatchesHfFloat32(string run, string frame)
    {
        var (result, inputIds, hfIds) = Generate(ScalarType.Float32, run, frame);

        Assert.Equal(hfIds, result.GeneratedIds);
        Assert.Equal([hfIds.Length, 3, 4, inputIds.Length + hfIds.Length - 1], new[] { result.Steps, result.Layers, result.Heads, result.Keys });
        double attention = Fixture.MaxAbsDiff(result.Attention, Fixture.Tensor<float>(Run(run), "attention"));
        double logits = Fixture.MaxAbsDiff(result.StepLogits!, Fixture.Tensor<float>(Run(run), "step_logits"));
        Assert.True(attention <= Float32Tolerance, $"attention max abs diff {attention:E2}");
        Assert.True(logits <= Float32Tolerance, $"logits max abs diff {logits:E2}");
    }

    /// <summary>
    /// The 2e-2 target is not reachable by any bfloat16 implementation once attention is peaked: HF's own bfloat16 run
    /// (on CUDA, committed as runs/bf16fx-*-hfbf16) is 5e-2–9e-2 from its float32 run here, as on tiny-llava
    /// (bf16-report.json has the sweep: HF meets 2e-2 only where rows are near-uniform). So the engine in bfloat16 must
    /// pick HF's tokens and be at least as close to HF float32 as HF's own bfloat16 is.
    /// </summary>
    [Theory]
    [InlineData("wide-pad", "wide.png.pad")]
    [InlineData("tall-crop", "tall-alpha.png.crop")]
    public void BFloat16OnCpuIsAsCloseToHfFloat32AsHfBFloat16Is(string run, string frame)
    {
        var (result, inputIds, hfIds) = Generate(ScalarType.BFloat16, run, frame);

        // One message with every figure: rows are compared up to and including the first step whose id differs (until
        // then both saw the same tokens), so a failure on the ids still says how far the rows were.
        int common = Math.Min(result.Steps, hfIds.Length);
        int first = Enumerable.Range(0, common).FirstOrDefault(s => result.GeneratedIds[s] != hfIds[s], -1);
        int steps = first < 0 ? common : first + 1;
        int hfKeys = inputIds.Length + hfIds.Length - 1, rows = result.Layers * result.Heads;
        var hf = Fixture.Tensor<float>(Run(run), "attention");
        var hfBf16 = Fixture.Tensor<float>(Run(run + "-hfbf16"), "attention");
        Assert.Equal(hfIds, Fixture.Tensor<long>(Run(run + "-hfbf16"), "generated_ids"));
        double engine = 0, hfOwn = 0;
        for (int row = 0; row < steps * rows; row++)
        {
            int keys = Math.Min(result.Keys, hfKeys); // past a row's visible keys both are zero
            engine = Math.Max(engine, Fixture.MaxAbsDiff(result.Attention.AsSpan(row * result.Keys, keys), hf.AsSpan(row * hfKeys, keys)));
            hfOwn = Math.Max(hfOwn, Fixture.MaxAbsDiff(hfBf16.AsSpan(row * hfKeys, keys), hf.AsSpan(row * hfKeys, keys)));
        }
        bool idsEqual = result.GeneratedIds.SequenceEqual(hfIds);
        string message = $"{run}: ids {(idsEqual ? "equal" : first >= 0 ? $"differ from step {first}" : $"differ in length ({result.Steps} vs {hfIds.Length})")}; " +
            $"attention max abs diff to HF float32 over {steps} steps: engine bfloat16 {engine:E2}, HF bfloat16 {hfOwn:E2} (issue target {BFloat16AttentionTarget:E0})";
        Assert.True(hfOwn > BFloat16AttentionTarget, $"HF's own bfloat16 meets the target here ({hfOwn:E2}): the engine must too, test it against {BFloat16AttentionTarget:E0}");
        Assert.True(idsEqual && engine <= hfOwn, message);
        Assert.Equal([3, 4], new[] { result.Layers, result.Heads });
    }
}
