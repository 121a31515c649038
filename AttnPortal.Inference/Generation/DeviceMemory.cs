using static TorchSharp.torch;

namespace AttnPortal.Inference.Generation;

internal static class DeviceMemory
{
    /// <summary>The bytes a tensor's elements take.</summary>
    public static long Bytes(this Tensor t) => t.numel() * t.ElementSize;
}
