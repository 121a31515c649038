using AttnPortal.Inference.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Tests;

public sealed class RmsNormTests
{
    private static Tensor Formula(Tensor x, Tensor weight, double eps) =>
        weight * (x * torch.rsqrt(x.pow(2).mean([-1], keepdim: true) + eps));

    [Theory]
    [InlineData(1e-5)]
    [InlineData(1e-6)]
    public void MatchesTheSpelledOutFormulaExactlyInFloat32(double eps)
    {
        using var norm = new LlamaRmsNorm(64, eps, new ParameterFactory(torch.CPU, ScalarType.Float32));
        using var weight = norm.parameters().Single();
        using (torch.no_grad()) weight.copy_(torch.randn(64, generator: torch.manual_seed(1)));
        using var x = torch.randn([3, 5, 64], generator: torch.manual_seed(2)) * 3;
        using var y = norm.forward(x);
        using var expected = Formula(x, weight, eps);
        Assert.Equal(0f, (y - expected).abs().max().item<float>());
    }

    [Fact]
    public void SurvivesGarbageCollectionDuringCallsFromManyThreads()
    {
        // Engines normalise on several threads while the collector runs; a float argument handed to TorchScript as a
        // Scalar was once freed mid-call this way (a corrupted epsilon), so the call must pass tensors only.
        using var norm = new LlamaRmsNorm(64, 1e-6, new ParameterFactory(torch.CPU, ScalarType.Float32));
        using (torch.no_grad()) norm.parameters().Single().copy_(torch.randn(64, generator: torch.manual_seed(3)));
        using var x = torch.randn([4, 64], generator: torch.manual_seed(4));
        using var expected = norm.forward(x);
        var done = false;
        var collector = new Thread(() => { while (!Volatile.Read(ref done)) { GC.Collect(); GC.WaitForPendingFinalizers(); } });
        collector.Start();
        try
        {
            Parallel.For(0, 4, _ =>
            {
                for (int i = 0; i < 8000; i++)
                {
                    using var scope = torch.NewDisposeScope();
                    Assert.Equal(0f, (norm.forward(x) - expected).abs().max().item<float>());
                }
            });
        }
        finally
        {
            Volatile.Write(ref done, true);
            collector.Join();
        }
    }
}
