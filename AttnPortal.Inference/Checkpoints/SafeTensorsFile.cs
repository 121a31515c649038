using System.IO.MemoryMappedFiles;
using System.Text.Json;

namespace AttnPortal.Inference.Checkpoints;

/// <summary>One tensor's place in a safetensors file.</summary>
public sealed record SafeTensorInfo(string Name, SafeTensorDType DType, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public long ByteLength => End - Begin;
}

/// <summary>
/// Read-only view of a safetensors file, memory-mapped so that a 14 GB checkpoint is streamed through the page cache
/// tensor by tensor instead of being read into process memory.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    private const long MaxHeaderBytes = 100L << 20;
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly long _dataStart;

    public string Path { get; }
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafeTensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, long dataStart,
        Dictionary<string, SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _dataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
    }

    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: checkpoint file not found", path);
        // The open file's length, not FileInfo's: that is a symbolic link's own size, and HF's cache links every file
        // of a snapshot to a blob.
        string name = System.IO.Path.GetFileName(path);
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long length = file.Length;
        MemoryMappedFile map;
        try
        {
            if (length < 8) throw new InvalidDataException($"{name}: not a safetensors file (only {length} bytes)");
            map = MemoryMappedFile.CreateFromFile(file, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        }
        catch
        {
            file.Dispose();
            throw;
        }
        var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        try
        {
            long headerLength = view.ReadInt64(0);
            if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > length)
                throw new InvalidDataException($"{name}: not a safetensors file (header length {headerLength} does not fit a {length}-byte file)");
            var header = new byte[headerLength];
            view.ReadArray(8, header, 0, header.Length);
            long dataStart = 8 + headerLength;
            var (tensors, metadata) = ParseHeader(name, header, length - dataStart);
            return new SafeTensorsFile(path, map, view, dataStart, tensors, metadata);
        }
        catch
        {
            view.Dispose();
            map.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string name, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw new InvalidDataException($"{name}: corrupt safetensors header ({e.Message})"); }
        var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>();
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{name}: corrupt safetensors header (not a JSON object)");
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    foreach (var m in entry.Value.EnumerateObject()) metadata[m.Name] = m.Value.ToString();
                    continue;
                }
                try
                {
                    var dtype = SafeTensorDTypes.Parse(entry.Value.GetProperty("dtype").GetString()!);
                    var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                    var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                    var info = new SafeTensorInfo(entry.Name, dtype, shape, offsets[0], offsets[1]);
                    if (offsets.Length != 2 || info.Begin < 0 || info.End > dataLength || info.Begin > info.End
                        || info.ByteLength != info.ElementCount * SafeTensorDTypes.Size(dtype) || shape.Any(d => d < 0))
                        throw new InvalidDataException("offsets do not match shape and dtype, or lie outside the file");
                    tensors[entry.Name] = info;
                }
                catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or InvalidDataException or FormatException or IndexOutOfRangeException)
                {
                    throw new InvalidDataException($"{name}: corrupt entry for tensor '{entry.Name}' ({e.Message})");
                }
            }
        }
        return (tensors, metadata);
    }

    /// <summary>The raw little-endian bytes of a tensor, straight from the mapping (no copy).</summary>
    public unsafe ReadOnlySpan<byte> Bytes(SafeTensorInfo info)
    {
        if (info.ByteLength > int.MaxValue)
            throw new NotSupportedException($"{System.IO.Path.GetFileName(Path)}: tensor '{info.Name}' is larger than 2 GiB");
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        try { return new ReadOnlySpan<byte>(p + _view.PointerOffset + _dataStart + info.Begin, (int)info.ByteLength); }
        finally { _view.SafeMemoryMappedViewHandle.ReleasePointer(); }
    }

    public void Dispose()
    {
        _view.Dispose();
        _map.Dispose();
    }
}
