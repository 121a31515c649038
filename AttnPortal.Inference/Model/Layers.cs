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

    /// <summary>Uninitialised storage that parameters will be views of (see <see cref="FusedLinear"/>).</summary>
    public Tensor Storage(params long[] shape) => torch.empty(shape, DType, Device);

    /// <summary>A parameter sharing <paramref name="view"/>'s storage: loading it writes into the shared tensor.</summary>
    public Parameter View(Tensor view) => new(view, requires_grad: false);
}

/// <summary>nn.Linear: y = x Wᵀ + b, with HF's parameter names.</summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;

    public Linear(long inFeatures, long outFeatures, bool hasBias, ParameterFactory p)
        : this(p.Empty(outFeatures, inFeatures), hasBias ? p.Empty(outFeatures) : null) { }

    /// <summary>Over given storage (rows of a <see cref="FusedLinear"/>).</summary>
    public Linear(Parameter weight, Parameter? bias) : base(nameof(Linear))
    {
        this.weight = weight;
        this.bias = bias;
        RegisterComponents();
    }

    public Tensor Weight => weight;
    public override Tensor forward(Tensor x) => DecodeKernels.CanMultiply(x, weight)
        ? DecodeKernels.Multiply(x, weight, bias)
        : nn.functional.linear(x, weight, bias);

    /// <summary>residual + x Wᵀ (+ b), accumulated into <paramref name="residual"/> by the matrix product itself
    /// (one kernel instead of a product and an addition). <paramref name="residual"/> must be contiguous and the
    /// caller's own.</summary>
    public Tensor AddTo(Tensor residual, Tensor x)
    {
        var flat = residual.view(-1, residual.shape[^1]);
        if (DecodeKernels.CanMultiply(x, weight)) DecodeKernels.AddProduct(flat, x, weight); // one row: the residual's too
        else flat.addmm_(x.reshape(-1, x.shape[^1]), weight.t());
        if (bias is not null) flat.add_(bias);
        return residual;
    }
}

/// <summary>
/// Linear layers that read the same input (q/k/v; gate/up), stored as one matrix so that a decoding step reads the
/// weights in one product instead of several. Each part is still a <see cref="Linear"/> under its HF name whose
/// parameters are views of its rows, so checkpoints load into the parts as before.
/// </summary>
public sealed class FusedLinear : IDisposable
{
    private readonly Tensor _weight;
    private readonly Tensor? _bias;

    public FusedLinear(long inFeatures, long[] outFeatures, bool hasBias, ParameterFactory p)
    {
        long total = outFeatures.Sum();
        _weight = p.Storage(total, inFeatures);
        _bias = hasBias ? p.Storage(total) : null;
        var parts = new Linear[outFeatures.Length];
        long row = 0;
        for (int i = 0; i < parts.Length; row += outFeatures[i], i++)
            parts[i] = new Linear(p.View(_weight.narrow(0, row, outFeatures[i])), _bias is null ? null : p.View(_bias.narrow(0, row, outFeatures[i])));
        Parts = parts;
    }

    public IReadOnlyList<Linear> Parts { get; }

    /// <summary>Every part's output, concatenated on the last dimension in the order of the parts.</summary>
    public Tensor Forward(Tensor x) => DecodeKernels.CanMultiply(x, _weight)
        ? DecodeKernels.Multiply(x, _weight, _bias)
        : nn.functional.linear(x, _weight, _bias);

    /// <summary>The shared storage (the parts' own handles are disposed with their module).</summary>
    public void Dispose()
    {
        _weight.Dispose();
        _bias?.Dispose();
    }
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
