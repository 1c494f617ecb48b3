using System;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Unicode;
using NginxOAuth.Core.Json;

namespace NginxOAuth.Core.OAuth2;

/// <summary>Outcomes of reading an IdP response (NOX_RESPONSE_* codes, NOX_JSON_*, and the NOX_* codes named below).</summary>
public enum ResponseError
{
    None = 0,
    JsonInvalid = 30,
    JsonNotObject = 31,
    /// <summary>RFC 7662 "active": false.</summary>
    Inactive = 50,
    /// <summary>"active" missing or not a boolean.</summary>
    ActiveInvalid = 51,
    /// <summary>Over <see cref="TokenResponses.MaxResponse"/> bytes.</summary>
    TooLarge = 52,
    /// <summary>Token exchange response without a non-empty string "access_token".</summary>
    AccessTokenMissing = 53,
    /// <summary>Introspection: "active" true but "exp" is at or before now (NOX_EXPIRED).</summary>
    Expired = 7,
    /// <summary>Introspection "exp" present but not a number of seconds within 64 bits (NOX_TIME_INVALID).</summary>
    TimeInvalid = 17,
    /// <summary>The issued token holds a control character or invalid UTF-8 (NOX_TOKEN_CHARS).</summary>
    TokenChars = 65,
    /// <summary>The response is not valid UTF-8 (NOX_UTF8_INVALID).</summary>
    Utf8Invalid = 66,
    /// <summary>NOX_E_BUFFER_TOO_SMALL.</summary>
    BufferTooSmall = -2,
}

/// <summary>
/// An introspection response: its decision and, for an active token, the
/// seconds from now until its "exp" (at least 1), or 0 when it has no exp.
/// </summary>
public readonly struct IntrospectionResult
{
    public IntrospectionResult(ResponseError error, long expiresIn)
    {
        Error = error;
        ExpiresIn = expiresIn;
    }

    public ResponseError Error { get; }

    public long ExpiresIn { get; }
}

/// <summary>
/// A token exchange response: the new token, its "token_type" and its
/// "issued_token_type" written to the caller's buffer in that order, and
/// "expires_in" in whole seconds, rounded down (a number in any form, or a
/// string of digits; 0 when it is zero or negative; -1 when absent, unusable
/// or beyond 64 bits). TypeLength and IssuedTypeLength are -1 when the
/// response has no such string member.
/// </summary>
public readonly struct ExchangeResult
{
    public ExchangeResult(ResponseError error, int tokenLength, int typeLength, long expiresIn,
        int issuedTypeLength = -1)
    {
        Error = error;
        TokenLength = tokenLength;
        TypeLength = typeLength;
        IssuedTypeLength = issuedTypeLength;
        ExpiresIn = expiresIn;
    }

    public ResponseError Error { get; }

    public int TokenLength { get; }

    /// <summary>"token_type" (how to present the token: "Bearer", "N_A").</summary>
    public int TypeLength { get; }

    /// <summary>"issued_token_type" (RFC 8693: what the token is, a URN).</summary>
    public int IssuedTypeLength { get; }

    public long ExpiresIn { get; }
}

/// <summary>
/// RFC 7662 introspection and RFC 8693 token exchange responses, as
/// kjdev/nginx-auth-oauth2-token reads them: a JSON object of at most 64 KiB,
/// "active" a boolean, "access_token" a non-empty string. Stricter where the
/// anchor lets a problem through: the document must be UTF-8, an issued
/// token must be safe in a header (<see cref="TokenChars"/>), and an active
/// token whose "exp" has passed is expired. Times read through
/// <see cref="NumericDate"/>. Other members (sub, scope, client_id, any claim)
/// are read with <see cref="JsonRender.Get"/>.
/// </summary>
public static class TokenResponses
{
    public const int MaxResponse = 64 * 1024;

    /// <summary>An issued token is sent as it was issued or not at all: never with a U+FFFD in it.</summary>
    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(false, true);

    /// <summary>
    /// Reads an introspection answer at Unix time <paramref name="now"/>.
    /// One forward pass (<see cref="JsonGuard.Check(ReadOnlySpan{byte}, JsonGuard.MemberNames, Span{MemberValue})"/>)
    /// checks the document and finds the root's "active" and "exp"; no
    /// <see cref="JsonDocument"/> is built (it cost about 9k instructions
    /// per uncached introspection, more than half of the parse). The other
    /// members are read only when a variable asks (<see cref="JsonRender.Get"/>).
    /// </summary>
    public static IntrospectionResult ParseIntrospection(ReadOnlySpan<byte> json, long now)
    {
        if (json.Length > MaxResponse)
        {
            return new IntrospectionResult(ResponseError.TooLarge, 0);
        }
        if (!Utf8.IsValid(json))
        {
            return new IntrospectionResult(ResponseError.Utf8Invalid, 0);
        }

        Span<MemberValue> found = stackalloc MemberValue[2];
        JsonShape shape = JsonGuard.Check(json, new JsonGuard.MemberNames("active"u8, "exp"u8, default), found);
        ResponseError gate = Shape(shape);
        if (gate != ResponseError.None)
        {
            return new IntrospectionResult(gate, 0);
        }

        // a document without duplicate names: the root's only "active", "exp"
        MemberValue active = found[0];
        if (active.Type == JsonTokenType.False)
        {
            return new IntrospectionResult(ResponseError.Inactive, 0);
        }
        if (active.Type != JsonTokenType.True)
        {
            return new IntrospectionResult(ResponseError.ActiveInvalid, 0);
        }

        // "exp": null is read as no exp; anything else must be a time
        MemberValue expValue = found[1];
        if (!expValue.Present || expValue.Type == JsonTokenType.Null)
        {
            return new IntrospectionResult(ResponseError.None, 0);
        }
        if (NumericDate.Read(json, expValue, out long exp) != NumericDateStatus.Ok)
        {
            return new IntrospectionResult(ResponseError.TimeInvalid, 0);
        }
        if (exp <= now)
        {
            return new IntrospectionResult(ResponseError.Expired, 0);
        }
        Int128 left = (Int128)exp - now;
        return new IntrospectionResult(ResponseError.None, left > long.MaxValue ? long.MaxValue : (long)left);
    }

