namespace AttnPortal.Web.Services;

/// <summary>The "Portal" section of appsettings.json.</summary>
public sealed class PortalOptions
{
    public string DataDirectory { get; set; } = "data";
    /// <summary>SQLite connection string; a relative Data Source is a file in the data directory.</summary>
    public string Database { get; set; } = "Data Source=attnportal.db";
    public AdminOptions Admin { get; set; } = new();
    public UploadOptions Upload { get; set; } = new();
    public List<ModelOptions> Models { get; set; } = [];
    public WorkerOptions Worker { get; set; } = new();

    public ModelOptions? Model(string name) => Models.FirstOrDefault(m => m.Name == name);
}

public sealed class WorkerOptions
{
    /// <summary>Memory the loaded models may hold together, in GiB: weights at their configured dtype and what their last
    /// runs keep (KV cache, recorded graphs). Models stay loaded between jobs and the least recently used is unloaded
    /// to make room; 0 keeps only the last model.</summary>
    public double ModelMemoryBudgetGiB { get; set; }
}

public sealed class AdminOptions
{
    public string? Email { get; set; }
    public string? Password { get; set; }
}

public sealed class UploadOptions
{
    public long MaxBytes { get; set; } = 20_000_000;
    public long MaxPixels { get; set; } = 50_000_000;
    public int MaxPromptChars { get; set; } = 2000;
}

/// <summary>A checkpoint the portal can run (appsettings.json "Portal:Models").</summary>
public sealed class ModelOptions
{
    public string Name { get; set; } = "";
    public string Path { get; set; } = "";
    public string Device { get; set; } = "cpu";
    public string DType { get; set; } = "float32";
    public int MaxNewTokens { get; set; } = 64;
    public string? Description { get; set; }
}

/// <summary>Where the portal keeps files: everything under one data directory, relative to the content root.</summary>
public sealed class PortalPaths(string contentRoot, PortalOptions options)
{
    public string Root { get; } = System.IO.Path.GetFullPath(System.IO.Path.Combine(contentRoot, options.DataDirectory));
    public string ContentRoot { get; } = contentRoot;
    public string Images => System.IO.Path.Combine(Root, "images");
    public string Artifacts => System.IO.Path.Combine(Root, "artifacts");
    public string Cache => System.IO.Path.Combine(Root, "cache");

    public string Resolve(string relative) => System.IO.Path.GetFullPath(System.IO.Path.Combine(Root, relative));
    public string SqliteConnectionString(string connectionString)
    {
        var b = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(connectionString);
        if (b.DataSource != ":memory:" && !System.IO.Path.IsPathRooted(b.DataSource)) b.DataSource = System.IO.Path.Combine(Root, b.DataSource);
        return b.ToString();
    }

    public string ModelPath(ModelOptions model) => System.IO.Path.GetFullPath(System.IO.Path.Combine(ContentRoot, model.Path));

    public void EnsureCreated()
    {
        foreach (var d in new[] { Root, Images, Artifacts, Cache }) Directory.CreateDirectory(d);
    }
}
