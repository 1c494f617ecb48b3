using System;
using System.Text.Json;
using System.Text.Unicode;
using NginxOAuth.Core.Json;

namespace NginxOAuth.Core.OAuth2;

/// <summary>What a token endpoint's answer means for the request (the NOX_STS_* codes of the same meaning).</summary>
public enum TokenErrorKind
{
    /// <summary>A 2xx answer without an "error" member: a token response to read.</summary>
    None = 0,

    /// <summary>
    /// A 4xx, or an "error" member: the grant was refused (invalid_grant,
    /// invalid_target, unauthorized_client, invalid_request ...) -> 401.
    /// </summary>
    Rejected = 60,

    /// <summary>"access_denied", "invalid_scope", "insufficient_scope" -> 403.</summary>
    Forbidden = 61,

    /// <summary>1xx, 3xx, 5xx: the server's trouble -> 502.</summary>
    ServerError = 62,
}

/// <summary>A classification and the length of the error code written to the caller's buffer.</summary>
public readonly struct TokenErrorResult
{
    public TokenErrorResult(TokenErrorKind kind, int codeLength = 0)
    {
        Kind = kind;
        CodeLength = codeLength;
    }

    public TokenErrorKind Kind { get; }

    public int CodeLength { get; }
}

/// <summary>
/// OAuth 2.0 token endpoint error answers (RFC 6749 5.2, RFC 8693 2.2.2), read
/// one way by the STS exchange and by auth_oauth2_token's exchange.
/// </summary>
public static class TokenErrors
{
    /// <summary>The longest error code returned (NOX_STS_ERROR_MAX).</summary>
    public const int ErrorMax = 128;

    /// <summary>403 for the codes that say "not allowed", 401 for every other refusal.</summary>
    public static TokenErrorKind KindOf(string code) =>
        code is "access_denied" or "invalid_scope" or "insufficient_scope"
            ? TokenErrorKind.Forbidden
            : TokenErrorKind.Rejected;

    /// <summary>
    /// Classifies a JSON answer by its HTTP status and its "error" member; on a
    /// refusal the error code (printable ASCII, at most <see cref="ErrorMax"/>
    /// bytes, empty when there is none) goes into <paramref name="output"/>.
    /// A 2xx answer that is not a JSON object is None: the token response
    /// reader reports what is wrong with it.
    /// </summary>
    public static TokenErrorResult Classify(int status, ReadOnlySpan<byte> body, Span<byte> output)
    {
        bool ok = status is >= 200 and <= 299;
        if (!ok && status is not (>= 400 and <= 499))
        {
            return new TokenErrorResult(TokenErrorKind.ServerError);
        }
        if (body.Length > TokenResponses.MaxResponse || !Utf8.IsValid(body) || JsonGuard.Check(body) != JsonShape.Object)
        {
            return ok ? new TokenErrorResult(TokenErrorKind.None) : Refusal(TokenErrorKind.Rejected, "", output);
        }

        using JsonDocument doc = JsonGuard.Parse(body.ToArray());
        bool hasError = doc.RootElement.TryGetProperty("error"u8, out JsonElement error);
        if (!hasError && ok)
        {
            return new TokenErrorResult(TokenErrorKind.None);
        }
        string code = hasError && error.ValueKind == JsonValueKind.String ? TryString(error) ?? "" : "";
        return Refusal(KindOf(code), code, output);
    }

    /// <summary>An error or fault code into the output: printable ASCII ('?' for anything else), at most <see cref="ErrorMax"/> bytes.</summary>
    public static int WriteCode(string code, Span<byte> output)
    {
        int length = Math.Min(Math.Min(code.Length, ErrorMax), output.Length);
        for (int i = 0; i < length; i++)
        {
            char ch = code[i];
            output[i] = ch is >= ' ' and <= '~' ? (byte)ch : (byte)'?';
        }
        return length;
    }

    private static TokenErrorResult Refusal(TokenErrorKind kind, string code, Span<byte> output) =>
        new(kind, WriteCode(code, output));

    private static string? TryString(JsonElement value)
    {
        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }
}
