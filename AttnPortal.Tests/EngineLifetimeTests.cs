using AttnPortal.Inference.Generation;
using AttnPortal.Inference;
using AttnPortal.Inference.Images;
using TorchSharp;

namespace AttnPortal.Tests;

[CollectionDefinition(nameof(EngineLifetime), DisableParallelization = true)]
public sealed class EngineLifetime;

/// <summary>A portal worker runs job after job on one engine: no tensor may outlive its run, none the engine.</summary>
[Collection(nameof(EngineLifetime))]
public sealed class EngineLifetimeTests
{
    // Tensor wrappers not yet disposed, on any thread (this collection runs alone). It cannot judge disposal of a
    // model: new Parameter(t) moves t's native handle and the emptied wrapper stays counted forever.
    private static long LiveTensors => torch.Tensor.TotalCount;

    [Fact]
    public void RepeatedRunsLeaveNoLiveTensorsAndDisposeFreesTheModel()
    {
        var engine = LlavaEngine.Load(Fixture.Checkpoint);
        var request = new InferenceRequest(RgbImage.Load(Fixture.Image("wide.png")), "What is in the picture?", MaxNewTokens: 4, SaveLogits: true);
        engine.Run(request);
        long afterFirstRun = LiveTensors;

        for (int i = 0; i < 5; i++) engine.Run(request with { Aspect = i % 2 == 0 ? AspectMode.Crop : AspectMode.Pad });

        Assert.Equal(afterFirstRun, LiveTensors);
        var parameters = engine.Parameters.ToList();
        Assert.True(parameters.Count > 80 && parameters.All(p => !p.IsInvalid));
        engine.Dispose();
        Assert.All(parameters, p => Assert.True(p.IsInvalid, "a parameter's native tensor outlived the engine"));
    }

    [Fact]
    public void AnyresRunsUnderEveryScheduleLeaveNoLiveTensors()
    {
        // The LoRA adapter over the original-layout OneVision: adapter merge, tiles, packing, masks and seed rows.
        using var engine = LlavaEngine.Load(Path.Combine(FamilyParityTests.Root, "tiny-onevision-lora"));
        var request = new InferenceRequest(RgbImage.Load(Fixture.Image("wide.png")), "What is in the picture?", MaxNewTokens: 4);
        var first = engine.Run(request);
        Assert.Equal(AttentionSchedule.Alternating, first.Schedule); // the config names the seed's alternating model
        long afterFirstRun = LiveTensors;
        foreach (var schedule in Enum.GetValues<AttentionSchedule>())
            foreach (bool seed in new[] { false, true })
                engine.Run(request with { Schedule = schedule, SeedCompatibleDecoding = seed });
        Assert.Equal(afterFirstRun, LiveTensors);
    }

    [Fact]
    public void WithoutCudaDecodingStaysEagerAndNothingIsRecorded()
    {
        int calls = 0;
        Assert.False(CudaGraph.CanRecord(torch.CPU)); // the caller runs every step itself
        Assert.Throws<InvalidOperationException>(() => CudaGraph.Capture(torch.CPU, () => calls++));
        Assert.Equal(0, calls);
    }

    [Fact]
    public void CancellationStopsBetweenTokens()
    {
        using var engine = LlavaEngine.Load(Fixture.Checkpoint);
        using var cancel = new CancellationTokenSource();
        var steps = new List<int>();
        var request = new InferenceRequest(RgbImage.Load(Fixture.Image("wide.png")), "What is in the picture?", MaxNewTokens: 8);
        Assert.Throws<OperationCanceledException>(() => engine.Run(request, p => { steps.Add(p.Step); if (p.Step == 2) cancel.Cancel(); }, cancel.Token));
        Assert.Equal([0, 1, 2], steps);
    }
}
