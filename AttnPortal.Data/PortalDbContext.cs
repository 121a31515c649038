using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Data;

public sealed class PortalDbContext(DbContextOptions<PortalDbContext> options) : IdentityDbContext<PortalUser>(options)
{
    public DbSet<ImageAsset> Images => Set<ImageAsset>();
    public DbSet<Run> Runs => Set<Run>();
    public DbSet<Comparison> Comparisons => Set<Comparison>();
    public DbSet<ComparisonRun> ComparisonRuns => Set<ComparisonRun>();
    public DbSet<Annotation> Annotations => Set<Annotation>();
    public DbSet<Comment> Comments => Set<Comment>();
    public DbSet<Label> Labels => Set<Label>();
    public DbSet<HeadTag> HeadTags => Set<HeadTag>();
    public DbSet<Gallery> Galleries => Set<Gallery>();
    public DbSet<GalleryItem> GalleryItems => Set<GalleryItem>();
    public DbSet<Revision> Revisions => Set<Revision>();

    protected override void OnModelCreating(ModelBuilder b)
    {
        base.OnModelCreating(b);
        b.Entity<ImageAsset>(e =>
        {
            e.HasIndex(i => i.Sha256).IsUnique();
            e.Property(i => i.Sha256).HasMaxLength(64);
        });
        b.Entity<Run>(e =>
        {
            e.HasIndex(r => r.Status);
            // Newest first with ties broken by id, the order the runs list pages through by key (RunSearch).
            e.HasIndex(r => new { r.CreatedUtc, r.Id });
            e.HasIndex(r => r.PairId);
            e.Property(r => r.Status).HasConversion<string>().HasMaxLength(16);
            e.HasOne(r => r.Image).WithMany().HasForeignKey(r => r.ImageId).OnDelete(DeleteBehavior.Restrict);
            e.HasOne(r => r.Owner).WithMany().HasForeignKey(r => r.OwnerId).OnDelete(DeleteBehavior.Restrict);
            e.HasIndex(r => r.ModelName);
            e.HasIndex(r => r.Schedule);
        });
        b.Entity<Comparison>(e =>
        {
            e.HasIndex(c => c.RunKey).IsUnique();
            e.HasOne(c => c.CreatedBy).WithMany().HasForeignKey(c => c.CreatedById).OnDelete(DeleteBehavior.Restrict);
        });
        b.Entity<ComparisonRun>(e =>
        {
            e.HasKey(c => new { c.ComparisonId, c.RunId });
            e.HasIndex(c => c.RunId);
            e.HasOne<Comparison>().WithMany(c => c.Runs).HasForeignKey(c => c.ComparisonId).OnDelete(DeleteBehavior.Cascade);
            e.HasOne(c => c.Run).WithMany().HasForeignKey(c => c.RunId).OnDelete(DeleteBehavior.Restrict);
        });
        b.Entity<Annotation>(e =>
        {
            e.Property(a => a.Version).IsConcurrencyToken();
            e.Property(a => a.Shape).HasConversion<string>().HasMaxLength(8);
            e.HasIndex(a => a.RunId);
            e.HasIndex(a => a.ComparisonId);
            e.HasIndex(a => a.LabelId);
            e.HasOne(a => a.Run).WithMany().HasForeignKey(a => a.RunId).OnDelete(DeleteBehavior.Restrict);
            e.HasOne(a => a.Comparison).WithMany().HasForeignKey(a => a.ComparisonId).OnDelete(DeleteBehavior.Restrict);
            e.HasOne(a => a.Label).WithMany().HasForeignKey(a => a.LabelId).OnDelete(DeleteBehavior.Restrict);
            e.HasOne(a => a.Author).WithMany().HasForeignKey(a => a.AuthorId).OnDelete(DeleteBehavior.Restrict);
            e.ToTable(t => t.HasCheckConstraint("CK_Annotation_Target", "(\"RunId\" IS NULL) <> (\"ComparisonId\" IS NULL)"));
        });
        b.Entity<Comment>(e =>
        {
            e.Property(c => c.Version).IsConcurrencyToken();
            e.HasIndex(c => c.AnnotationId);
            e.HasOne(c => c.Annotation).WithMany(a => a.Comments).HasForeignKey(c => c.AnnotationId).OnDelete(DeleteBehavior.Restrict);
            e.HasOne(c => c.Author).WithMany().HasForeignKey(c => c.AuthorId).OnDelete(DeleteBehavior.Restrict);
        });
        b.Entity<Label>(e =>
        {
            e.Property(l => l.Version).IsConcurrencyToken();
            e.Property(l => l.Name).HasMaxLength(64);
            e.HasIndex(l => l.Name);
        });
        b.Entity<HeadTag>(e =>
        {
            e.Property(t => t.Version).IsConcurrencyToken();
            e.Property(t => t.Tag).HasMaxLength(64);
            e.HasIndex(t => new { t.ModelName, t.Layer, t.Head });
            e.HasIndex(t => t.Tag);
            e.HasOne(t => t.Author).WithMany().HasForeignKey(t => t.AuthorId).OnDelete(DeleteBehavior.Restrict);
        });
        b.Entity<Gallery>(e =>
        {
            e.Property(g => g.Version).IsConcurrencyToken();
            e.Property(g => g.Visibility).HasConversion<string>().HasMaxLength(8);
            e.HasIndex(g => g.PublicToken).IsUnique();
            e.HasIndex(g => g.OwnerId);
            e.HasOne(g => g.Owner).WithMany().HasForeignKey(g => g.OwnerId).OnDelete(DeleteBehavior.Restrict);
        });
        b.Entity<GalleryItem>(e =>
        {
            e.Property(i => i.Version).IsConcurrencyToken();
            e.HasIndex(i => new { i.GalleryId, i.Position });
            e.HasIndex(i => i.RunId);
            e.HasIndex(i => i.ComparisonId);
            e.HasOne(i => i.Gallery).WithMany(g => g.Items).HasForeignKey(i => i.GalleryId).OnDelete(DeleteBehavior.Cascade);
            e.HasOne(i => i.Run).WithMany().HasForeignKey(i => i.RunId).OnDelete(DeleteBehavior.Restrict);
            e.HasOne(i => i.Comparison).WithMany().HasForeignKey(i => i.ComparisonId).OnDelete(DeleteBehavior.Restrict);
            e.ToTable(t => t.HasCheckConstraint("CK_GalleryItem_Target", "(\"RunId\" IS NULL) <> (\"ComparisonId\" IS NULL)"));
        });
        b.Entity<Revision>(e =>
        {
            e.Property(r => r.Action).HasConversion<string>().HasMaxLength(8);
            e.Property(r => r.EntityType).HasMaxLength(16);
            e.HasIndex(r => new { r.EntityType, r.EntityId, r.Version });
            e.HasOne(r => r.Author).WithMany().HasForeignKey(r => r.AuthorId).OnDelete(DeleteBehavior.Restrict);
        });
    }
}
