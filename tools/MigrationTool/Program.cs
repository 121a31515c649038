using AttnPortal.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using Microsoft.EntityFrameworkCore.Migrations.Design;
using Microsoft.Extensions.DependencyInjection;

// Adds a migration to AttnPortal.Data/Migrations the way `dotnet ef migrations add NAME` would.
if (args.Length != 1) { Console.Error.WriteLine("usage: MigrationTool NAME"); return 2; }
string dataDir = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../AttnPortal.Data"));
var options = new DbContextOptionsBuilder<PortalDbContext>().UseSqlite("Data Source=:memory:").Options;
using var context = new PortalDbContext(options);
var services = new ServiceCollection().AddEntityFrameworkDesignTimeServices().AddDbContextDesignTimeServices(context);
new Microsoft.EntityFrameworkCore.Sqlite.Design.Internal.SqliteDesignTimeServices().ConfigureDesignTimeServices(services);
#pragma warning disable EF1001
var scaffolder = services.BuildServiceProvider().GetRequiredService<IMigrationsScaffolder>();
var migration = scaffolder.ScaffoldMigration(args[0], "AttnPortal.Data", "Migrations");
var files = scaffolder.Save(dataDir, migration, Path.Combine(dataDir, "Migrations"));
Console.WriteLine($"wrote {files.MigrationFile}\n      {files.SnapshotFile}");
return 0;