    public static ExchangeResult ParseExchange(ReadOnlySpan<byte> json, Span<byte> output)
    {
        ResponseError gate = Gate(json);
        if (gate != ResponseError.None)
        {
            return new ExchangeResult(gate, -1, -1, -1);
        }

        using JsonDocument doc = Parse(json);
        JsonElement root = doc.RootElement;
        long expiresIn = root.TryGetProperty("expires_in"u8, out JsonElement lifetime) ? Lifetime(lifetime) : -1;

        if (!root.TryGetProperty("access_token"u8, out JsonElement token) || token.ValueKind != JsonValueKind.String)
        {
            return new ExchangeResult(ResponseError.AccessTokenMissing, -1, -1, expiresIn);
        }

        string tokenText;
        try
        {
            tokenText = token.GetString()!;
        }
        catch (InvalidOperationException)
        {
            return new ExchangeResult(ResponseError.TokenChars, -1, -1, expiresIn); // a lone surrogate escape
        }
        if (tokenText.Length == 0)
        {
            return new ExchangeResult(ResponseError.AccessTokenMissing, -1, -1, expiresIn);
        }

        string? typeText = StringMember(root, "token_type"u8);
        string? issuedText = StringMember(root, "issued_token_type"u8);

        int tokenLength = StrictUtf8.GetByteCount(tokenText);
        int typeLength = typeText is null ? -1 : System.Text.Encoding.UTF8.GetByteCount(typeText);
        int issuedLength = issuedText is null ? -1 : System.Text.Encoding.UTF8.GetByteCount(issuedText);
        if (tokenLength + Math.Max(typeLength, 0) + Math.Max(issuedLength, 0) > output.Length)
        {
            return new ExchangeResult(ResponseError.BufferTooSmall, tokenLength, typeLength, expiresIn, issuedLength);
        }

        StrictUtf8.GetBytes(tokenText, output);
        if (!TokenChars.Valid(output[..tokenLength]))
        {
            output[..tokenLength].Clear();
            return new ExchangeResult(ResponseError.TokenChars, -1, -1, expiresIn);
        }
        if (typeText is not null)
        {
            System.Text.Encoding.UTF8.GetBytes(typeText, output[tokenLength..]);
        }
        if (issuedText is not null)
        {
            System.Text.Encoding.UTF8.GetBytes(issuedText, output[(tokenLength + Math.Max(typeLength, 0))..]);
        }
        return new ExchangeResult(ResponseError.None, tokenLength, typeLength, expiresIn, issuedLength);
    }

    /// <summary>A string member (a lone surrogate escape becomes U+FFFD, as GetString would fail).</summary>
    private static string? StringMember(JsonElement root, ReadOnlySpan<byte> name)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind != JsonValueKind.String)
        {
            return null;
        }
        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>
    /// expires_in (RFC 6749 5.1): a number of seconds in any JSON form, or a
    /// string of digits (some token endpoints send "3599"), rounded down; 0
    /// for zero or less; -1 for anything else or beyond 64 bits (no limit
    /// from the IdP: the cache's max_ttl applies). A negative number beyond
    /// 64 bits is 0.
    /// </summary>
    private static long Lifetime(JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.String)
        {
            string text = value.GetString()!;
            return text.Length is > 0 and <= 18 && text.AsSpan().IndexOfAnyExceptInRange('0', '9') < 0
                ? long.Parse(text, System.Globalization.CultureInfo.InvariantCulture)
                : -1;
        }
        return NumericDate.Read(value, out long seconds) switch
        {
            NumericDateStatus.Ok => Math.Max(seconds, 0),
            NumericDateStatus.OutOfRange => JsonMarshal.GetRawUtf8Value(value)[0] == (byte)'-' ? 0 : -1,
            _ => -1,
        };
    }

    /// <summary>SHA-256 of <paramref name="data"/> into 32 bytes (cache keys: no raw token in shared memory).</summary>
    public static bool Sha256(ReadOnlySpan<byte> data, Span<byte> output)
    {
        if (output.Length < SHA256.HashSizeInBytes)
        {
            return false;
        }

        if (Interop.Sha256.TryHash(data, output))
        {
            return true;
        }

        // fallback: a context per thread, reset after each use
        IncrementalHash sha = _sha256 ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(data);
        return sha.TryGetHashAndReset(output, out int written) && written == SHA256.HashSizeInBytes;
    }

    [ThreadStatic]
    private static IncrementalHash? _sha256;

    private static ResponseError Gate(ReadOnlySpan<byte> json)
    {
        if (json.Length > MaxResponse)
        {
            return ResponseError.TooLarge;
        }
        if (!Utf8.IsValid(json))
        {
            return ResponseError.Utf8Invalid; // RFC 8259 8.1: JSON between systems is UTF-8
        }
        return Shape(JsonGuard.Check(json));
    }

    private static ResponseError Shape(JsonShape shape) => shape switch
    {
        JsonShape.Object => ResponseError.None,
        JsonShape.Array or JsonShape.Scalar => ResponseError.JsonNotObject,
        _ => ResponseError.JsonInvalid, // also duplicate member names: ambiguous
    };

    private static JsonDocument Parse(ReadOnlySpan<byte> json)
    {
        byte[] copy = json.ToArray();
        return JsonGuard.Parse(copy);
    }
}
