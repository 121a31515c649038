namespace AttnPortal.Inference.Text;

/// <summary>The single-turn conversation a model was trained on.</summary>
public enum PromptTemplate
{
    /// <summary>LLaVA-1.5 (llava-hf model cards): "USER: &lt;image&gt;\n{question} ASSISTANT:".</summary>
    Llava15,
    /// <summary>LLaVA-NeXT-Mistral (the seed's mistral_instruct): "[INST] &lt;image&gt;\n{question} [/INST]".</summary>
    MistralInstruct,
    /// <summary>Qwen2 ChatML with its default system prompt (LLaVA-OneVision; the seed's qwen_1_5).</summary>
    Qwen2Chat,
}

/// <summary>LLaVA prompts: the conversation templates, the &lt;image&gt; placeholder rules, and its expansion.</summary>
public static class LlavaPrompt
{
    public const string ImageToken = "<image>";
    public const string QwenSystemPrompt = "You are a helpful assistant.";

    /// <summary>LLaVA-1.5's single-turn template with an image, as in the llava-hf model cards:
    /// "USER: &lt;image&gt;\n{question} ASSISTANT:".</summary>
    public static string Llava15(string question) => Build(question, raw: false, hasImage: true);

    /// <summary>A raw prompt with an image: used as given, with "&lt;image&gt;\n" in front when it has no &lt;image&gt;.</summary>
    public static string Raw(string prompt) => Build(prompt, raw: true, hasImage: true);

    /// <summary>
    /// The prompt text. Templated (raw false): the question in the template's user turn, with "&lt;image&gt;\n" at the
    /// start of it when there is an image and the question has no &lt;image&gt; of its own. Raw: the text as given, with
    /// "&lt;image&gt;\n" prepended when there is an image and the text has no &lt;image&gt;.
    /// One image needs exactly one &lt;image&gt; (one placeholder expands to one image's features); no image, none.
    /// </summary>
    public static string Build(string text, bool raw, bool hasImage, PromptTemplate template = PromptTemplate.Llava15)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (string.IsNullOrWhiteSpace(text))
            throw new ArgumentException(raw ? "the prompt is empty" : "the question is empty", nameof(text));
        int placeholders = Count(text, ImageToken);
        if (hasImage && placeholders > 1)
            throw new ArgumentException($"the prompt has {placeholders} {ImageToken} placeholders but one image is given", nameof(text));
        if (!hasImage && placeholders > 0)
            throw new ArgumentException($"the prompt has an {ImageToken} placeholder but no image is given", nameof(text));

        string user = (hasImage && placeholders == 0 ? ImageToken + "\n" : "") + text;
        if (raw) return user;
        return template switch
        {
            PromptTemplate.Llava15 => $"USER: {user} ASSISTANT:",
            PromptTemplate.MistralInstruct => $"[INST] {user} [/INST]",
            PromptTemplate.Qwen2Chat => $"<|im_start|>system\n{QwenSystemPrompt}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n",
            _ => throw new ArgumentOutOfRangeException(nameof(template)),
        };
    }

    /// <summary>
    /// Prompt ids with the one &lt;image&gt; replaced by <paramref name="imageTokenCount"/> copies of
    /// <paramref name="placeholderId"/>. With an &lt;image&gt; token in the vocabulary this is transformers' processor
    /// (the token is an added token, so the text around it tokenises the same); without one (original LLaVA
    /// checkpoints) the text before and after is encoded separately, as the original tokenizer_image_token does.
    /// </summary>
    public static long[] Encode(ITokenizer tokenizer, string prompt, int placeholderId, int imageTokenCount, out int imageStart)
    {
        if (tokenizer.TokenId(ImageToken) is int id)
        {
            var ids = ExpandImageTokens(tokenizer.Encode(prompt), id, imageTokenCount, out imageStart);
            if (id != placeholderId) Array.Fill(ids, placeholderId, imageStart, imageTokenCount);
            return ids;
        }
        int at = prompt.IndexOf(ImageToken, StringComparison.Ordinal);
        if (at < 0 || prompt.IndexOf(ImageToken, at + 1, StringComparison.Ordinal) >= 0)
            throw new ArgumentException($"expected exactly one {ImageToken} in the prompt");
        var before = tokenizer.Encode(prompt[..at]);
        var after = tokenizer.Encode(prompt[(at + ImageToken.Length)..], addSpecialTokens: false);
        imageStart = before.Count;
        return [.. before.Select(x => (long)x), .. Enumerable.Repeat((long)placeholderId, imageTokenCount), .. after.Select(x => (long)x)];
    }

    /// <summary>
    /// Replaces the single image token in the ids with imageTokenCount copies (576 for LLaVA-1.5: 24x24 patches, see
    /// LlavaConfig.ImageTokensPerImage); the copies are ids[imageStart .. imageStart + imageTokenCount). Same ids as
    /// transformers' LlavaProcessor, which repeats "&lt;image&gt;" in the text before tokenising: each copy is an added
    /// token on its own, so nothing around it changes.
    /// </summary>
    public static long[] ExpandImageTokens(IReadOnlyList<int> ids, int imageTokenId, int imageTokenCount, out int imageStart)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(imageTokenCount);
        int count = 0;
        imageStart = -1;
        for (int i = 0; i < ids.Count; i++)
            if (ids[i] == imageTokenId && count++ == 0) imageStart = i;
        if (count != 1)
            throw new ArgumentException($"expected exactly one image token (id {imageTokenId}) in the prompt ids, found {count}", nameof(ids));

        var expanded = new long[ids.Count - 1 + imageTokenCount];
        for (int i = 0; i < imageStart; i++) expanded[i] = ids[i];
        Array.Fill(expanded, imageTokenId, imageStart, imageTokenCount);
        for (int i = imageStart + 1; i < ids.Count; i++) expanded[i - 1 + imageTokenCount] = ids[i];
        return expanded;
    }

    private static int Count(string text, string value)
    {
        int n = 0;
        for (int i = text.IndexOf(value, StringComparison.Ordinal); i >= 0; i = text.IndexOf(value, i + value.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}
