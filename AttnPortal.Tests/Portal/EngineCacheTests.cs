using AttnPortal.Inference;
using AttnPortal.Inference.Images;
using AttnPortal.Web.Services;
using Microsoft.Extensions.Logging.Abstractions;

namespace AttnPortal.Tests.Portal;

/// <summary>The worker's loaded models: kept between jobs within a memory budget, least recently used out.</summary>
public sealed class EngineCacheTests
{
    private static readonly ModelOptions Llava = new() { Name = "llava", Path = Fixture.Checkpoint };
    private static readonly ModelOptions OneVision = new() { Name = "onevision", Path = Path.Combine(FamilyParityTests.Root, "tiny-onevision") };
    private static readonly ModelOptions Mistral = new() { Name = "mistral", Path = Path.Combine(FamilyParityTests.Root, "tiny-next-mistral") };

    private static EngineCache Cache(double budgetGiB) => Cache(new WorkerOptions { ModelMemoryBudgetGiB = budgetGiB });

    private static EngineCache Cache(WorkerOptions worker)
    {
        var options = new PortalOptions { Worker = worker };
        return new EngineCache(new PortalPaths(Path.GetTempPath(), options), options, NullLogger<EngineCache>.Instance);
    }

    private static InferenceRequest Question() =>
        new(RgbImage.Load(Fixture.Image("wide.png")), "What is in the picture?", MaxNewTokens: 4);

    /// <summary>What the models' weights take, loaded or estimated, whichever is more: the cache checks the estimate
    /// before loading and the loaded weights after.</summary>
    private static double GiB(params ModelOptions[] models) => models.Sum(m =>
    {
        using var engine = LlavaEngine.Load(m.Path);
        return Math.Max(LlavaEngine.EstimateBytes(m.Path, m.DType), engine.ParameterBytes);
    }) / (double)(1L << 30);

    [Fact]
    public void TheSecondRunOnAModelReusesItAndTheBudgetEvictsTheLeastRecentlyUsed()
    {
        // Room for two of the three tiny models (each about 1 MB of float32 weights).
        using var cache = Cache(GiB(Llava, OneVision) * 1.05);
        var llava = cache.Get(Llava);
        Assert.Same(llava, cache.Get(Llava));
        var onevision = cache.Get(OneVision);
        Assert.Equal(["onevision", "llava"], cache.Loaded);
        Assert.Same(llava, cache.Get(Llava)); // used again: now the most recent
        Assert.Equal(["llava", "onevision"], cache.Loaded);

        var llavaWeights = llava.Parameters.ToList();
        var onevisionWeights = onevision.Parameters.ToList();
        cache.Get(Mistral); // needs room: OneVision, the least recently used, goes
        Assert.Equal(["mistral", "llava"], cache.Loaded);
        Assert.All(onevisionWeights, p => Assert.True(p.IsInvalid, "an evicted model's weights were not released"));
        Assert.All(llavaWeights, p => Assert.False(p.IsInvalid));

        cache.ReleaseAllBut("mistral");
        Assert.Equal(["mistral"], cache.Loaded);
        Assert.All(llavaWeights, p => Assert.True(p.IsInvalid));
    }

    [Fact]
    public void WhatARunLeavesResidentCountsInTheBudget()
    {
        var worker = new WorkerOptions { ModelMemoryBudgetGiB = 100 };
        using var cache = Cache(worker);
        var llava = cache.Get(Llava);
        Assert.Equal(llava.ParameterBytes, llava.ResidentBytes); // nothing run yet
        var result = llava.Run(Question());
        // The KV cache alone: keys and values of every layer, float32, for at least the run's keys.
        var text = llava.Config.Text;
        long keys = result.Generation.Keys;
        long bytesPerKey = 2L * text.NumHiddenLayers * text.NumKeyValueHeads * text.HeadDim * 4;
        long working = llava.ResidentBytes - llava.ParameterBytes;
        Assert.InRange(working, bytesPerKey * keys, 2 * bytesPerKey * (keys + 128));

        var onevision = cache.Get(OneVision);
        // Room for both models' weights, llava's working memory and half of what a OneVision run will leave.
        long oneVisionWorking;
        using (var probe = LlavaEngine.Load(OneVision.Path))
        {
            probe.Run(Question());
            oneVisionWorking = probe.ResidentBytes - probe.ParameterBytes;
        }
        Assert.True(oneVisionWorking > 0);
        worker.ModelMemoryBudgetGiB = (llava.ResidentBytes + onevision.ParameterBytes + oneVisionWorking / 2) / (double)(1L << 30);
        Assert.Same(onevision, cache.Get(OneVision));
        Assert.Equal(["onevision", "llava"], cache.Loaded); // the weights fit

        onevision.Run(Question());
        Assert.Equal(oneVisionWorking, onevision.ResidentBytes - onevision.ParameterBytes);
        var onevisionWeights = onevision.Parameters.ToList();
        Assert.Same(llava, cache.Get(Llava)); // over the budget now: OneVision, the least recently used, goes
        Assert.Equal(["llava"], cache.Loaded);
        Assert.All(onevisionWeights, p => Assert.True(p.IsInvalid));
    }

    [Fact]
    public void WithoutABudgetOnlyTheLastModelStays()
    {
        using var cache = Cache(0);
        var llava = cache.Get(Llava).Parameters.ToList();
        cache.Get(OneVision);
        Assert.Equal(["onevision"], cache.Loaded);
        Assert.All(llava, p => Assert.True(p.IsInvalid));
    }

    [Fact]
    public void EstimateMatchesWhatTheLoadedModelHolds()
    {
        using var cache = Cache(0);
        var engine = cache.Get(OneVision);
        // The estimate counts the checkpoint's tensors: the SigLIP head the model skips, not the tied lm_head it copies.
        double ratio = LlavaEngine.EstimateBytes(OneVision.Path, "float32") / (double)engine.ParameterBytes;
        Assert.InRange(ratio, 0.8, 1.25);
        Assert.Equal(LlavaEngine.EstimateBytes(OneVision.Path, "float32") / 2, LlavaEngine.EstimateBytes(OneVision.Path, "bfloat16"));
    }

    [Theory]
    [InlineData("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.10 GiB total capacity)", true)]
    [InlineData("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate 1073741824 bytes.", true)]
    [InlineData("shape '[1, 4]' is invalid for input of size 3", false)]
    public void OutOfMemoryIsRecognisedFromLibtorchsMessages(string message, bool expected)
    {
        Assert.Equal(expected, MemoryErrors.IsOutOfMemory(new System.Runtime.InteropServices.ExternalException(message)));
        Assert.Equal(expected, MemoryErrors.IsOutOfMemory(new InvalidOperationException("wrapped", new System.Runtime.InteropServices.ExternalException(message))));
    }
}
