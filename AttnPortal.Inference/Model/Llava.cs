using TorchSharp;
using TorchSharp.Modules;
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

/// <summary>
/// How one anyres image's tile features become image tokens (HF's pack_image_features): the tiles' p×p feature maps
/// form a (TilesHigh·p) × (TilesWide·p) grid over the padded canvas; rows [RowStart, RowStart + Rows) and columns
/// [ColStart, ColStart + Cols) survive unpadding; OneVision may then resize that grid bilinearly to Downscaled; an
/// image_newline feature ends every row; the base view's p² features come first.
/// </summary>
public sealed record FeaturePacking(int TilesHigh, int TilesWide, int RowStart, int Rows, int ColStart, int Cols, (int Rows, int Cols)? Downscaled)
{
    public int Tiles => TilesHigh * TilesWide + 1;
}

public sealed class LlavaModel : nn.Module
{
    private readonly nn.Module vision_tower;
    private readonly LlavaMultiModalProjector multi_modal_projector;
    private readonly LlamaModel language_model;
    private readonly Parameter? image_newline;
    private readonly LlavaConfig _config;

    public LlavaModel(LlavaConfig c, ParameterFactory p) : base(nameof(LlavaModel))
    {
        vision_tower = c.Vision.IsSiglip ? new SiglipVisionModel(c.Vision, p) : new ClipVisionModel(c.Vision, p);
        multi_modal_projector = new LlavaMultiModalProjector(c, p);
        language_model = new LlamaModel(c.Text, p);
        if (c.IsAnyres) image_newline = p.Empty(c.Text.HiddenSize);
        _config = c;
        RegisterComponents();
    }

    public LlamaModel LanguageModel => language_model;

    /// <summary>[tiles, tokens per tile, text hidden]: projected vision features of each tile (or of the one image).</summary>
    public Tensor TileFeatures(Tensor pixelValues)
    {
        var hidden = ((IVisionTower)vision_tower).HiddenState(pixelValues, _config.VisionFeatureLayer);
        if (_config.VisionFeatureSelectStrategy == "default") hidden = hidden.narrow(1, 1, hidden.shape[1] - 1); // drop CLS
        return multi_modal_projector.forward(hidden);
    }

    /// <summary>[image tokens, text hidden]: the features spliced into the prompt, in order.</summary>
    public Tensor ImageFeatures(Tensor pixelValues, FeaturePacking? packing) => PackFeatures(TileFeatures(pixelValues), packing);

    /// <summary>[image tokens, text hidden] from <see cref="TileFeatures"/>' output.</summary>
    public Tensor PackFeatures(Tensor tiles, FeaturePacking? packing)
    {
        if (packing is null) return tiles.flatten(0, 1);
        if (image_newline is null) throw new InvalidOperationException("anyres packing needs a LLaVA-NeXT/OneVision model");
        if (tiles.shape[0] != packing.Tiles)
            throw new ArgumentException($"{tiles.shape[0]} tiles of features for a packing of {packing.Tiles}");
        int p = _config.Vision.PatchesPerSide;
        long hidden = tiles.shape[2];
        var baseView = tiles[0];
        // [tilesHigh, tilesWide, p, p, C] → [C, tilesHigh·p, tilesWide·p]: rows of tiles, rows of patches inside.
        var grid = tiles.narrow(0, 1, tiles.shape[0] - 1)
            .view(packing.TilesHigh, packing.TilesWide, p, p, hidden)
            .permute(4, 0, 2, 1, 3).reshape(hidden, packing.TilesHigh * p, packing.TilesWide * p);
        grid = grid.narrow(1, packing.RowStart, packing.Rows).narrow(2, packing.ColStart, packing.Cols);
        if (packing.Downscaled is var (rows, cols))
            grid = nn.functional.interpolate(grid.unsqueeze(0), [rows, cols], mode: InterpolationMode.Bilinear, align_corners: false)[0];
        var newline = image_newline.to(grid.dtype).view(hidden, 1, 1).expand(hidden, grid.shape[1], 1);
        var packed = torch.cat([grid, newline], 2).flatten(1, 2).transpose(0, 1);
        return torch.cat([baseView, packed], 0);
    }

    /// <summary>Token embeddings with every image position replaced, in order, by an image feature vector.</summary>
    /// <param name="imagePositions">[1, n] bool; null when the input has no image tokens.</param>
    public Tensor PromptEmbeddings(Tensor inputIds, Tensor? imagePositions, Tensor? imageFeatures)
    {
        // Image positions may hold a placeholder outside the vocabulary (the original LLaVA code uses -200).
        var ids = imagePositions is null ? inputIds : inputIds.masked_fill(imagePositions, 0);
        var embeds = language_model.EmbedTokens.forward(ids);
        if (imageFeatures is null || imagePositions is null) return embeds;
        var mask = imagePositions.unsqueeze(-1).expand_as(embeds);
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
