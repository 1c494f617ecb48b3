using System;
using System.Security.Cryptography;
using System.Text.Json;
using NginxOAuth.Core.Json;

namespace NginxOAuth.Core.OAuth2;

/// <summary>Outcomes of reading an IdP response (NOX_RESPONSE_* codes, NOX_JSON_*).</summary>
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
    /// <summary>NOX_E_BUFFER_TOO_SMALL.</summary>
    BufferTooSmall = -2,
}

/// <summary>An introspection response: its decision and "exp" (0 when absent or not a positive integer).</summary>
public readonly struct IntrospectionResult
{
    public IntrospectionResult(ResponseError error, long exp)
    {
        Error = error;
        Exp = exp;
    }

    public ResponseError Error { get; }

    public long Exp { get; }
}

/// <summary>
/// A token exchange response: the new token and its type written to the
/// caller's buffer (token first, type right after), and "expires_in" (0 when
/// absent or not a positive integer). TypeLength is -1 when the response names
/// no type ("issued_token_type", else "token_type").
/// </summary>
public readonly struct ExchangeResult
{
    public ExchangeResult(ResponseError error, int tokenLength, int typeLength, long expiresIn)
    {
        Error = error;
        TokenLength = tokenLength;
        TypeLength = typeLength;
        ExpiresIn = expiresIn;
    }

    public ResponseError Error { get; }

    public int TokenLength { get; }

    public int TypeLength { get; }

    public long ExpiresIn { get; }
}

/// <summary>
/// RFC 7662 introspection and RFC 8693 token exchange responses, as
/// kjdev/nginx-auth-oauth2-token reads them: a JSON object of at most 64 KiB,
/// "active" a boolean, "access_token" a non-empty string. Other members
/// (sub, scope, client_id, any claim) are read with <see cref="JsonRender.Get"/>.
/// </summary>
public static class TokenResponses
{
    public const int MaxResponse = 64 * 1024;

    public static IntrospectionResult ParseIntrospection(ReadOnlySpan<byte> json)
    {
        ResponseError gate = Gate(json);
        if (gate != ResponseError.None)
        {
            return new IntrospectionResult(gate, 0);
        }

        using JsonDocument doc = Parse(json);
        JsonElement root = doc.RootElement;
        long exp = PositiveInteger(root, "exp"u8);

        if (!root.TryGetProperty("active"u8, out JsonElement active)
            || active.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            return new IntrospectionResult(ResponseError.ActiveInvalid, exp);
        }

        return new IntrospectionResult(active.ValueKind == JsonValueKind.True ? ResponseError.None
            : ResponseError.Inactive, exp);
    }

    public static ExchangeResult ParseExchange(ReadOnlySpan<byte> json, Span<byte> output)
    {
        ResponseError gate = Gate(json);
        if (gate != ResponseError.None)
        {
            return new ExchangeResult(gate, -1, -1, 0);
        }

        using JsonDocument doc = Parse(json);
        JsonElement root = doc.RootElement;
        long expiresIn = PositiveInteger(root, "expires_in"u8);

        if (!root.TryGetProperty("access_token"u8, out JsonElement token)
            || token.ValueKind != JsonValueKind.String || token.GetString() is not { Length: > 0 } tokenText)
        {
            return new ExchangeResult(ResponseError.AccessTokenMissing, -1, -1, expiresIn);
        }

        string? typeText = null;
        if ((root.TryGetProperty("issued_token_type"u8, out JsonElement type) && type.ValueKind == JsonValueKind.String)
            || (root.TryGetProperty("token_type"u8, out type) && type.ValueKind == JsonValueKind.String))
        {
            typeText = type.GetString();
        }

        int tokenLength = System.Text.Encoding.UTF8.GetByteCount(tokenText);
        int typeLength = typeText is null ? -1 : System.Text.Encoding.UTF8.GetByteCount(typeText);
        if (tokenLength + Math.Max(typeLength, 0) > output.Length)
        {
            return new ExchangeResult(ResponseError.BufferTooSmall, tokenLength, typeLength, expiresIn);
        }

        System.Text.Encoding.UTF8.GetBytes(tokenText, output);
        if (typeText is not null)
        {
            System.Text.Encoding.UTF8.GetBytes(typeText, output[tokenLength..]);
        }
        return new ExchangeResult(ResponseError.None, tokenLength, typeLength, expiresIn);
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
        return JsonGuard.Check(json) switch
        {
            JsonShape.Object => ResponseError.None,
            JsonShape.Array or JsonShape.Scalar => ResponseError.JsonNotObject,
            _ => ResponseError.JsonInvalid, // also duplicate member names: ambiguous
        };
    }

    private static JsonDocument Parse(ReadOnlySpan<byte> json)
    {
        byte[] copy = json.ToArray();
        return JsonGuard.Parse(copy);
    }

    private static long PositiveInteger(JsonElement root, ReadOnlySpan<byte> name) =>
        root.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.Number
            && value.TryGetInt64(out long n) && n > 0 ? n : 0;
}
