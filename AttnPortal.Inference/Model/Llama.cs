using System.Collections.Concurrent;
using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using AttnPortal.Inference.Generation;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Model;

// The LLaMA decoder as transformers structures it (LlamaModel → embed_tokens, layers[i], norm), extended with what an
// attention tool needs: a preallocated KV cache, per-layer masks (attention schedules, sliding windows) and, per layer,
// the attention row of the last query position. Mistral and Qwen2 have the same module tree and weight names; they
// differ only in what LlamaConfig records (sliding window; biases on q/k/v).

public sealed class LlamaRmsNorm : nn.Module<Tensor, Tensor>
{
    // torch.rms_norm normalises in float32 whatever the weights' dtype, as HF does, and on CUDA runs as one fused
    // kernel instead of the eight of the spelled-out formula (a tenth of a 7B decoding step). TorchSharp does not
    // bind it, so it is called through a one-line TorchScript function, one per epsilon: epsilon is written into the
    // script because TorchSharp passes a float argument as a Scalar the garbage collector may free while the call is
    // still reading it (seen under parallel tests); tensor arguments are held by the caller.
    private static readonly ConcurrentDictionary<double, jit.CompilationUnit> Scripts = new();

    private static jit.CompilationUnit Compile(double eps) => torch.jit.compile($"""
        def rms_norm(x: Tensor, weight: Tensor) -> Tensor:
            return torch.rms_norm(x, [x.size(-1)], weight, {eps.ToString("E16", CultureInfo.InvariantCulture)})

        """);

    private readonly Parameter weight;
    private readonly jit.CompilationUnit _script;

    public LlamaRmsNorm(long size, double eps, ParameterFactory p) : base(nameof(LlamaRmsNorm))
    {
        weight = p.Empty(size);
        _script = Scripts.GetOrAdd(eps, Compile);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => (Tensor)_script.invoke("rms_norm", x, weight);
}

public sealed class LlamaMlp : nn.Module
{
    private readonly Linear gate_proj, up_proj, down_proj;
    private readonly FusedLinear _gateUp;
    private readonly long _intermediate;

    public LlamaMlp(LlamaConfig c, ParameterFactory p) : base(nameof(LlamaMlp))
    {
        _gateUp = new FusedLinear(c.HiddenSize, [c.IntermediateSize, c.IntermediateSize], c.MlpBias, p);
        (gate_proj, up_proj) = (_gateUp.Parts[0], _gateUp.Parts[1]);
        down_proj = new Linear(c.IntermediateSize, c.HiddenSize, c.MlpBias, p);
        _intermediate = c.IntermediateSize;
        RegisterComponents();
    }

