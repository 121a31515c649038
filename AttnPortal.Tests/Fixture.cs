using AttnPortal.Inference.Artifacts;
using AttnPortal.Inference.Checkpoints;

namespace AttnPortal.Tests;

/// <summary>Paths and readers for the HF-generated fixtures (tools/fixtures/make_fixtures.py, transformers 5.17).</summary>
public static class Fixture
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "Fixtures", "hf");
    public static string Checkpoint => Path.Combine(Root, "tiny-llava");
    /// <summary>tiny-llava's geometry with bfloat16-representable weights at ordinary scales (tools/fixtures/make_bf16_fixture.py).</summary>
    public static string Bf16Checkpoint => Path.Combine(Root, "tiny-llava-bf16");
    public static string Layout(string name) => Path.Combine(Root, "layouts", name);
    public static string Image(string name) => Path.Combine(Root, "images", name);
    public static string Run(string name) => Path.Combine(Root, "runs", name + ".safetensors");

    public static readonly float[] ClipMean = [0.48145466f, 0.4578275f, 0.40821073f];
    public static readonly float[] ClipStd = [0.26862954f, 0.26130258f, 0.27577711f];

    public static T[] Tensor<T>(string file, string name) where T : unmanaged
    {
        using var f = SafeTensorsFile.Open(file);
        return AttentionArtifact.Read<T>(f, name).Data;
    }

    /// <summary>HF's pixel values for an image and aspect mode, rebuilt from the uint8 frame its processor normalised.</summary>
    public static float[] HfPixelValues(string imageAndMode)
    {
        var frame = Tensor<byte>(Image("images.safetensors"), imageAndMode);
        int plane = frame.Length / 3;
        var pv = new float[frame.Length];
        for (int i = 0; i < pv.Length; i++)
        {
            int c = i / plane;
            pv[i] = (frame[i] * (1f / 255f) - ClipMean[c]) / ClipStd[c];
        }
        return pv;
    }

    public static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths differ: {a.Length} vs {b.Length}");
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    /// <summary>A fresh temporary directory, removed when disposed.</summary>
    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("attnportal-test-").FullName;
        public string this[string name] => System.IO.Path.Combine(Path, name);
        public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
    }

    /// <summary>Copies the tiny checkpoint's config/tokenizer/preprocessor files (not its weights) into a directory.</summary>
    public static void CopyCheckpointFiles(string target, bool withWeights = false)
    {
        Directory.CreateDirectory(target);
        foreach (var f in Directory.GetFiles(Checkpoint))
            if (withWeights || !f.EndsWith(".safetensors", StringComparison.Ordinal))
                File.Copy(f, System.IO.Path.Combine(target, System.IO.Path.GetFileName(f)));
    }
}
