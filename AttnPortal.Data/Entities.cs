using Microsoft.AspNetCore.Identity;

namespace AttnPortal.Data;

public sealed class PortalUser : IdentityUser
{
    public string? DisplayName { get; set; }
}

public static class Roles
{
    public const string Admin = "Admin", Researcher = "Researcher", Viewer = "Viewer";
    public static readonly string[] All = [Admin, Researcher, Viewer];
    /// <summary>Roles that may upload, queue and annotate.</summary>
    public const string CanWrite = Admin + "," + Researcher;
}

/// <summary>An uploaded image, stored once by content hash however often it is uploaded.</summary>
public sealed class ImageAsset
{
    public Guid Id { get; set; }
    public required string Sha256 { get; set; }
    public required string FileName { get; set; }
    public required string ContentType { get; set; }
    public int Width { get; set; }
    public int Height { get; set; }
    public long ByteLength { get; set; }
    /// <summary>Relative to the artifact root.</summary>
    public required string StoredPath { get; set; }
    public string? UploadedById { get; set; }
    public DateTime CreatedUtc { get; set; }
}

public enum RunStatus { Queued = 0, Running = 1, Succeeded = 2, Failed = 3, Canceled = 4 }

/// <summary>One image × model × schedule inference, from queued to its attention artifact.</summary>
public sealed class Run
{
    public Guid Id { get; set; }
    public Guid ImageId { get; set; }
    public ImageAsset? Image { get; set; }
    public required string ModelName { get; set; }
    public required string Schedule { get; set; }
    public required string Question { get; set; }
    public required string Aspect { get; set; }
    public int MaxNewTokens { get; set; }
    public RunStatus Status { get; set; }
    public int StepsDone { get; set; }
    public string? Error { get; set; }
    public string? GeneratedText { get; set; }
    /// <summary>Relative to the artifact root; set only once the artifact is complete on disk.</summary>
    public string? ArtifactPath { get; set; }
    public required string OwnerId { get; set; }
    public PortalUser? Owner { get; set; }
    public Guid BatchId { get; set; }
    public DateTime CreatedUtc { get; set; }
    public DateTime? StartedUtc { get; set; }
    public DateTime? FinishedUtc { get; set; }
    public bool CancelRequested { get; set; }
    /// <summary>Odd-layer rows of generated tokens from row 0 of the modality mask, as the LLaVA-Alternating-Attn code
    /// computes them (changes alternating-cross only).</summary>
    public bool SeedCompatibleDecoding { get; set; }
    /// <summary>Runs queued together as a comparison (standard vs alternating of the same image, prompt and model)
    /// share this id.</summary>
    public Guid? PairId { get; set; }

    public bool IsFinished => Status is RunStatus.Succeeded or RunStatus.Failed or RunStatus.Canceled;
    public TimeSpan? Duration => StartedUtc is { } s ? (FinishedUtc ?? DateTime.UtcNow) - s : null;
}
