using System.Globalization;

namespace AttnPortal.Web.Rendering;

/// <summary>
/// Which attention rows of a run to look at: one generation step (query), layer and head each, or the mean over that
/// axis where the value is null. <c>new AttentionSelection(0, null, null)</c> is step 0 averaged over every layer and
/// head; <c>new AttentionSelection(null, 31, 7)</c> is layer 31, head 7 averaged over every step.
/// </summary>
public readonly record struct AttentionSelection(int? Step, int? Layer, int? Head)
{
    /// <summary>Every step, layer and head averaged.</summary>
    public static AttentionSelection MeanOfAll => default;

    /// <summary>A short, file-name-safe form: <c>s3-l31-hmean</c>.</summary>
    public string Key => $"s{Part(Step)}-l{Part(Layer)}-h{Part(Head)}";

    public override string ToString() => $"step {Part(Step)}, layer {Part(Layer)}, head {Part(Head)}";

    private static string Part(int? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "mean";
}

/// <summary>How one layer's attention mass (mean over heads) splits between the three kinds of key.</summary>
public readonly record struct LayerShare(float Image, float Text, float Generated);