    /// <summary>residual + down(silu(gate(x)) · up(x)), summed into <paramref name="residual"/>.</summary>
    public Tensor AddTo(Tensor residual, Tensor x)
    {
        var gateUp = _gateUp.Forward(x);
        var hidden = DecodeKernels.Available(gateUp.device)
            ? DecodeKernels.SiluMul(gateUp)
            : nn.functional.silu(gateUp.narrow(-1, 0, _intermediate)) * gateUp.narrow(-1, _intermediate, _intermediate);
        return down_proj.AddTo(residual, hidden);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _gateUp.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Rotary position tables for every position the model supports, computed once in float32 like HF.</summary>
public sealed class RotaryTables : IDisposable
{
    // _sin has its first half negated: rotate_half(x) · sin = [x₂, x₁] · [−sin₁, sin₂], so a rotation is one
    // concatenation, one product and one fused multiply-add instead of a negation, a concatenation, two products and a sum.
    private readonly Tensor _cos, _sin;

    public RotaryTables(LlamaConfig c, Device device, ScalarType dtype)
    {
        using var _ = torch.NewDisposeScope();
        var exponents = torch.arange(0, c.HeadDim, 2, dtype: ScalarType.Int64).to(ScalarType.Float32) / c.HeadDim;
        var invFreq = 1.0f / torch.pow(torch.tensor((float)c.RopeTheta), exponents);
        var positions = torch.arange(c.MaxPositionEmbeddings, dtype: ScalarType.Int64).to(ScalarType.Float32);
        var freqs = torch.outer(positions, invFreq);
        var emb = torch.cat([freqs, freqs], -1);
        long half = c.HeadDim / 2;
        var sin = emb.sin();
        sin.narrow(-1, 0, half).neg_();
        _cos = emb.cos().to(dtype, device).MoveToOuterDisposeScope();
        _sin = sin.to(dtype, device).MoveToOuterDisposeScope();
    }

    /// <summary>The cos and sin rows of positions 0..n-1 (a prefill).</summary>
    public (Tensor Cos, Tensor Sin) First(long n) => (_cos.narrow(0, 0, n), _sin.narrow(0, 0, n));

    /// <summary>The cos and sin rows of the one position held, on the device, by <paramref name="position"/> ([1]):
    /// looked up once per decoding step and shared by every layer.</summary>
    public (Tensor Cos, Tensor Sin) At(Tensor position) => (_cos.index_select(0, position), _sin.index_select(0, position));

    /// <summary>Rotates q or k ([B, heads, n, d]) by the rows <see cref="First"/> or <see cref="At"/> returned.</summary>
    public static Tensor Apply(Tensor x, (Tensor Cos, Tensor Sin) at)
    {
        long half = x.shape[3] / 2;
        var swapped = torch.cat([x.narrow(-1, half, half), x.narrow(-1, 0, half)], -1);
        return torch.addcmul(x * at.Cos, swapped, at.Sin, 1);
    }

    public void Dispose()
    {
        _cos.Dispose();
        _sin.Dispose();
    }
}

/// <summary>Keys and values of one layer for every position so far, in a buffer sized for the whole run.</summary>
public sealed class LayerKvCache(Tensor keys, Tensor values) : IDisposable
{
    public Tensor Keys { get; } = keys;     // [1, kvHeads, capacity, headDim]
    public Tensor Values { get; } = values;

    public void Dispose()
    {
        Keys.Dispose();
        Values.Dispose();
    }
}

public sealed class LlamaAttention : nn.Module
{
    private readonly Linear q_proj, k_proj, v_proj, o_proj;
    private readonly FusedLinear _qkv;
    private readonly int _heads, _kvHeads, _headDim;
    private readonly double _scale;

    public LlamaAttention(LlamaConfig c, ParameterFactory p) : base(nameof(LlamaAttention))
    {
        (_heads, _kvHeads, _headDim) = (c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim);
        _qkv = new FusedLinear(c.HiddenSize, [_heads * _headDim, _kvHeads * _headDim, _kvHeads * _headDim], c.QkvBias, p);
        (q_proj, k_proj, v_proj) = (_qkv.Parts[0], _qkv.Parts[1], _qkv.Parts[2]);
        o_proj = new Linear(c.NumAttentionHeads * c.HeadDim, c.HiddenSize, c.OutputBias, p);
        _scale = 1.0 / Math.Sqrt(c.HeadDim);
        RegisterComponents();
    }

    /// <summary>q and k rotated ([1, heads, n, d], [1, kvHeads, n, d]; one rotation for both) and v, from one product.</summary>
    private (Tensor Q, Tensor K, Tensor V) Project(Tensor x, (Tensor Cos, Tensor Sin) rotary)
    {
        long n = x.shape[1];
        var qkv = _qkv.Forward(x).view(1, n, _heads + 2 * _kvHeads, _headDim).transpose(1, 2);
        var qk = RotaryTables.Apply(qkv.narrow(1, 0, _heads + _kvHeads), rotary);
        return (qk.narrow(1, 0, _heads), qk.narrow(1, _heads, _kvHeads), qkv.narrow(1, _heads + _kvHeads, _kvHeads));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _qkv.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>
    /// The prompt, positions 0..n-1: every row is needed for the output but only the last one is kept, so the fused
    /// kernel computes the output and the kept row is recomputed on its own (numerically the same row).
    /// </summary>
    /// <param name="x">[1, n, hidden].</param>
    /// <param name="captureRow">[heads, ≥ n]: receives the attention probabilities of the last position.</param>
    /// <param name="mask">[n, n] bool, true = may attend; null = plain causal.</param>
    public Tensor Prefill(Tensor x, RotaryTables rope, LayerKvCache cache, Tensor? captureRow, Tensor? mask)
    {
        long n = x.shape[1];
        var (q, k, v) = Project(x, rope.First(n));
        cache.Keys.narrow(2, 0, n).copy_(k);
        cache.Values.narrow(2, 0, n).copy_(v);
        var output = mask is null
            ? nn.functional.scaled_dot_product_attention(q, RepeatKv(k), RepeatKv(v), is_casual: true)
            : nn.functional.scaled_dot_product_attention(q, RepeatKv(k), RepeatKv(v), mask.unsqueeze(0).unsqueeze(0));
        if (captureRow is not null)
        {
            var scores = Scores(q.narrow(2, n - 1, 1), k);
            if (mask is not null) scores = scores.masked_fill(mask.narrow(0, n - 1, 1).logical_not(), double.NegativeInfinity);
            captureRow.narrow(1, 0, n).copy_(scores.softmax(-1, ScalarType.Float32)[0, .., 0, ..]);
        }
        return output.transpose(1, 2).reshape(1, n, _heads * _headDim);
    }

    /// <summary>
    /// One decoding step whose shapes do not depend on how far the run has got, so that it can be replayed from a CUDA
    /// graph: the position lives on the device, the new key and value are written at it, and the query attends over the
    /// whole cache with every key beyond it (and every key its schedule forbids) masked. The cache is zero-filled, so
    /// those keys contribute exactly nothing. On CUDA with the fused kernels (<see cref="DecodeKernels"/>) all of it
    /// after the q/k/v product is one kernel.
    /// </summary>
    /// <param name="position">[1] on the device: the position of the token fed in.</param>
    /// <param name="rotary">The cos and sin rows of that position (<see cref="RotaryTables.At"/>).</param>
    /// <param name="captureRow">[heads, capacity]: receives the attention probabilities.</param>
    /// <param name="maskRow">[capacity] float32: 0 for the keys this layer's query may attend to, −∞ for the others.</param>
    public Tensor Decode(Tensor x, Tensor position, (Tensor Cos, Tensor Sin) rotary, LayerKvCache cache, Tensor captureRow, Tensor maskRow)
    {
        if (DecodeKernels.CanAttend(x.device, x.dtype, _headDim, cache.Keys.shape[2]))
            return DecodeKernels.Attend(_qkv.Forward(x), rotary, position, cache, maskRow, _scale, captureRow, _heads, _headDim);
        var (q, k, v) = Project(x, rotary);
        cache.Keys.index_copy_(2, position, k);
        cache.Values.index_copy_(2, position, v);
        // mask + scale · (q Kᵀ) in one kernel, in float32 (the mask row's type): adding 0 or −∞ is masked_fill without
        // its second kernel, and the softmax then needs no conversion of its own.
        var scores = torch.add(maskRow, GroupedMatmul(q, cache.Keys.transpose(2, 3)), _scale);
        var probs = scores.softmax(-1); // [1, heads, 1, capacity]
        captureRow.copy_(probs[0, .., 0, ..]);
        var output = GroupedMatmul(probs.to(x.dtype), cache.Values);
        return output.transpose(1, 2).reshape(1, 1, _heads * _headDim);
    }

    /// <summary>residual + o_proj(attention output), summed into <paramref name="residual"/>.</summary>
    public Tensor Output(Tensor residual, Tensor attention) => o_proj.AddTo(residual, attention);

    /// <summary>q Kᵀ / √d for one query row, in the model's dtype as HF's eager attention; the callers mask it (every row
    /// allows at least one key: itself, or position 0 in the seed's decoding rows) and take the softmax in float32, so
    /// masked keys get exactly 0.</summary>
    private Tensor Scores(Tensor q, Tensor keys) => GroupedMatmul(q, keys.transpose(2, 3)) * _scale;

    /// <summary>[1, heads, m, a] × [1, kvHeads, a, b] without materialising repeated KV heads (grouped-query attention).</summary>
    private Tensor GroupedMatmul(Tensor perHead, Tensor perKvHead)
    {
        int group = _heads / _kvHeads;
        long m = perHead.shape[2], a = perHead.shape[3];
        var grouped = perHead.reshape(1, _kvHeads, group * m, a);
        var result = torch.matmul(grouped, perKvHead);
        return result.reshape(1, _heads, m, result.shape[3]);
    }

    private Tensor RepeatKv(Tensor t)
    {
        int group = _heads / _kvHeads;
        if (group == 1) return t;
        long s = t.shape[2];
        return t.unsqueeze(2).expand(1, _kvHeads, group, s, _headDim).reshape(1, _heads, s, _headDim);
    }
}

public sealed class LlamaDecoderLayer : nn.Module
{
    private readonly LlamaAttention self_attn;
    private readonly LlamaMlp mlp;
    private readonly LlamaRmsNorm input_layernorm, post_attention_layernorm;

    public LlamaDecoderLayer(LlamaConfig c, ParameterFactory p) : base(nameof(LlamaDecoderLayer))
    {
        self_attn = new LlamaAttention(c, p);
        mlp = new LlamaMlp(c, p);
        input_layernorm = new LlamaRmsNorm(c.HiddenSize, c.RmsNormEps, p);
        post_attention_layernorm = new LlamaRmsNorm(c.HiddenSize, c.RmsNormEps, p);
        RegisterComponents();
    }

    // The residual stream is summed into in place by the output products (Linear.AddTo): x is always this layer's
    // own tensor (the embeddings or the previous layer's output), never a caller's.
    public Tensor Prefill(Tensor x, RotaryTables rope, LayerKvCache cache, Tensor? captureRow, Tensor? mask)
    {
        x = self_attn.Output(x, self_attn.Prefill(input_layernorm.forward(x), rope, cache, captureRow, mask));
        return mlp.AddTo(x, post_attention_layernorm.forward(x));
    }

    public Tensor Decode(Tensor x, Tensor position, (Tensor Cos, Tensor Sin) rotary, LayerKvCache cache, Tensor captureRow, Tensor maskRow)
    {
        x = self_attn.Output(x, self_attn.Decode(input_layernorm.forward(x), position, rotary, cache, captureRow, maskRow));
        return mlp.AddTo(x, post_attention_layernorm.forward(x));
    }
}

public sealed class LlamaModel : nn.Module
{
    private readonly Embedding embed_tokens;
    private readonly ModuleList<LlamaDecoderLayer> layers;
    private readonly LlamaRmsNorm norm;

    public LlamaModel(LlamaConfig c, ParameterFactory p) : base(nameof(LlamaModel))
    {
        embed_tokens = new Embedding(c.VocabSize, c.HiddenSize, p);
        layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new LlamaDecoderLayer(c, p)).ToArray());
        norm = new LlamaRmsNorm(c.HiddenSize, c.RmsNormEps, p);
        RegisterComponents();
    }

    public Embedding EmbedTokens => embed_tokens;

    /// <summary>The prompt (see <see cref="LlamaAttention.Prefill"/>). The hidden states are summed into
    /// <paramref name="inputsEmbeds"/> in place.</summary>
    /// <param name="captureStep">[layers, heads, ≥ prompt] or null: where each layer writes its last-row attention.</param>
    /// <param name="masks">Per-layer masks (schedule, sliding window); null = causal everywhere.</param>
    public Tensor Prefill(Tensor inputsEmbeds, RotaryTables rope, IReadOnlyList<LayerKvCache> cache, Tensor? captureStep,
        LayerMasks? masks = null)
    {
        var x = inputsEmbeds;
        long n = x.shape[1];
        for (int i = 0; i < layers.Count; i++)
        {
            // Unlike Python's reference counting, a dispose scope keeps every tensor made in it until it ends: one
            // scope for the whole prompt would hold every layer's activations at once (~6 MB per prompt token on a 7B
            // model). The layer sums into x in place, so nothing it makes outlives its own scope.
            using var layer = torch.NewDisposeScope();
            x = layers[i].Prefill(x, rope, cache[i], captureStep?[i], masks?.For(i, n));
        }
        return norm.forward(x);
    }

    /// <summary>One static-shape decoding step (see <see cref="LlamaAttention.Decode"/>).</summary>
    /// <param name="captureStep">[layers, heads, capacity]: each layer's attention row.</param>
    /// <param name="maskRows">Per layer, the additive [capacity] mask row of its query (0 allowed, −∞ not).</param>
    public Tensor Decode(Tensor inputsEmbeds, Tensor position, RotaryTables rope, IReadOnlyList<LayerKvCache> cache, Tensor captureStep,
        IReadOnlyList<Tensor> maskRows)
    {
        var x = inputsEmbeds;
        var rotary = rope.At(position);
        for (int i = 0; i < layers.Count; i++)
            x = layers[i].Decode(x, position, rotary, cache[i], captureStep[i], maskRows[i]);
        return norm.forward(x);
    }
}
