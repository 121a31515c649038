namespace AttnPortal.Cli;

/// <summary>--name value pairs and --flags; anything else is a usage error naming the argument.</summary>
public sealed class CliArgs
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public CliArgs(IEnumerable<string> args, IReadOnlySet<string> flags)
    {
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            string a = e.Current;
            if (!a.StartsWith("--", StringComparison.Ordinal)) throw new UsageException($"unexpected argument '{a}'");
            if (flags.Contains(a)) { _values[a] = null; continue; }
            if (!e.MoveNext()) throw new UsageException($"{a} needs a value");
            _values[a] = e.Current;
        }
    }

    public string? Get(string name)
    {
        _read.Add(name);
        return _values.GetValueOrDefault(name);
    }

    public string Require(string name) => Get(name) ?? throw new UsageException($"{name} is required");
    public bool Flag(string name) { _read.Add(name); return _values.ContainsKey(name); }

    public int Int(string name, int fallback, int min = 1)
    {
        string? v = Get(name);
        if (v is null) return fallback;
        if (!int.TryParse(v, out int n) || n < min) throw new UsageException($"{name} must be an integer ≥ {min}, not '{v}'");
        return n;
    }

    /// <summary>Call after reading every option: an option nobody read is a typo the user should hear about.</summary>
    public void RejectUnknown()
    {
        var unknown = _values.Keys.Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0) throw new UsageException($"unknown option {string.Join(", ", unknown)}");
    }
}

public sealed class UsageException(string message) : Exception(message);
