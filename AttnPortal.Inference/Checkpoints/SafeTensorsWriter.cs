using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace AttnPortal.Inference.Checkpoints;

/// <summary>
/// Writes a safetensors file atomically: everything goes to a temporary file beside the target, which is renamed over
/// it only once complete, so a crash or a bad input never leaves a half-written artifact.
/// </summary>
public sealed class SafeTensorsWriter
{
    private readonly List<(string Name, SafeTensorDType DType, long[] Shape, Action<Stream> Write, long Bytes)> _tensors = new();
    private readonly Dictionary<string, string> _metadata = new();

    public SafeTensorsWriter Add<T>(string name, SafeTensorDType dtype, long[] shape, T[] data) where T : unmanaged
    {
        long expected = shape.Aggregate(1L, (a, b) => a * b) * SafeTensorDTypes.Size(dtype);
        long bytes = (long)data.Length * Marshal.SizeOf<T>();
        if (bytes != expected) throw new ArgumentException($"tensor '{name}': {bytes} bytes of data for shape [{string.Join(", ", shape)}] {dtype}");
        _tensors.Add((name, dtype, shape, s => s.Write(MemoryMarshal.AsBytes(data.AsSpan())), bytes));
        return this;
    }

    public SafeTensorsWriter Metadata(string key, string value)
    {
        _metadata[key] = value;
        return this;
    }

    public void WriteAtomically(string path)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    public void Write(Stream stream)
    {
        var header = new Dictionary<string, object>();
        if (_metadata.Count > 0) header["__metadata__"] = _metadata;
        long offset = 0;
        foreach (var t in _tensors)
        {
            header[t.Name] = new { dtype = t.DType.ToString(), shape = t.Shape, data_offsets = new[] { offset, offset + t.Bytes } };
            offset += t.Bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        // The format asks for the data to start 8-byte aligned; pad the header with spaces.
        int padded = (json.Length + 7) / 8 * 8;
        Span<byte> len = stackalloc byte[8];
        BitConverter.TryWriteBytes(len, (long)padded);
        stream.Write(len);
        stream.Write(json);
        for (int i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');
        foreach (var t in _tensors) t.Write(stream);
    }
}
