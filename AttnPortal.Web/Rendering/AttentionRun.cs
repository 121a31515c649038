using System.Numerics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using AttnPortal.Inference;
using AttnPortal.Inference.Artifacts;
using AttnPortal.Inference.Checkpoints;
using AttnPortal.Inference.Images;

namespace AttnPortal.Web.Rendering;

/// <summary>
/// One run's attention artifact (README.md, "The attention artifact") read once into memory for a run view: the
/// <c>attention</c> tensor [steps, layers, heads, keys], ids, modality, token strings and the image views (the grids
/// the image tokens form and where each lies on the photo). Every query allocates its own result and nothing is
/// mutated after loading, so one instance serves concurrent requests.
/// </summary>
/// <remarks>
/// A LLaVA-1.5-7B run of N tokens holds N × 32 × 32 × (L + N − 1) floats: 83 MB for 32 tokens after a 601-token
/// prompt, 1.3 GB for 512. Step s is the query at prompt position L − 1 + s (step 0: the last prompt token; step s ≥ 1:
/// generated token s − 1 fed back), and its row is what chose <see cref="GeneratedIds"/>[s].
/// </remarks>
public sealed class AttentionRun
{
    private const long ReadChunkBytes = 256L << 20;

    private readonly float[] _attention;
    private readonly long[] _inputIds;
    private readonly long[] _generatedIds;
    private readonly KeyModality[] _modality;
    private readonly string[] _inputTokens;
    private readonly string[] _generatedTokens;
    private readonly ImageGridView[] _views;

    /// <summary>The file this run was read from, if any.</summary>
    public string? SourcePath { get; }
    public int Steps { get; }
    public int Layers { get; }
    public int Heads { get; }
    /// <summary>Keys per row: prompt length + steps − 1.</summary>
    public int Keys { get; }
    /// <summary>Prompt tokens (L), image tokens included.</summary>
    public int PromptLength => _inputIds.Length;
    public int ImageTokenStart { get; }
    public int ImageTokenCount { get; }
    /// <summary>
    /// The regular grids the image tokens form, each laid over a rectangle of the original image: LLaVA-1.5's one
    /// 24 × 24 "image"; for anyres models "base", "tiles" (newline tokens skipped) and "tile r,c". Never empty.
    /// </summary>
    public IReadOnlyList<ImageGridView> Views => _views;
    /// <summary>
    /// The size of the original image, the coordinate system of the views' frames. An artifact without metadata does
    /// not say: its one view is then taken to be the whole image, one pixel per patch.
    /// </summary>
    public int OriginalWidth { get; }
    public int OriginalHeight { get; }
    public IReadOnlyList<long> InputIds => _inputIds;
    public IReadOnlyList<long> GeneratedIds => _generatedIds;
    /// <summary>Per key: text, image or generated.</summary>
    public IReadOnlyList<KeyModality> Modality => _modality;
    /// <summary>The prompt's token strings (empty when the artifact has no metadata).</summary>
    public IReadOnlyList<string> InputTokens => _inputTokens;
    /// <summary>The generated token strings (empty when the artifact has no metadata).</summary>
    public IReadOnlyList<string> GeneratedTokens => _generatedTokens;
    public string? GeneratedText { get; }
    /// <summary>Where LLaVA-1.5's model frame lies on the original image (also its one view's frame); null for anyres runs
    /// and artifacts without metadata.</summary>
    public ImageGeometry? Geometry { get; }
    /// <summary>The <c>attnportal</c> metadata document, or null.</summary>
    public JsonObject? Metadata { get; }
    /// <summary>Memory held by the attention tensor.</summary>
    public long AttentionBytes => (long)_attention.Length * sizeof(float);

