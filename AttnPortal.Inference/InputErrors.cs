namespace AttnPortal.Inference;

/// <summary>How the engine reports a problem with the user's files or arguments, and how to show it to them.</summary>
public static class InputErrors
{
    /// <summary>Errors that describe bad input (a file, a prompt, a config), as opposed to a bug or a crash.</summary>
    public static bool IsInputError(Exception e) => e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException
        or ArgumentException or NotSupportedException or UnauthorizedAccessException;

    /// <summary>The message without .NET's " (Parameter 'x')" suffix, which means nothing to a user.</summary>
    public static string Message(Exception e) =>
        e is ArgumentException { ParamName: { } name } ? e.Message.Replace($" (Parameter '{name}')", "") : e.Message;
}

/// <summary>Running out of device (or host) memory: not the user's input, not a bug; the run fails, the worker goes on.</summary>
public static class MemoryErrors
{
    /// <summary>libtorch reports a failed CUDA allocation as "CUDA out of memory. Tried to allocate …" through
    /// TorchSharp's ExternalException; the CPU allocator as "DefaultCPUAllocator: not enough memory".</summary>
    public static bool IsOutOfMemory(Exception e) =>
        e is OutOfMemoryException
        || e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
        || e.Message.Contains("not enough memory", StringComparison.OrdinalIgnoreCase)
        || (e.InnerException is { } inner && IsOutOfMemory(inner));
}
