using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Model;

// The CLIP ViT vision tower as transformers structures it (CLIPVisionModel → vision_model → embeddings, pre_layrnorm,
// encoder.layers[i], post_layernorm), so checkpoint keys map onto fields one to one. SigLIP's encoder has the same
// structure and names (SiglipVision.cs reuses it).

public sealed class ClipVisionEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Parameter class_embedding;
    private readonly PatchEmbedding patch_embedding;
    private readonly Embedding position_embedding;

    public ClipVisionEmbeddings(VisionConfig c, ParameterFactory p) : base(nameof(ClipVisionEmbeddings))
    {
        class_embedding = p.Empty(c.HiddenSize);
        patch_embedding = new PatchEmbedding(c, p);
        position_embedding = new Embedding(c.NumPatches + 1, c.HiddenSize, p);
        RegisterComponents();
    }

    public override Tensor forward(Tensor pixelValues)
    {
        var patches = patch_embedding.forward(pixelValues).flatten(2).transpose(1, 2); // [B, patches, hidden]
        var cls = class_embedding.expand(patches.shape[0], 1, -1);
        var x = torch.cat([cls, patches], 1);
        var positions = torch.arange(x.shape[1], dtype: ScalarType.Int64, device: x.device);
        return x + position_embedding.forward(positions).unsqueeze(0);
    }
}

/// <summary>The Conv2d that cuts the image into patch vectors (HF: patch_embedding.weight; SigLIP also has a bias).</summary>
public sealed class PatchEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;
    private readonly long _patch;

    public PatchEmbedding(VisionConfig c, ParameterFactory p) : base(nameof(PatchEmbedding))
    {
        weight = p.Empty(c.HiddenSize, c.NumChannels, c.PatchSize, c.PatchSize);
        if (c.IsSiglip) bias = p.Empty(c.HiddenSize);
        _patch = c.PatchSize;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.conv2d(x, weight, bias, strides: [_patch, _patch]);
}

public sealed class ClipAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear q_proj, k_proj, v_proj, out_proj;
    private readonly int _heads;

    public ClipAttention(VisionConfig c, ParameterFactory p) : base(nameof(ClipAttention))
    {
        q_proj = new Linear(c.HiddenSize, c.HiddenSize, true, p);
        k_proj = new Linear(c.HiddenSize, c.HiddenSize, true, p);
        v_proj = new Linear(c.HiddenSize, c.HiddenSize, true, p);
        out_proj = new Linear(c.HiddenSize, c.HiddenSize, true, p);
        _heads = c.NumAttentionHeads;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        long b = x.shape[0], n = x.shape[1], d = x.shape[2] / _heads;
        Tensor Split(Tensor t) => t.view(b, n, _heads, d).transpose(1, 2);
        // Vision attention is never captured, so the fused kernel is used (same softmax(QKᵀ/√d)V, no mask).
        var o = nn.functional.scaled_dot_product_attention(Split(q_proj.forward(x)), Split(k_proj.forward(x)), Split(v_proj.forward(x)));
        return out_proj.forward(o.transpose(1, 2).reshape(b, n, -1));
    }
}

public sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1, fc2;
    private readonly string _act;

    public ClipMlp(VisionConfig c, ParameterFactory p) : base(nameof(ClipMlp))
    {
        fc1 = new Linear(c.HiddenSize, c.IntermediateSize, true, p);
        fc2 = new Linear(c.IntermediateSize, c.HiddenSize, true, p);
        _act = c.HiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => fc2.forward(Activations.Apply(_act, fc1.forward(x)));
}

public sealed class ClipEncoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly ClipAttention self_attn;
    private readonly LayerNorm layer_norm1, layer_norm2;
    private readonly ClipMlp mlp;

    public ClipEncoderLayer(VisionConfig c, ParameterFactory p) : base(nameof(ClipEncoderLayer))
    {
        self_attn = new ClipAttention(c, p);
        layer_norm1 = new LayerNorm(c.HiddenSize, c.LayerNormEps, p);
        mlp = new ClipMlp(c, p);
        layer_norm2 = new LayerNorm(c.HiddenSize, c.LayerNormEps, p);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        x = x + self_attn.forward(layer_norm1.forward(x));
        return x + mlp.forward(layer_norm2.forward(x));
    }
}

public sealed class ClipEncoder : nn.Module
{
    private readonly ModuleList<ClipEncoderLayer> layers;

    public ClipEncoder(VisionConfig c, ParameterFactory p) : base(nameof(ClipEncoder))
    {
        layers = new ModuleList<ClipEncoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new ClipEncoderLayer(c, p)).ToArray());
        RegisterComponents();
    }

    /// <summary>HF's hidden_states[featureLayer] given the embeddings: index 0 is the input, index i the output of layer
    /// i-1 (negative counts from the end). LLaVA reads an intermediate layer, so the layers after it are skipped.</summary>
    public Tensor HiddenState(Tensor x, int featureLayer)
    {
        int count = featureLayer >= 0 ? featureLayer : layers.Count + 1 + featureLayer;
        for (int i = 0; i < count; i++)
        {
            // A dispose scope per layer frees its activations as it ends (see LlamaModel.Prefill).
            using var layer = torch.NewDisposeScope();
            x = layers[i].forward(x).MoveToOuterDisposeScope();
        }
        return x;
    }
}

public sealed class ClipVisionTransformer : nn.Module
{
    private readonly ClipVisionEmbeddings embeddings;
    private readonly LayerNorm pre_layrnorm; // sic: HF's spelling, kept so the weight keys match
    private readonly ClipEncoder encoder;
    private readonly LayerNorm post_layernorm;

    public ClipVisionTransformer(VisionConfig c, ParameterFactory p) : base(nameof(ClipVisionTransformer))
    {
        embeddings = new ClipVisionEmbeddings(c, p);
        pre_layrnorm = new LayerNorm(c.HiddenSize, c.LayerNormEps, p);
        encoder = new ClipEncoder(c, p);
        post_layernorm = new LayerNorm(c.HiddenSize, c.LayerNormEps, p); // loaded for completeness; LLaVA never applies it
        RegisterComponents();
    }

    /// <summary>HF's hidden_states[featureLayer]: index 0 is the pre-layernormed embeddings, index i the output of layer i-1.</summary>
    public Tensor HiddenState(Tensor pixelValues, int featureLayer)
    {
        return encoder.HiddenState(pre_layrnorm.forward(embeddings.forward(pixelValues)), featureLayer);
    }
}

/// <summary>A vision tower as LLaVA uses it: HF's hidden_states[featureLayer] for a batch of images.</summary>
public interface IVisionTower
{
    /// <summary>[images, tokens, hidden]: index 0 is the embeddings, index i the output of encoder layer i-1.</summary>
    Tensor HiddenState(Tensor pixelValues, int featureLayer);
}

/// <summary>CLIPVisionModel: only a wrapper, present so keys read vision_tower.vision_model.*.</summary>
public sealed class ClipVisionModel : nn.Module, IVisionTower
{
    private readonly ClipVisionTransformer vision_model;

    public ClipVisionModel(VisionConfig c, ParameterFactory p) : base(nameof(ClipVisionModel))
    {
        vision_model = new ClipVisionTransformer(c, p);
        RegisterComponents();
    }

    public Tensor HiddenState(Tensor pixelValues, int featureLayer) => vision_model.HiddenState(pixelValues, featureLayer);
}
