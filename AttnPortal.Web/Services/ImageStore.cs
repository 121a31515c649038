using System.Security.Cryptography;
using AttnPortal.Data;
using AttnPortal.Inference.Images;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Web.Services;

/// <summary>Accepts uploads: sniffs the type from the bytes, decodes to validate, stores each distinct image once.</summary>
public sealed class ImageStore(PortalDbContext db, PortalPaths paths, PortalOptions options)
{
    public static string? SniffContentType(ReadOnlySpan<byte> b) =>
        b.Length >= 8 && b[..8].SequenceEqual<byte>([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) ? "image/png"
        : b.Length >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF ? "image/jpeg"
        : b.Length >= 12 && b[..4].SequenceEqual("RIFF"u8) && b[8..12].SequenceEqual("WEBP"u8) ? "image/webp"
        : null;

    /// <summary>Validates and stores an upload; throws <see cref="InvalidDataException"/> with a message for the user.</summary>
    public async Task<ImageAsset> SaveAsync(byte[] data, string fileName, string? userId, CancellationToken cancel = default)
    {
        fileName = Path.GetFileName(fileName);
        if (data.Length == 0) throw new InvalidDataException($"{fileName}: the file is empty");
        EnsureWithinSizeLimit(fileName, data.Length);
        string contentType = SniffContentType(data)
            ?? throw new InvalidDataException($"{fileName}: not a PNG, JPEG or WebP image (judged by its content, not its name)");
        var image = RgbImage.Decode(data, fileName, maxPixels: options.Upload.MaxPixels);

        string sha = Convert.ToHexStringLower(SHA256.HashData(data));
        var existing = await db.Images.FirstOrDefaultAsync(i => i.Sha256 == sha, cancel);
        if (existing is not null) return existing;

        string relative = Path.Combine("images", sha[..2], sha + Extension(contentType));
        string full = paths.Resolve(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        if (!File.Exists(full))
        {
            string temp = full + $".{Guid.NewGuid():N}.tmp";
            await File.WriteAllBytesAsync(temp, data, cancel);
            File.Move(temp, full, overwrite: true);
        }
        var asset = new ImageAsset
        {
            Id = Guid.NewGuid(), Sha256 = sha, FileName = fileName, ContentType = contentType, Width = image.Width,
            Height = image.Height, ByteLength = data.Length, StoredPath = relative, UploadedById = userId, CreatedUtc = DateTime.UtcNow,
        };
        db.Images.Add(asset);
        try { await db.SaveChangesAsync(cancel); }
        catch (DbUpdateException) // the same image uploaded concurrently: keep the first row
        {
            db.Entry(asset).State = EntityState.Detached;
            return await db.Images.SingleAsync(i => i.Sha256 == sha, cancel);
        }
        return asset;
    }

    /// <summary>The upload size limit, checkable before a file is read into memory.</summary>
    public void EnsureWithinSizeLimit(string fileName, long length)
    {
        if (length > options.Upload.MaxBytes)
            throw new InvalidDataException($"{Path.GetFileName(fileName)}: {length / 1e6:0.0##} MB is over the {options.Upload.MaxBytes / 1e6:0.0##} MB upload limit");
    }

    private static string Extension(string contentType) => contentType switch
    {
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        _ => ".webp",
    };
}
