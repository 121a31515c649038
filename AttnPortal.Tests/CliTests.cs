using System.Diagnostics;
using AttnPortal.Inference.Artifacts;
using AttnPortal.Inference.Checkpoints;

namespace AttnPortal.Tests;

/// <summary>The CLI as a user runs it: a separate process, real files, exit codes, and HF's numbers at the end.</summary>
public sealed class CliTests
{
    private const double Tolerance = 1e-4;

    public sealed record CliRun(int ExitCode, string Stdout, string Stderr);

    public static CliRun Cli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "AttnPortal.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(true); throw new TimeoutException($"cli {string.Join(' ', args)} hung"); }
        return new CliRun(p.ExitCode, stdout.Result, stderr.Result);
    }

    [Theory]
    [InlineData("wide-pad", "wide.png", "pad", "What is in the picture?")]
    [InlineData("tall-crop", "tall-alpha.png", "crop", "  Describe  the image ,please.")]
    public void InferReproducesHfEndToEnd(string run, string image, string aspect, string question)
    {
        using var tmp = new Fixture.TempDir();
        string output = tmp["run.safetensors"];
        var r = Cli("infer", "--model", Fixture.Checkpoint, "--image", Fixture.Image(image), "--prompt", question,
            "--image-aspect", aspect, "--max-new-tokens", "8", "--save-logits", "--out", output);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("step 8/8", r.Stderr);

        string reference = Fixture.Run(run);
        using var artifact = SafeTensorsFile.Open(output);
        var inputIds = AttentionArtifact.Read<long>(artifact, "input_ids").Data;
        Assert.Equal(Fixture.Tensor<long>(reference, "input_ids"), inputIds);
        Assert.Equal(Fixture.Tensor<long>(reference, "generated_ids"), AttentionArtifact.Read<long>(artifact, "generated_ids").Data);
        var (attention, shape) = AttentionArtifact.Read<float>(artifact, "attention");
        Assert.Equal(new long[] { 8, 3, 4, inputIds.Length + 7 }, shape);
        double attentionDiff = Fixture.MaxAbsDiff(attention, Fixture.Tensor<float>(reference, "attention"));
        double logitsDiff = Fixture.MaxAbsDiff(AttentionArtifact.Read<float>(artifact, "step_logits").Data, Fixture.Tensor<float>(reference, "step_logits"));
        Assert.True(attentionDiff <= Tolerance, $"attention max abs diff {attentionDiff:E2}");
        Assert.True(logitsDiff <= Tolerance, $"logits max abs diff {logitsDiff:E2}");

        var modality = AttentionArtifact.Read<byte>(artifact, "modality").Data;
        Assert.Equal(inputIds.Length + 7, modality.Length);
        Assert.Equal(576, modality.Count(m => m == 1));
        Assert.All(modality[inputIds.Length..], m => Assert.Equal(2, m));
        Assert.All(Enumerable.Range(0, inputIds.Length), i => Assert.Equal(inputIds[i] == 600 ? 1 : 0, modality[i]));

        var meta = AttentionArtifact.ReadMetadata(artifact);
        Assert.Equal(AttentionArtifact.Format, (string?)meta["format"]);
        Assert.Equal("standard", (string?)meta["schedule"]);
        Assert.Equal(24, (int)meta["image"]!["grid"]![0]!);
        Assert.Equal(inputIds.ToList().IndexOf(600), (int)meta["image"]!["token_start"]!);
        Assert.Equal(8, meta["tokens"]!["generated"]!.AsArray().Count);
        var pv = AttentionArtifact.Read<float>(artifact, "pixel_values").Data;
        Assert.True(Fixture.MaxAbsDiff(pv, Fixture.HfPixelValues($"{image}.{aspect}")) <= 1e-6);
    }

    [Fact]
    public void RawPromptIsUsedAsGiven()
    {
        using var tmp = new Fixture.TempDir();
        var r = Cli("infer", "--model", Fixture.Checkpoint, "--image", Fixture.Image("wide.png"),
            "--raw-prompt", "USER: <image>\nWhat is in the picture? ASSISTANT:", "--max-new-tokens", "2", "--out", tmp["raw.safetensors"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var artifact = SafeTensorsFile.Open(tmp["raw.safetensors"]);
        Assert.Equal(Fixture.Tensor<long>(Fixture.Run("wide-pad"), "input_ids"), AttentionArtifact.Read<long>(artifact, "input_ids").Data);
        Assert.Equal("raw", (string?)AttentionArtifact.ReadMetadata(artifact)["prompt"]!["mode"]);
    }

    public static TheoryData<string, string[], string> BadInputs => new()
    {
        { "missing model", ["--model", "/nonexistent/model", "--image", "IMG", "--prompt", "hi"], "/nonexistent/model: checkpoint directory not found" },
        { "not an image", ["--model", "MODEL", "--image", "CONFIG", "--prompt", "hi"], "config.json: not a recognised image" },
        { "truncated image", ["--model", "MODEL", "--image", "TRUNCATED", "--prompt", "hi"], "half.png: truncated or corrupt image data" },
        { "empty prompt", ["--model", "MODEL", "--image", "IMG", "--prompt", "   "], "question is empty" },
        { "both prompts", ["--model", "MODEL", "--image", "IMG", "--prompt", "a", "--raw-prompt", "b"], "give exactly one of --prompt and --raw-prompt" },
        { "bad aspect", ["--model", "MODEL", "--image", "IMG", "--prompt", "a", "--image-aspect", "stretch"], "--image-aspect must be pad or crop" },
        { "typo option", ["--model", "MODEL", "--image", "IMG", "--prompt", "a", "--max-new-token", "3"], "unknown option --max-new-token" },
        { "too long", ["--model", "MODEL", "--image", "IMG", "--prompt", "LONG"], "the model supports 1024 positions" },
        { "unsupported arch", ["--model", "QWEN", "--image", "IMG", "--prompt", "a"], "unsupported architecture Qwen2VLForConditionalGeneration" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputGivesAClearMessageExitCode2AndLeavesTheOutputAlone(string _, string[] args, string message)
    {
        using var tmp = new Fixture.TempDir();
        var bytes = File.ReadAllBytes(Fixture.Image("wide.png"));
        File.WriteAllBytes(tmp["half.png"], bytes[..(bytes.Length / 2)]);
        Directory.CreateDirectory(tmp["qwen"]);
        File.WriteAllText(tmp["qwen/config.json"], File.ReadAllText(Path.Combine(Fixture.Checkpoint, "config.json"))
            .Replace("LlavaForConditionalGeneration", "Qwen2VLForConditionalGeneration").Replace("\"llava\"", "\"qwen2_vl\""));
        string output = tmp["out.safetensors"];
        File.WriteAllText(output, "an earlier run that must survive");
        var resolved = args.Select(a => a switch
        {
            "MODEL" => Fixture.Checkpoint,
            "IMG" => Fixture.Image("wide.png"),
            "CONFIG" => Path.Combine(Fixture.Checkpoint, "config.json"),
            "TRUNCATED" => tmp["half.png"],
            "QWEN" => tmp["qwen"],
            "LONG" => string.Join(' ', Enumerable.Repeat("describe the picture", 200)),
            _ => a,
        }).Concat(["--out", output]).ToArray();

        var r = Cli(["infer", .. resolved]);

        Assert.Equal(2, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr); // a message, not a stack trace
        Assert.Equal("an earlier run that must survive", File.ReadAllText(output));
        Assert.Equal(["half.png", "out.safetensors"], Directory.GetFiles(tmp.Path).Select(Path.GetFileName).Order().ToArray());
    }

    [Fact]
    public void CudaDeviceRunsWhereLibtorchHasCudaAndIsRefusedClearlyElsewhere()
    {
        using var tmp = new Fixture.TempDir();
        var r = Cli("infer", "--model", Fixture.Checkpoint, "--image", Fixture.Image("wide.png"), "--prompt", "What is in the picture?",
            "--device", "cuda", "--max-new-tokens", "8", "--out", tmp["cuda.safetensors"]);
        if (TorchSharp.torch.cuda.is_available())
        {
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var artifact = SafeTensorsFile.Open(tmp["cuda.safetensors"]);
            Assert.Equal(Fixture.Tensor<long>(Fixture.Run("wide-pad"), "generated_ids"), AttentionArtifact.Read<long>(artifact, "generated_ids").Data);
        }
        else
        {
            Assert.Equal(2, r.ExitCode);
            Assert.Contains("--device cuda: no CUDA device is available", r.Stderr);
            Assert.False(File.Exists(tmp["cuda.safetensors"]));
        }
    }

    [Fact]
    public void UnknownCommandAndNoArgumentsShowUsage()
    {
        var r = Cli("paint");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("unknown command 'paint'", r.Stderr);
        Assert.Contains("infer", r.Stderr);
        Assert.Equal(2, Cli().ExitCode);
    }

    [Fact]
    public void CompareReportsDifferencesBetweenArtifacts()
    {
        var r = Cli("compare", Fixture.Run("wide-pad"), Fixture.Run("wide-pad"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("| attention | [8, 3, 4, 598] | [8, 3, 4, 598] | 57408 values | max abs diff 0.00E+000 |", r.Stdout);
        Assert.Contains("| generated_ids | [8] | [8] | 8 values | equal |", r.Stdout);
        var differ = Cli("compare", Fixture.Run("wide-pad"), Fixture.Run("tall-crop"));
        Assert.Contains("| generated_ids | [8] | [8] | 8 values | differ (first at flat index 0) |", differ.Stdout);
    }

    [Fact]
    public void BenchTimesOnlyTheRunsAfterItsWarmUps()
    {
        var r = Cli("bench", "--model", Fixture.Checkpoint, "--image", Fixture.Image("wide.png"), "--runs", "2", "--warmup", "3",
            "--max-new-tokens", "2");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var rows = r.Stdout.Split('\n').Where(l => l.StartsWith("| ") && !l.StartsWith("| run")).Select(l => l.Split('|')[1].Trim()).ToList();
        Assert.Equal(["warm-up", "warm-up", "warm-up", "1", "2"], rows);
        // The total is preprocessing plus the model's part; the summary gives both medians.
        Assert.Matches(@"median total: [\d.]+ ms; best total: [\d.]+ ms; median model \(vision \+ prefill \+ decode\): [\d.]+ ms", r.Stdout);
    }
}
