using TorchSharp;
using static TorchSharp.torch;

namespace AttnPortal.Inference.Model;

public sealed class LlavaMultiModalProjector : nn.Module<Tensor, Tensor>
{
    private readonly Linear linear_1, linear_2;
    private readonly string _act;

    public LlavaMultiModalProjector(LlavaConfig c, ParameterFactory p) : base(nameof(LlavaMultiModalProjector))
    {
        linear_1 = new Linear(c.Vision.HiddenSize, c.Text.HiddenSize, c.ProjectorBias, p);
        linear_2 = new Linear(c.Text.HiddenSize, c.Text.HiddenSize, c.ProjectorBias, p);
        _act = c.ProjectorHiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => linear_2.forward(Activations.Apply(_act, linear_1.forward(x)));
}

public sealed class LlavaModel : nn.Module
{
    private readonly ClipVisionModel vision_tower;
    private readonly LlavaMultiModalProjector multi_modal_projector;
    private readonly LlamaModel language_model;
    private readonly LlavaConfig _config;

    public LlavaModel(LlavaConfig c, ParameterFactory p) : base(nameof(LlavaModel))
    {
        vision_tower = new ClipVisionModel(c.Vision, p);
        multi_modal_projector = new LlavaMultiModalProjector(c, p);
        language_model = new LlamaModel(c.Text, p);
        _config = c;
        RegisterComponents();
    }

    public LlamaModel LanguageModel => language_model;

    /// <summary>[images, image tokens, text hidden]: the vision features LLaVA splices into the prompt.</summary>
    public Tensor ImageFeatures(Tensor pixelValues)
    {
        var hidden = vision_tower.HiddenState(pixelValues, _config.VisionFeatureLayer);
        if (_config.VisionFeatureSelectStrategy == "default") hidden = hidden.narrow(1, 1, hidden.shape[1] - 1); // drop CLS
        return multi_modal_projector.forward(hidden);
    }

    /// <summary>Token embeddings with every image placeholder replaced, in order, by an image feature vector.</summary>
    public Tensor PromptEmbeddings(Tensor inputIds, Tensor? imageFeatures)
    {
        var embeds = language_model.EmbedTokens.forward(inputIds);
        if (imageFeatures is null) return embeds;
        var mask = inputIds.eq(_config.ImageTokenId).unsqueeze(-1).expand_as(embeds);
        return embeds.masked_scatter(mask, imageFeatures.to(embeds.dtype));
    }
}

/// <summary>LlavaForConditionalGeneration: the LLaVA model plus the LM head, keyed model.* and lm_head.*.</summary>
public sealed class LlavaForConditionalGeneration : nn.Module
{
    private readonly LlavaModel model;
    private readonly Linear lm_head;

    public LlavaForConditionalGeneration(LlavaConfig c, ParameterFactory p) : base(nameof(LlavaForConditionalGeneration))
    {
        model = new LlavaModel(c, p);
        lm_head = new Linear(c.Text.HiddenSize, c.Text.VocabSize, false, p);
        Config = c;
        RegisterComponents();
    }

    public LlavaConfig Config { get; }
    public LlavaModel Model => model;
    public Tensor Logits(Tensor hidden) => lm_head.forward(hidden);
}
