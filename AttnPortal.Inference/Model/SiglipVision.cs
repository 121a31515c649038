using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Model;

// The SigLIP vision tower as transformers structures it (SiglipVisionModel → vision_model → embeddings, encoder.layers[i],
// post_layernorm, head). LLaVA reads an encoder layer's output, so post_layernorm and the pooling head are not built
// (CheckpointLoader skips their weights).

public sealed class SiglipVisionEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly PatchEmbedding patch_embedding;
    private readonly Embedding position_embedding;

    public SiglipVisionEmbeddings(VisionConfig c, ParameterFactory p) : base(nameof(SiglipVisionEmbeddings))
    {
        patch_embedding = new PatchEmbedding(c, p);
        position_embedding = new Embedding(c.NumPatches, c.HiddenSize, p);
        RegisterComponents();
    }

    // No CLS token: one position per patch.
    public override Tensor forward(Tensor pixelValues)
    {
        var patches = patch_embedding.forward(pixelValues).flatten(2).transpose(1, 2); // [B, patches, hidden]
        var positions = torch.arange(patches.shape[1], dtype: ScalarType.Int64, device: patches.device);
        return patches + position_embedding.forward(positions).unsqueeze(0);
    }
}

public sealed class SiglipVisionTransformer : nn.Module
{
    private readonly SiglipVisionEmbeddings embeddings;
    private readonly ClipEncoder encoder; // SiglipEncoder: the same layers under the same names

    public SiglipVisionTransformer(VisionConfig c, ParameterFactory p) : base(nameof(SiglipVisionTransformer))
    {
        embeddings = new SiglipVisionEmbeddings(c, p);
        encoder = new ClipEncoder(c, p);
        RegisterComponents();
    }

    public Tensor HiddenState(Tensor pixelValues, int featureLayer)
    {
        return encoder.HiddenState(embeddings.forward(pixelValues), featureLayer);
    }
}

/// <summary>SiglipVisionModel: only a wrapper, present so keys read vision_tower.vision_model.*.</summary>
public sealed class SiglipVisionModel : nn.Module, IVisionTower
{
    private readonly SiglipVisionTransformer vision_model;

    public SiglipVisionModel(VisionConfig c, ParameterFactory p) : base(nameof(SiglipVisionModel))
    {
        vision_model = new SiglipVisionTransformer(c, p);
        RegisterComponents();
    }

    public Tensor HiddenState(Tensor pixelValues, int featureLayer) => vision_model.HiddenState(pixelValues, featureLayer);
}
