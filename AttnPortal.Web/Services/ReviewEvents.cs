namespace AttnPortal.Web.Services;

/// <summary>Something a teammate changed on a topic (a run, comparison or gallery): pages showing it reload that part.</summary>
/// <param name="Kind">What changed: "annotation", "comment", "label", "headtag", "gallery".</param>
public sealed record ReviewChange(string Topic, string Kind, Guid? EntityId, string ByUser);

/// <summary>
/// In-process fan-out of review changes and of who is viewing what, to every Blazor circuit of this portal process (the
/// database stays the record; a page reloads from it when told something changed).
/// </summary>
public sealed class ReviewEvents
{
    private readonly Dictionary<string, List<Viewer>> _viewers = new();

    public static string RunTopic(Guid id) => $"run:{id}";
    public static string ComparisonTopic(Guid id) => $"comparison:{id}";
    public static string GalleryTopic(Guid id) => $"gallery:{id}";
    /// <summary>Presence on a comparison not saved yet: its runs in pane order.</summary>
    public static string UnsavedComparisonTopic(IEnumerable<Guid> runIds) => $"compare:{string.Join(",", runIds)}";
    /// <summary>The team's label set.</summary>
    public const string LabelsTopic = "labels";
    /// <summary>The head tags of one model.</summary>
    public static string ModelTopic(string modelName) => $"model:{modelName}";

    public event Action<ReviewChange>? Changed;
    /// <summary>Raised with the topic whose set of viewers changed.</summary>
    public event Action<string>? PresenceChanged;

    public void Publish(ReviewChange change) => Changed?.Invoke(change);

    /// <summary>Marks <paramref name="userName"/> as viewing <paramref name="topic"/> until the handle is disposed (one
    /// handle per open page; the same person in two tabs counts once).</summary>
    public IDisposable Join(string topic, string userName)
    {
        var viewer = new Viewer(this, topic, userName);
        lock (_viewers)
        {
            if (!_viewers.TryGetValue(topic, out var list)) _viewers[topic] = list = [];
            list.Add(viewer);
        }
        PresenceChanged?.Invoke(topic);
        return viewer;
    }

    /// <summary>The distinct people viewing <paramref name="topic"/> now, in the order they arrived.</summary>
    public IReadOnlyList<string> Viewers(string topic)
    {
        lock (_viewers)
            return _viewers.TryGetValue(topic, out var list) ? list.Select(v => v.UserName).Distinct().ToList() : [];
    }

    private void Leave(Viewer viewer)
    {
        lock (_viewers)
        {
            if (!_viewers.TryGetValue(viewer.Topic, out var list) || !list.Remove(viewer)) return;
            if (list.Count == 0) _viewers.Remove(viewer.Topic);
        }
        PresenceChanged?.Invoke(viewer.Topic);
    }

    private sealed class Viewer(ReviewEvents owner, string topic, string userName) : IDisposable
    {
        public string Topic { get; } = topic;
        public string UserName { get; } = userName;
        public void Dispose() => owner.Leave(this);
    }
}
