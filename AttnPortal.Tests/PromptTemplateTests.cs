using AttnPortal.Inference;
using AttnPortal.Inference.Model;
using AttnPortal.Inference.Text;

namespace AttnPortal.Tests;

/// <summary>The families' templates and the expansion of the image placeholder, with and without an &lt;image&gt; token.</summary>
public sealed class PromptTemplateTests
{
    [Theory]
    [InlineData(PromptTemplate.Llava15, "USER: <image>\nWhat? ASSISTANT:")]
    [InlineData(PromptTemplate.MistralInstruct, "[INST] <image>\nWhat? [/INST]")]
    [InlineData(PromptTemplate.Qwen2Chat, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\nWhat?<|im_end|>\n<|im_start|>assistant\n")]
    public void TemplatesPutTheImageFirstInTheUserTurn(PromptTemplate template, string expected) =>
        Assert.Equal(expected, LlavaPrompt.Build("What?", raw: false, hasImage: true, template));

    [Fact]
    public void EachFamilyGetsItsTemplate()
    {
        var root = FamilyParityTests.Root;
        Assert.Equal(PromptTemplate.Qwen2Chat, LlavaEngine.TemplateFor(LlavaConfig.Load(Path.Combine(root, "tiny-onevision"))));
        Assert.Equal(PromptTemplate.MistralInstruct, LlavaEngine.TemplateFor(LlavaConfig.Load(Path.Combine(root, "tiny-next-mistral"))));
        Assert.Equal(PromptTemplate.Llava15, LlavaEngine.TemplateFor(LlavaConfig.Load(Fixture.Checkpoint)));
    }

    /// <summary>Without an &lt;image&gt; token (original LLaVA checkpoints), the text on each side is encoded on its
    /// own, the second part without BOS, as the original tokenizer_image_token does; the placeholder id is kept.</summary>
    [Fact]
    public void WithoutAnImageTokenTheTwoSidesAreEncodedSeparately()
    {
        var tok = new CharTokenizer();
        var ids = LlavaPrompt.Encode(tok, "ab<image>cd", -200, 3, out int start);
        Assert.Equal([1, 'a', 'b', -200, -200, -200, 'c', 'd'], ids);
        Assert.Equal(3, start);
        Assert.Throws<ArgumentException>(() => LlavaPrompt.Encode(tok, "no image here", -200, 3, out _));
        Assert.Throws<ArgumentException>(() => LlavaPrompt.Encode(tok, "<image><image>", -200, 3, out _));
    }

    /// <summary>One id per character, BOS (1) in front when special tokens are added; no &lt;image&gt; token.</summary>
    private sealed class CharTokenizer : ITokenizer
    {
        public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true) =>
            [.. addSpecialTokens ? [1] : Array.Empty<int>(), .. text.Select(c => (int)c)];
        public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false) => string.Concat(ids.Select(i => (char)i));
        public string TokenString(int id) => ((char)id).ToString();
        public string TokenText(int id) => TokenString(id);
        public int? TokenId(string token) => null;
        public int EosId => 2;
        public int VocabSize => 128;
    }
}
