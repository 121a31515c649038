using System.Diagnostics;
using AttnPortal.Inference;
using AttnPortal.Inference.Images;

namespace AttnPortal.Cli;

/// <summary>A benchmark, run on purpose: prints a table, asserts nothing.</summary>
public static class Bench
{
    public static int Run(CliArgs a)
    {
        string model = a.Require("--model"), imagePath = a.Require("--image");
        string question = a.Get("--prompt") ?? "What is shown in this image?";
        int runs = a.Int("--runs", 5), maxNew = a.Int("--max-new-tokens", 32);
        // Untimed runs first. A process's first runs also pay for fresh memory (the preprocessing's arrays land on
        // pages the GC has not used yet: ~7 ms of a LLaVA-1.5 run's preprocessing on the build machine for its first
        // four runs, ~2 ms from then on), so a worker's steady state needs a few.
        int warmup = Math.Max(1, a.Int("--warmup", 1));
        // Run i asks the question with i mod N extra sentences: N prompt lengths in turn, as a stream of different
        // questions would (and, past a 128-key boundary, a decoding workspace with more room).
        int variants = a.Int("--prompt-variants", 1);
        var aspect = Commands.Aspect(a.Get("--image-aspect"));
        string? profile = a.Get("--profile");
        var schedule = Commands.Schedule(a.Get("--schedule"));
        var options = Commands.EngineOptionsFrom(a);
        a.RejectUnknown();

        var image = RgbImage.Load(imagePath);
        var load = Stopwatch.StartNew();
        using var engine = LlavaEngine.Load(model, options);
        load.Stop();
        Console.WriteLine($"model {engine.CheckpointDir} ({engine.Config.Text.NumHiddenLayers} layers, {engine.Config.Text.NumAttentionHeads} heads) on {engine.Device} as {engine.DType}, {Environment.ProcessorCount} CPU cores, torch threads {TorchSharp.torch.get_num_threads()}");
        long weightBytes = Inference.Checkpoints.CheckpointLoader.WeightFiles(model).Sum(FileLength);
        Console.WriteLine($"load: {load.Elapsed.TotalSeconds:F2} s for {weightBytes / 1e6:F1} MB of safetensors ({weightBytes / 1e6 / load.Elapsed.TotalSeconds:F0} MB/s); {Memory()}");
        if (engine.Device.type == TorchSharp.DeviceType.CUDA)
            Console.WriteLine($"fused decoding kernels: {(Inference.Model.DecodeKernels.Available(engine.Device) ? "on" : "off (op by op)")}; "
                + $"decoding weight products: {(Inference.Model.DecodeKernels.GemvAvailable(engine.Device) ? "hand-written GEMV" : "cuBLAS")}");
        bool gpuPeak = engine.Device.type == TorchSharp.DeviceType.CUDA && GpuDiagnostics.ResetPeakMemory();
        Console.WriteLine();
        Console.WriteLine("| run | prompt tokens | new tokens | preprocess ms | vision ms | prefill ms | decode ms | total ms | decode tokens/s | GPU allocated MiB | GPU peak MiB |");
        Console.WriteLine("|----:|--------------:|-----------:|--------------:|----------:|-----------:|----------:|---------:|----------------:|------------------:|-------------:|");
        var totals = new List<double>();
        var models = new List<double>();
        var rates = new List<double>();
        long? peakBytes = null;
        // One extra run after the timed ones is profiled, so the profiler's overhead stays out of the table.
        int count = warmup + runs + (profile is null ? 0 : 1);
        for (int i = 0; i < count; i++)
        {
            bool profiled = profile is not null && i == count - 1;
            if (profiled) GpuDiagnostics.StartProfiler();
            if (gpuPeak) GpuDiagnostics.ResetPeakMemory();
            string asked = question + string.Concat(Enumerable.Repeat(" Answer in one short sentence.", i % Math.Max(1, variants)));
            var r = engine.Run(new InferenceRequest(image, asked, Aspect: aspect, MaxNewTokens: maxNew, Schedule: schedule));
            if (profiled) GpuDiagnostics.StopProfiler(profile!);
            // Peak over the warm-up and timed runs (weights included), as HF's max_memory_allocated is read.
            long? runPeak = gpuPeak ? GpuDiagnostics.PeakAllocated() : null;
            if (!profiled && runPeak is long rp) peakBytes = Math.Max(peakBytes ?? 0, rp);
            var g = r.Generation;
            // The model's part is the span HF's timed generate covers (its inputs are processed before the clock starts).
            double modelMs = (g.VisionTime + g.PrefillTime + g.DecodeTime).TotalMilliseconds;
            double total = r.PreprocessTime.TotalMilliseconds + modelMs;
            double rate = g.Steps > 1 ? (g.Steps - 1) / g.DecodeTime.TotalSeconds : double.NaN;
            string label = i < warmup ? "warm-up" : profiled ? "profiled" : (i - warmup + 1).ToString();
            // Allocated after the run (the model, its resident decoding workspace and graphs): flat from run to run
            // unless something leaks.
            string allocated = gpuPeak && GpuDiagnostics.Allocated() is long now ? $"{now >> 20}" : "";
            Console.WriteLine($"| {label} | {r.InputIds.Length} | {g.Steps} | {r.PreprocessTime.TotalMilliseconds:F1} | {g.VisionTime.TotalMilliseconds:F1} | {g.PrefillTime.TotalMilliseconds:F1} | {g.DecodeTime.TotalMilliseconds:F1} | {total:F1} | {rate:F1} | {allocated} | {(runPeak is long q ? $"{q >> 20}" : "")} |");
            if (i >= warmup && !profiled) { totals.Add(total); models.Add(modelMs); rates.Add(rate); }
        }
        Console.WriteLine();
        // What a worker's memory budget counts for this model (EngineCache): against the allocator's figures above.
        Console.WriteLine($"resident between runs (worker budget): {engine.ResidentBytes / (double)(1L << 30):F2} GiB = weights {engine.ParameterBytes / (double)(1L << 30):F2} GiB + KV cache, buffers and graph pools {(engine.ResidentBytes - engine.ParameterBytes) / (double)(1L << 20):F0} MiB");
        Console.WriteLine($"median total: {Median(totals):F1} ms; best total: {Best(totals):F1} ms; median model (vision + prefill + decode): {Median(models):F1} ms; best model: {Best(models):F1} ms; median decode: {Median(rates):F1} tokens/s; {(peakBytes is long p ? $"GPU peak allocated {p / (double)(1L << 30):F2} GiB; " : "")}{Memory()}");
        return Commands.ExitOk;
    }

    /// <summary>
    /// Host memory from /proc/self/status: the peak resident set (which also counts mapped checkpoint pages while a
    /// shard is being copied) and, now, private (anonymous) versus file-backed resident memory.
    /// </summary>
    private static string Memory()
    {
        if (!File.Exists("/proc/self/status")) return "";
        var fields = File.ReadAllLines("/proc/self/status").Select(l => l.Split(':', 2)).Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1].Trim());
        string MiB(string key) => fields.TryGetValue(key, out var v) ? $"{long.Parse(v.Split(' ')[0]) / 1024} MiB" : "?";
        return $"host memory: peak resident {MiB("VmHWM")}, now private {MiB("RssAnon")}, file-backed {MiB("RssFile")}";
    }

    private static double Best(List<double> xs) => xs.Count > 0 ? xs.Min() : double.NaN;

    /// <summary>A file's length through symbolic links (FileInfo gives a link's own size; HF's cache is links).</summary>
    private static long FileLength(string path)
    {
        using var file = File.OpenRead(path);
        return file.Length;
    }

    private static double Median(List<double> xs)
    {
        if (xs.Count == 0) return double.NaN;
        var s = xs.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
