using AttnPortal.Inference.Checkpoints;

namespace AttnPortal.Cli;

/// <summary>Max absolute differences between the tensors two safetensors files share (artifacts or HF references).</summary>
public static class Compare
{
    public static int Run(string[] paths)
    {
        if (paths.Length != 2) throw new UsageException("compare takes two files");
        using var a = SafeTensorsFile.Open(paths[0]);
        using var b = SafeTensorsFile.Open(paths[1]);
        Console.WriteLine($"A = {paths[0]}\nB = {paths[1]}\n");
        Console.WriteLine("| tensor | A shape | B shape | compared | result |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var name in a.Tensors.Keys.Intersect(b.Tensors.Keys).Order(StringComparer.Ordinal))
        {
            var ia = a.Tensors[name];
            var ib = b.Tensors[name];
            string shapes = $"| {name} | [{string.Join(", ", ia.Shape)}] | [{string.Join(", ", ib.Shape)}] |";
            if (ia.Shape.Length != ib.Shape.Length) { Console.WriteLine($"{shapes} - | different ranks |"); continue; }
            var (maxDiff, count, firstMismatch) = Differences(Values(a, ia), ia.Shape, Values(b, ib), ib.Shape, ia.Shape.Zip(ib.Shape, Math.Min).ToArray());
            bool integral = ia.DType is SafeTensorDType.I64 or SafeTensorDType.I32 or SafeTensorDType.U8;
            string result = integral
                ? (firstMismatch < 0 ? "equal" : $"differ (first at flat index {firstMismatch})")
                : $"max abs diff {maxDiff:E2}";
            Console.WriteLine($"{shapes} {count} values | {result} |");
        }
        SameInputSteps(a, b);
        return Commands.ExitOk;
    }

    /// <summary>
    /// Once two greedy runs pick different tokens their inputs differ, and so does everything after: with random
    /// weights (tiny margins between the top tokens) a rounding difference can flip a token early. Steps 0..k, where k
    /// is the first differing generated id, were computed from the same inputs, so they are compared on their own.
    /// </summary>
    private static void SameInputSteps(SafeTensorsFile a, SafeTensorsFile b)
    {
        if (!a.Tensors.TryGetValue("generated_ids", out var ga) || !b.Tensors.TryGetValue("generated_ids", out var gb)) return;
        var (ida, idb) = (Values(a, ga), Values(b, gb));
        int k = Enumerable.Range(0, Math.Min(ida.Length, idb.Length)).FirstOrDefault(i => ida[i] != idb[i], -1);
        if (k < 0) return;
        foreach (var name in new[] { "attention", "step_logits" })
        {
            if (!a.Tensors.TryGetValue(name, out var ia) || !b.Tensors.TryGetValue(name, out var ib) || ia.Shape.Length != ib.Shape.Length) continue;
            var common = ia.Shape.Zip(ib.Shape, Math.Min).ToArray();
            common[0] = Math.Min(common[0], k + 1);
            var (maxDiff, count, _) = Differences(Values(a, ia), ia.Shape, Values(b, ib), ib.Shape, common);
            Console.WriteLine($"| {name}, steps 0..{k} (same inputs) | | | {count} values | max abs diff {maxDiff:E2} |");
        }
    }

    private static (double MaxDiff, long Count, long FirstMismatch) Differences(double[] va, long[] sa, double[] vb, long[] sb, long[] common)
    {
        double maxDiff = 0;
        long count = 0, firstMismatch = -1;
        foreach (var index in Indices(common))
        {
            double d = Math.Abs(va[Flat(index, sa)] - vb[Flat(index, sb)]);
            if (d > maxDiff) maxDiff = d;
            if (d != 0 && firstMismatch < 0) firstMismatch = count;
            count++;
        }
        return (maxDiff, count, firstMismatch);
    }

    private static double[] Values(SafeTensorsFile f, SafeTensorInfo info)
    {
        var bytes = f.Bytes(info);
        return info.DType switch
        {
            SafeTensorDType.F32 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray().Select(x => (double)x).ToArray(),
            SafeTensorDType.F64 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(bytes).ToArray(),
            SafeTensorDType.I64 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(bytes).ToArray().Select(x => (double)x).ToArray(),
            SafeTensorDType.I32 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(bytes).ToArray().Select(x => (double)x).ToArray(),
            SafeTensorDType.U8 => bytes.ToArray().Select(x => (double)x).ToArray(),
            SafeTensorDType.F16 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(x => (double)x).ToArray(),
            _ => throw new NotSupportedException($"{info.Name}: {info.DType} is not compared"),
        };
    }

    private static long Flat(long[] index, long[] shape)
    {
        long flat = 0;
        for (int i = 0; i < shape.Length; i++) flat = flat * shape[i] + index[i];
        return flat;
    }

    private static IEnumerable<long[]> Indices(long[] shape)
    {
        if (shape.Any(d => d == 0)) yield break;
        var index = new long[shape.Length];
        while (true)
        {
            yield return index;
            int k = shape.Length - 1;
            while (k >= 0 && ++index[k] == shape[k]) index[k--] = 0;
            if (k < 0) yield break;
        }
    }
}
