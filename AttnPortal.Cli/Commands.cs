using System.Diagnostics;
using AttnPortal.Inference;
using AttnPortal.Inference.Artifacts;
using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Generation;
using AttnPortal.Inference.Images;

namespace AttnPortal.Cli;

public static class Commands
{
    public const int ExitOk = 0, ExitFailure = 1, ExitBadInput = 2, ExitCanceled = 130;

    private const string Usage = """
        AttnPortal.Cli — run LLaVA with per-token, per-layer, per-head attention capture.

          infer   --model DIR --image FILE (--prompt QUESTION | --raw-prompt TEXT) --out RUN.safetensors
                  [--image-aspect pad|crop] [--max-new-tokens N] [--device cpu|cuda] [--dtype float32|bfloat16|float16]
                  [--image-alpha drop|white] [--save-logits] [--adapter LORA_DIR]
                  [--schedule standard|alternating|alternating-cross] [--seed-decoding]
                  --model: a LLaVA-1.5, LLaVA-NeXT or LLaVA-OneVision checkpoint (HF or original layout), or a PEFT
                  LoRA adapter directory whose base_model_name_or_path is a local checkpoint
                  --schedule: default is the checkpoint's own (alternating for the seed's alternating model types)
                  --seed-decoding: odd-layer rows of generated tokens from row 0 of the modality mask, as the
                  LLaVA-Alternating-Attn code computes them (changes alternating-cross only)
                  --image-alpha: drop (default) discards transparency like transformers and LLaVA (Image.convert("RGB"));
                  white composites transparent pixels over white
          bench   --model DIR --image FILE [--prompt QUESTION] [--runs N] [--max-new-tokens N] [--device ...] [--dtype ...] [--schedule ...] [--profile TRACE.json] [--prompt-variants N] [--warmup N]
                  prints a table of load time, preprocessing, vision, prefill, decode, tokens/s and peak memory
                  --warmup: untimed runs first (default 1)
                  --profile: one more run under libtorch's profiler (GPU machine: needs the profiler shim), written
                  as a Chrome trace
                  --prompt-variants: run i adds (i mod N) sentences to the question (N prompt lengths in turn)
          compare A.safetensors B.safetensors
                  max absolute differences between two artifacts (or an artifact and an HF reference)
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
        try
        {
            if (args.Length == 0 || args[0] is "-h" or "--help" or "help") { Console.WriteLine(Usage); return args.Length == 0 ? ExitBadInput : ExitOk; }
            var rest = args.Skip(1);
            return args[0] switch
            {
                "infer" => Infer(new CliArgs(rest, new HashSet<string> { "--save-logits", "--seed-decoding" }), cancel.Token),
                "bench" => Bench.Run(new CliArgs(rest, new HashSet<string>())),
                "compare" => Compare.Run(args.Skip(1).ToArray()),
                _ => throw new UsageException($"unknown command '{args[0]}'"),
            };
        }
        catch (UsageException e) { return Fail($"{e.Message}\n\n{Usage}", ExitBadInput); }
        catch (OperationCanceledException) { return Fail("canceled", ExitCanceled); }
        catch (Exception e) when (InputErrors.IsInputError(e)) { return Fail(InputErrors.Message(e), ExitBadInput); }
        catch (Exception e) { return Fail($"internal error: {e}", ExitFailure); }
        finally { await Console.Error.FlushAsync(); }
    }

    private static int Fail(string message, int code)
    {
        Console.Error.WriteLine($"error: {message}");
        return code;
    }

    public static EngineOptions EngineOptionsFrom(CliArgs a) => new(a.Get("--device") ?? "cpu", a.Get("--dtype") ?? "float32", a.Get("--adapter"));

    public static AttentionSchedule? Schedule(string? value)
    {
        try { return value is null ? null : AttentionSchedules.Parse(value); }
        catch (ArgumentException e) { throw new UsageException("--schedule: " + e.Message); }
    }

    public static AspectMode Aspect(string? value) => value switch
    {
        null or "pad" => AspectMode.Pad,
        "crop" => AspectMode.Crop,
        _ => throw new UsageException($"--image-aspect must be pad or crop, not '{value}'"),
    };

    private static int Infer(CliArgs a, CancellationToken cancel)
    {
        string model = a.Require("--model"), imagePath = a.Require("--image"), output = a.Require("--out");
        string? question = a.Get("--prompt"), raw = a.Get("--raw-prompt");
        if ((question is null) == (raw is null)) throw new UsageException("give exactly one of --prompt and --raw-prompt");
        string alpha = a.Get("--image-alpha") ?? "drop";
        var image = RgbImage.Load(imagePath, alpha switch
        {
            "drop" => AlphaHandling.Drop,
            "white" => AlphaHandling.CompositeOverWhite,
            _ => throw new UsageException($"--image-alpha must be drop or white, not '{alpha}'"),
        });
        var request = new InferenceRequest(image, question, raw, Aspect(a.Get("--image-aspect")),
            a.Int("--max-new-tokens", 64), a.Flag("--save-logits"), Path.GetFileName(imagePath),
            Schedule(a.Get("--schedule")), a.Flag("--seed-decoding"));
        var options = EngineOptionsFrom(a);
        a.RejectUnknown();

        var clock = Stopwatch.StartNew();
        using var engine = LlavaEngine.Load(model, options);
        Console.Error.WriteLine($"loaded {engine.CheckpointDir} on {engine.Device} as {engine.DType} in {engine.LoadTime.TotalSeconds:F2} s");
        var result = engine.Run(request, p => Console.Error.WriteLine(
            $"step {p.Step + 1}/{p.MaxSteps}: {Printable(engine.Tokenizer.TokenText(p.TokenId))}"), cancel);
        var metadata = AttentionArtifact.Describe(result, engine, request);
        metadata["image"]!["alpha"] = alpha;
        AttentionArtifact.Write(output, result, metadata);
        var g = result.Generation;
        Console.Error.WriteLine($"wrote {output}: {g.Steps} steps x {g.Layers} layers x {g.Heads} heads x {g.Keys} keys in {clock.Elapsed.TotalSeconds:F2} s");
        Console.WriteLine(result.GeneratedText);
        return ExitOk;
    }

    public static string Printable(string s) => s.Replace("\n", "\\n").Replace("\t", "\\t");
}
