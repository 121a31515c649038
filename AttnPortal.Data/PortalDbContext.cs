using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;

namespace AttnPortal.Data;

public sealed class PortalDbContext(DbContextOptions<PortalDbContext> options) : IdentityDbContext<PortalUser>(options)
{
    public DbSet<ImageAsset> Images => Set<ImageAsset>();
    public DbSet<Run> Runs => Set<Run>();

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
            e.HasIndex(r => r.CreatedUtc);
            e.HasIndex(r => r.PairId);
            e.Property(r => r.Status).HasConversion<string>().HasMaxLength(16);
            e.HasOne(r => r.Image).WithMany().HasForeignKey(r => r.ImageId).OnDelete(DeleteBehavior.Restrict);
            e.HasOne(r => r.Owner).WithMany().HasForeignKey(r => r.OwnerId).OnDelete(DeleteBehavior.Restrict);
        });
    }
}