    /// <summary>Builds a run from tensors already in memory (the arrays are kept, not copied).</summary>
    /// <param name="attention">[steps, layers, heads, keys] with keys = inputIds.Length + steps − 1.</param>
    /// <param name="modality">Per key (0 text, 1 image, 2 generated); derived from the image token range when null.</param>
    /// <param name="views">The image token grids; when null the image tokens must form one square grid, laid over
    /// <paramref name="geometry"/>'s frame (or, without geometry, over the whole image).</param>
    /// <param name="originalSize">The original image's size; needed with <paramref name="views"/>, else taken from
    /// <paramref name="geometry"/>, else the grid itself.</param>
    public AttentionRun(float[] attention, int steps, int layers, int heads, long[] inputIds, long[] generatedIds,
        int imageTokenStart, int imageTokenCount, byte[]? modality = null, ImageGeometry? geometry = null,
        string[]? inputTokens = null, string[]? generatedTokens = null, string? generatedText = null,
        JsonObject? metadata = null, string? sourcePath = null,
        IReadOnlyList<ImageGridView>? views = null, (int Width, int Height)? originalSize = null)
    {
        ArgumentNullException.ThrowIfNull(attention);
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(generatedIds);
        if (steps <= 0 || layers <= 0 || heads <= 0)
            throw new ArgumentException($"steps, layers and heads must be positive (got {steps}, {layers}, {heads})");
        if (generatedIds.Length != steps)
            throw new ArgumentException($"{generatedIds.Length} generated ids for {steps} attention steps");
        if (inputIds.Length == 0) throw new ArgumentException("the prompt has no tokens");
        long keys = inputIds.Length + (long)steps - 1;
        if (attention.LongLength != (long)steps * layers * heads * keys)
            throw new ArgumentException($"attention has {attention.LongLength} values; [{steps}, {layers}, {heads}, {keys}] (keys = prompt {inputIds.Length} + steps − 1) needs {(long)steps * layers * heads * keys}");
        if (imageTokenCount <= 0 || imageTokenStart < 0 || imageTokenStart + (long)imageTokenCount > inputIds.Length)
            throw new ArgumentException($"image tokens [{imageTokenStart}, {imageTokenStart + (long)imageTokenCount}) do not lie inside the {inputIds.Length}-token prompt");
        var size = originalSize ?? (geometry is null ? null : (geometry.OriginalWidth, geometry.OriginalHeight));
        if (views is null)
        {
            int side = (int)Math.Round(Math.Sqrt(imageTokenCount));
            if (side * side != imageTokenCount)
                throw new ArgumentException($"{imageTokenCount} image tokens do not form a square grid (and no views say how they are laid out)");
            size ??= (side, side);
            views = [new ImageGridView("image", 0, side, side, side, geometry?.Frame ?? new ImageRect(0, 0, side, side))];
        }
        if (size is not { } imageSize) throw new ArgumentException("image views need the original image size");
        if (imageSize.Width <= 0 || imageSize.Height <= 0)
            throw new ArgumentException($"the original image size {imageSize.Width}×{imageSize.Height} is not positive");
        if (views.Count == 0) throw new ArgumentException("the image has no views");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var view in views)
        {
            if (view is null) throw new ArgumentException("a view is null");
            CheckView(view, imageTokenCount);
            if (!names.Add(view.Name)) throw new ArgumentException($"two views are named '{view.Name}'");
        }
        if (inputTokens is not null && inputTokens.Length != inputIds.Length)
            throw new ArgumentException($"{inputTokens.Length} input token strings for {inputIds.Length} input ids");
        if (generatedTokens is not null && generatedTokens.Length != steps)
            throw new ArgumentException($"{generatedTokens.Length} generated token strings for {steps} steps");

        _modality = new KeyModality[keys];
        if (modality is null)
        {
            for (int k = 0; k < keys; k++)
                _modality[k] = k >= inputIds.Length ? KeyModality.Generated
                    : k >= imageTokenStart && k < imageTokenStart + imageTokenCount ? KeyModality.Image : KeyModality.Text;
        }
        else
        {
            if (modality.Length != keys) throw new ArgumentException($"modality has {modality.Length} entries for {keys} keys");
            for (int k = 0; k < keys; k++)
            {
                if (modality[k] > (byte)KeyModality.Generated) throw new ArgumentException($"modality of key {k} is {modality[k]} (expected 0, 1 or 2)");
                _modality[k] = (KeyModality)modality[k];
            }
            for (int k = imageTokenStart; k < imageTokenStart + imageTokenCount; k++)
                if (_modality[k] != KeyModality.Image)
                    throw new ArgumentException($"key {k} lies in the image token range [{imageTokenStart}, {imageTokenStart + imageTokenCount}) but its modality is {_modality[k]}");
        }

