namespace AttnPortal.Inference.Checkpoints;

public enum SafeTensorDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL }

public static class SafeTensorDTypes
{
    public static SafeTensorDType Parse(string s) => s switch
    {
        "F64" => SafeTensorDType.F64, "F32" => SafeTensorDType.F32, "F16" => SafeTensorDType.F16,
        "BF16" => SafeTensorDType.BF16, "I64" => SafeTensorDType.I64, "I32" => SafeTensorDType.I32,
        "I16" => SafeTensorDType.I16, "I8" => SafeTensorDType.I8, "U8" => SafeTensorDType.U8,
        "BOOL" => SafeTensorDType.BOOL,
        _ => throw new InvalidDataException($"unsupported dtype '{s}'"),
    };

    public static int Size(SafeTensorDType t) => t switch
    {
        SafeTensorDType.F64 or SafeTensorDType.I64 => 8,
        SafeTensorDType.F32 or SafeTensorDType.I32 => 4,
        SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.I16 => 2,
        _ => 1,
    };
}
