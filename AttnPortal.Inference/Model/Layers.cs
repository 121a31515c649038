using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Model;

/// <summary>
/// Where new parameters live. Parameters are allocated uninitialised on the target device and dtype, because the
/// checkpoint overwrites every one of them: no random init, no CPU float32 copy of a 7B model.
/// </summary>
public sealed record ParameterFactory(Device Device, ScalarType DType)
{
    public Parameter Empty(params long[] shape) => new(torch.empty(shape, DType, Device), requires_grad: false);
}

/// <summary>nn.Linear: y = x Wᵀ + b, with HF's parameter names.</summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;

    public Linear(long inFeatures, long outFeatures, bool hasBias, ParameterFactory p) : base(nameof(Linear))
    {
        weight = p.Empty(outFeatures, inFeatures);
        if (hasBias) bias = p.Empty(outFeatures);
        RegisterComponents();
    }

    public Tensor Weight => weight;
    public override Tensor forward(Tensor x) => nn.functional.linear(x, weight, bias);
}

/// <summary>nn.LayerNorm with affine weight and bias.</summary>
public sealed class LayerNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly double _eps;

    public LayerNorm(long size, double eps, ParameterFactory p) : base(nameof(LayerNorm))
    {
        weight = p.Empty(size);
        bias = p.Empty(size);
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.layer_norm(x, [weight.shape[0]], weight, bias, _eps);
}

/// <summary>nn.Embedding: a lookup table whose rows are token vectors.</summary>
public sealed class Embedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public Embedding(long count, long dim, ParameterFactory p) : base(nameof(Embedding))
    {
        weight = p.Empty(count, dim);
        RegisterComponents();
    }

    public long Count => weight.shape[0];
    public override Tensor forward(Tensor ids) => weight.index_select(0, ids.flatten()).view([.. ids.shape, weight.shape[1]]);
}

public static class Activations
{
    /// <summary>The activations HF configs name (ACT2FN), in the precision HF computes them.</summary>
    public static Tensor Apply(string name, Tensor x) => name switch
    {
        "gelu" => nn.functional.gelu(x),
        "gelu_pytorch_tanh" => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
        "quick_gelu" => x * torch.sigmoid(x * 1.702),
        "silu" => nn.functional.silu(x),
        "relu" => nn.functional.relu(x),
        _ => throw new NotSupportedException($"unsupported activation '{name}'"),
    };
}