        _attention = attention;
        (Steps, Layers, Heads, Keys) = (steps, layers, heads, (int)keys);
        (_inputIds, _generatedIds) = (inputIds, generatedIds);
        (ImageTokenStart, ImageTokenCount) = (imageTokenStart, imageTokenCount);
        (_views, OriginalWidth, OriginalHeight) = (views.ToArray(), imageSize.Width, imageSize.Height);
        _inputTokens = inputTokens ?? [];
        _generatedTokens = generatedTokens ?? [];
        (GeneratedText, Geometry, Metadata, SourcePath) = (generatedText, geometry, metadata, sourcePath);
    }

    /// <summary>
    /// Reads an artifact. Without <c>attnportal</c> metadata (e.g. the HF reference runs of the test fixtures) the
    /// image tokens are found from <c>modality</c>, else as the ids equal to <paramref name="imageTokenId"/>, else as
    /// the longest run of one repeated id; such a run has no geometry and no token strings.
    /// Problems with the file's content throw <see cref="InvalidDataException"/> naming the file.
    /// </summary>
    public static AttentionRun Open(string path, long? imageTokenId = null)
    {
        using var file = SafeTensorsFile.Open(path);
        string name = Path.GetFileName(path);
        var attInfo = Tensor(file, "attention", SafeTensorDType.F32, 4);
        var inputIds = Read<long>(file, "input_ids", SafeTensorDType.I64);
        var generatedIds = Read<long>(file, "generated_ids", SafeTensorDType.I64);
        byte[]? modality = file.Tensors.ContainsKey("modality") ? Read<byte>(file, "modality", SafeTensorDType.U8) : null;
        var meta = file.Metadata.ContainsKey(AttentionArtifact.MetadataKey) ? AttentionArtifact.ReadMetadata(file) : null;

        var shape = attInfo.Shape;
        if (shape.Any(d => d > int.MaxValue) || attInfo.ElementCount > Array.MaxLength)
            throw new InvalidDataException($"{name}: attention [{string.Join(", ", shape)}] is too large to hold in memory");
        int steps = (int)shape[0], layers = (int)shape[1], heads = (int)shape[2], keys = (int)shape[3];
        if (keys != inputIds.Length + steps - 1)
            throw new InvalidDataException($"{name}: attention has {keys} keys; a {inputIds.Length}-token prompt and {steps} steps give {inputIds.Length + steps - 1}");

        var image = meta?["image"] as JsonObject;
        int start, count;
        if (Int(image?["token_start"]) is int s && Int(image?["token_count"]) is int c) (start, count) = (s, c);
        else if (modality is not null && ContiguousRun(modality, (byte)KeyModality.Image) is { } run) (start, count) = run;
        else if (ImageTokensFromIds(inputIds, imageTokenId) is { } found) (start, count) = found;
        else throw new InvalidDataException($"{name}: cannot tell which tokens are the image (no metadata, no modality{(imageTokenId is null ? "" : $", no id {imageTokenId}")})");

        if (image?["grid"] is JsonArray grid && grid.Count == 2 && Int(grid[0]) is int gh && Int(grid[1]) is int gw
            && (gh != gw || gh * gw != count))
            throw new InvalidDataException($"{name}: metadata grid {gh}×{gw} does not match {count} image tokens");

        string[]? inputTokens, generatedTokens;
        string? generatedText;
        ImageGeometry? geometry;
        ImageGridView[]? views;
        (int, int)? originalSize = Int(image?["width"]) is int w && Int(image?["height"]) is int h ? (w, h) : null;
        try
        {
            // Readable pieces where the artifact has them (byte-level BPE spells " the" as "Ġthe"), else the vocabulary's spelling.
            inputTokens = Strings(meta?["tokens"]?["input_text"]) ?? Strings(meta?["tokens"]?["input"]);
            generatedTokens = Strings(meta?["tokens"]?["generated_text_pieces"]) ?? Strings(meta?["tokens"]?["generated"]);
            generatedText = meta?["tokens"]?["generated_text"]?.GetValue<string>();
            geometry = ParseGeometry(image, (int)Math.Round(Math.Sqrt(count)));
            views = ParseViews(image?["views"]);
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or ArgumentException)
        {
            throw new InvalidDataException($"{name}: bad tokens, image geometry or views in the metadata ({e.Message})");
        }

        var attention = ReadF32(file, attInfo);
        try
        {
            return new AttentionRun(attention, steps, layers, heads, inputIds, generatedIds, start, count, modality, geometry,
                inputTokens, generatedTokens, generatedText, meta, Path.GetFullPath(path), views, originalSize);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{name}: {e.Message}");
        }
    }

    /// <summary>The full row of one query: [keys].</summary>
    public ReadOnlySpan<float> Row(int step, int layer, int head)
    {
        Check(step, Steps, nameof(step));
        Check(layer, Layers, nameof(layer));
        Check(head, Heads, nameof(head));
        return _attention.AsSpan(RowOffset(step, layer, head), Keys);
    }

    /// <summary>Prompt position of the query whose attention step <paramref name="step"/> holds.</summary>
    public int QueryPosition(int step) => PromptLength - 1 + Check(step, Steps, nameof(step));

    /// <summary>The token that asks at <paramref name="step"/> (last prompt token, then each generated token fed back); null without token strings.</summary>
    public string? QueryToken(int step)
    {
        Check(step, Steps, nameof(step));
        return step == 0 ? (_inputTokens.Length > 0 ? _inputTokens[^1] : null)
            : _generatedTokens.Length > 0 ? _generatedTokens[step - 1] : null;
    }

    /// <summary>The token chosen at <paramref name="step"/>; null without token strings.</summary>
    public string? PredictedToken(int step) =>
        _generatedTokens.Length > 0 ? _generatedTokens[Check(step, Steps, nameof(step))] : null;

    /// <summary>The view called <paramref name="name"/>, or null.</summary>
    public ImageGridView? FindView(string name) => Array.Find(_views, v => v.Name == name);

    /// <summary>The view that shows the whole image in the most detail: "tiles" for anyres runs, else the first.</summary>
    public ImageGridView PreferredView => FindView("tiles") ?? _views[0];

    /// <summary>
    /// The selected query's attention over <paramref name="view"/>'s tokens (the first view when null), row-major
    /// rows × cols (cell r, c is image token <see cref="ImageGridView.TokenIndex"/>(r, c)), averaged over every axis
    /// left null.
    /// </summary>
    public float[] ImageGrid(AttentionSelection selection, ImageGridView? view = null) => MeanRows(selection, Strips(view));

    /// <summary>The selected query's attention over every key, [keys] (a mean over steps counts keys a step cannot see yet as 0).</summary>
    public float[] KeyRow(AttentionSelection selection) => MeanRows(selection, new KeyStrips(0, Keys, 1, Keys));

    /// <summary>
    /// Every layer's and head's attention over <paramref name="view"/> (the first view when null) for one step, or the
    /// mean over steps when null: [layers, heads, rows · cols] contiguous, each head's grid as <see cref="ImageGrid"/>.
    /// </summary>
    public float[] AllHeads(int? step, ImageGridView? view = null)
    {
        var strips = Strips(view);
        var result = new float[checked(Layers * Heads * strips.Total)];
        AllHeads(step, result, view);
        return result;
    }

    /// <summary>
    /// <see cref="AllHeads(int?, ImageGridView?)"/> into a caller's buffer of at least layers × heads × rows · cols floats
    /// (e.g. one rented from an ArrayPool: for a 7B run a fresh 2.4 MB array costs more in page faults than the copy itself).
    /// </summary>
    public void AllHeads(int? step, Span<float> destination, ImageGridView? view = null)
    {
        var strips = Strips(view);
        int n = strips.Total, total = checked(Layers * Heads * n);
        if (destination.Length < total)
            throw new ArgumentException($"the destination holds {destination.Length} floats; {Layers} layers × {Heads} heads × {n} need {total}", nameof(destination));
        if (step is int s)
        {
            Check(s, Steps, nameof(step));
            for (int l = 0; l < Layers; l++)
                for (int h = 0; h < Heads; h++)
                    strips.Gather(_attention.AsSpan(RowOffset(s, l, h), Keys), destination.Slice((l * Heads + h) * n, n), add: false);
            return;
        }
        destination[..total].Clear();
        for (int l = 0; l < Layers; l++)
            for (int h = 0; h < Heads; h++)
            {
                var target = destination.Slice((l * Heads + h) * n, n);
                for (int t = 0; t < Steps; t++) strips.Gather(_attention.AsSpan(RowOffset(t, l, h), Keys), target, add: true);
                Scale(target, 1f / Steps);
            }
    }

    /// <summary>
    /// Per layer, the share of the attention mass (mean over heads, and over steps when <paramref name="step"/> is
    /// null) that falls on image, text and generated keys. Each row of attention sums to 1, so the three do too.
    /// </summary>
    public LayerShare[] ImageShare(int? step)
    {
        int s0 = 0, s1 = Steps;
        if (step is int s) (s0, s1) = (Check(s, Steps, nameof(step)), s + 1);
        var result = new LayerShare[Layers];
        for (int l = 0; l < Layers; l++)
        {
            double image = 0, text = 0, generated = 0;
            for (int t = s0; t < s1; t++)
                for (int h = 0; h < Heads; h++)
                {
                    var row = _attention.AsSpan(RowOffset(t, l, h), Keys);
                    for (int k = 0; k < row.Length; k++)
                    {
                        switch (_modality[k])
                        {
                            case KeyModality.Image: image += row[k]; break;
                            case KeyModality.Text: text += row[k]; break;
                            default: generated += row[k]; break;
                        }
                    }
                }
            double n = (double)(s1 - s0) * Heads;
            result[l] = new LayerShare((float)(image / n), (float)(text / n), (float)(generated / n));
        }
        return result;
    }

    /// <summary>Mean of the selected rows over the keys of <paramref name="strips"/>: heads summed in float, the rest in double.</summary>
    private float[] MeanRows(AttentionSelection sel, KeyStrips strips)
    {
        var (s0, s1) = Axis(sel.Step, Steps, "step");
        var (l0, l1) = Axis(sel.Layer, Layers, "layer");
        var (h0, h1) = Axis(sel.Head, Heads, "head");
        int count = strips.Total;
        var result = new float[count];
        int rows = (s1 - s0) * (l1 - l0) * (h1 - h0);
        if (rows == 1)
        {
            strips.Gather(_attention.AsSpan(RowOffset(s0, l0, h0), Keys), result, add: false);
            return result;
        }
        var total = new double[count];
        var heads = new float[count];
        for (int s = s0; s < s1; s++)
            for (int l = l0; l < l1; l++)
            {
                heads.AsSpan().Clear();
                for (int h = h0; h < h1; h++) strips.Gather(_attention.AsSpan(RowOffset(s, l, h), Keys), heads, add: true);
                for (int i = 0; i < count; i++) total[i] += heads[i];
            }
        for (int i = 0; i < count; i++) result[i] = (float)(total[i] / rows);
        return result;
    }

    /// <summary>The keys of a view (the first when null), which must fit this run's image tokens.</summary>
    private KeyStrips Strips(ImageGridView? view)
    {
        view ??= _views[0];
        CheckView(view, ImageTokenCount);
        return new KeyStrips(ImageTokenStart + view.TokenOffset, view.Cols, view.Rows, view.RowStride);
    }

    /// <summary>
    /// <paramref name="Count"/> runs of <paramref name="Length"/> keys, <paramref name="Stride"/> apart from key
    /// <paramref name="First"/> on: a view's rows (skipping newline tokens), or one run for a whole row.
    /// </summary>
    private readonly record struct KeyStrips(int First, int Length, int Count, int Stride)
    {
        public int Total => Length * Count;

        /// <summary>Copies (or adds) the strips of one attention row into <paramref name="target"/>, back to back.</summary>
        public void Gather(ReadOnlySpan<float> row, Span<float> target, bool add)
        {
            for (int i = 0; i < Count; i++)
            {
                var source = row.Slice(First + i * Stride, Length);
                var into = target.Slice(i * Length, Length);
                if (add) AddTo(into, source);
                else source.CopyTo(into);
            }
        }
    }

    private int RowOffset(int step, int layer, int head) => (int)((((long)step * Layers + layer) * Heads + head) * Keys);

    private static (int From, int To) Axis(int? index, int size, string name) =>
        index is int i ? (Check(i, size, name), i + 1) : (0, size);

    private static int Check(int index, int size, string name) =>
        (uint)index < (uint)size ? index
            : throw new ArgumentOutOfRangeException(name, index, $"{name} {index} is outside [0, {size})");

    private static void AddTo(Span<float> acc, ReadOnlySpan<float> values)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && acc.Length >= Vector<float>.Count)
        {
            var a = MemoryMarshal.Cast<float, Vector<float>>(acc);
            var v = MemoryMarshal.Cast<float, Vector<float>>(values[..acc.Length]);
            for (int k = 0; k < a.Length; k++) a[k] += v[k];
            i = a.Length * Vector<float>.Count;
        }
        for (; i < acc.Length; i++) acc[i] += values[i];
    }

    private static void Scale(Span<float> values, float factor)
    {
        for (int i = 0; i < values.Length; i++) values[i] *= factor;
    }

    private static SafeTensorInfo Tensor(SafeTensorsFile file, string name, SafeTensorDType dtype, int rank)
    {
        string fileName = Path.GetFileName(file.Path);
        if (!file.Tensors.TryGetValue(name, out var info))
            throw new InvalidDataException($"{fileName}: not an attention artifact (no '{name}' tensor)");
        if (info.DType != dtype || info.Shape.Length != rank)
            throw new InvalidDataException($"{fileName}: '{name}' is {info.DType} [{string.Join(", ", info.Shape)}]; expected {dtype} of rank {rank}");
        return info;
    }

    private static T[] Read<T>(SafeTensorsFile file, string name, SafeTensorDType dtype) where T : unmanaged =>
        AttentionArtifact.Read<T>(file, Tensor(file, name, dtype, 1).Name).Data;

    /// <summary>Copies an F32 tensor out of the mapping in chunks, so tensors over 2 GiB load too.</summary>
    private static float[] ReadF32(SafeTensorsFile file, SafeTensorInfo info)
    {
        var result = new float[info.ElementCount];
        var target = MemoryMarshal.AsBytes(result.AsSpan());
        for (long offset = 0; offset < info.ByteLength; offset += ReadChunkBytes)
        {
            long length = Math.Min(ReadChunkBytes, info.ByteLength - offset);
            var chunk = info with { Begin = info.Begin + offset, End = info.Begin + offset + length };
            file.Bytes(chunk).CopyTo(target[(int)offset..]);
        }
        return result;
    }

    private static (int Start, int Count)? ContiguousRun(byte[] values, byte value)
    {
        int first = Array.IndexOf(values, value);
        if (first < 0) return null;
        int end = first;
        while (end < values.Length && values[end] == value) end++;
        return Array.IndexOf(values, value, end) < 0 ? (first, end - first) : null;
    }

    private static (int Start, int Count)? ImageTokensFromIds(long[] ids, long? imageTokenId)
    {
        (int Start, int Count)? best = null;
        for (int i = 0; i < ids.Length;)
        {
            int j = i + 1;
            while (j < ids.Length && ids[j] == ids[i]) j++;
            bool candidate = imageTokenId is long id ? ids[i] == id : j - i >= 4;
            if (candidate && (best is null || j - i > best.Value.Count)) best = (i, j - i);
            i = j;
        }
        return best;
    }

    private static ImageGeometry? ParseGeometry(JsonObject? image, int gridSide)
    {
        if (image?["frame_in_original"] is not JsonObject frame) return null;
        int width = Int(image["width"]) ?? throw new FormatException("no image width");
        int height = Int(image["height"]) ?? throw new FormatException("no image height");
        var mode = image["aspect"]?.GetValue<string>() is string aspect
            ? Enum.Parse<AspectMode>(aspect, ignoreCase: true) : AspectMode.Pad;
        int framePixels = Int(image["frame_size"]) is int f && f > 0 ? f : gridSide * (Int(image["patch_size"]) ?? 14);
        double Num(string key) => frame[key]?.GetValue<double>() ?? throw new FormatException($"no frame_in_original.{key}");
        var geometry = new ImageGeometry(width, height, mode, framePixels, framePixels, Num("x"), Num("y"), Num("width"), Num("height"));
        if (width <= 0 || height <= 0 || !(geometry.FrameWidth > 0) || !(geometry.FrameHeight > 0)
            || !double.IsFinite(geometry.FrameX) || !double.IsFinite(geometry.FrameY))
            throw new FormatException($"image {width}×{height}, frame {geometry.Frame}");
        return geometry;
    }

    /// <summary>image.views as written by AttentionArtifact.Describe; null when the artifact predates views.</summary>
    private static ImageGridView[]? ParseViews(JsonNode? node)
    {
        if (node is null) return null;
        if (node is not JsonArray array) throw new FormatException("image.views is not a list");
        var views = new ImageGridView[array.Count];
        for (int i = 0; i < views.Length; i++)
        {
            if (array[i] is not JsonObject v) throw new FormatException($"view {i} is not an object");
            string name = v["name"] is JsonValue n && n.TryGetValue<string>(out var text) ? text : throw new FormatException($"view {i} has no name");
            int Field(string key) => Int(v[key]) ?? throw new FormatException($"view '{name}' has no integer {key}");
            double Edge(string key) => v["frame"]?[key] is JsonValue e && e.TryGetValue<double>(out double x) ? x
                : throw new FormatException($"view '{name}' has no frame.{key}");
            views[i] = new ImageGridView(name, Field("token_offset"), Field("rows"), Field("cols"), Field("row_stride"),
                new ImageRect(Edge("x"), Edge("y"), Edge("width"), Edge("height")));
        }
        return views;
    }

    /// <summary>Throws unless every token of <paramref name="view"/> is one of the image tokens and its frame is a real rectangle.</summary>
    private static void CheckView(ImageGridView view, int imageTokenCount)
    {
        string name = $"view '{view.Name}'";
        if (string.IsNullOrWhiteSpace(view.Name)) throw new ArgumentException("a view has no name");
        if (view.Rows <= 0 || view.Cols <= 0) throw new ArgumentException($"{name} is {view.Rows}×{view.Cols}; rows and columns must be positive");
        if (view.RowStride < view.Cols) throw new ArgumentException($"{name}: row stride {view.RowStride} is less than its {view.Cols} columns (rows would overlap)");
        long last = view.TokenOffset + (long)(view.Rows - 1) * view.RowStride + view.Cols - 1;
        if (view.TokenOffset < 0 || last >= imageTokenCount)
            throw new ArgumentException($"{name} uses image tokens {view.TokenOffset} to {last}, outside the {imageTokenCount} image tokens [0, {imageTokenCount})");
        var f = view.Frame;
        if (!double.IsFinite(f.X) || !double.IsFinite(f.Y) || !double.IsFinite(f.Width) || !double.IsFinite(f.Height) || f.Width <= 0 || f.Height <= 0)
            throw new ArgumentException($"{name}: frame {f} is not a finite rectangle of positive size");
    }

    private static int? Int(JsonNode? node) => node is JsonValue v && v.TryGetValue<int>(out int i) ? i
        : node is JsonValue d && d.TryGetValue<double>(out double x) && x == Math.Floor(x) && Math.Abs(x) <= int.MaxValue ? (int)x : null;

    private static string[]? Strings(JsonNode? node) =>
        node is JsonArray a ? a.Select(n => n?.GetValue<string>() ?? "").ToArray() : null;
}
