namespace AttnPortal.Web.Services;

/// <summary>Someone else changed the row since the user read it; the message names who and when, for the user.</summary>
public sealed class ReviewConflictException(string message) : Exception(message);
