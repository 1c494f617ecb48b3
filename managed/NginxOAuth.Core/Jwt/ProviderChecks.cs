using System;
using System.Buffers;
using System.Text.Json;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Policy;

namespace NginxOAuth.Core.Jwt;

/// <summary>
/// Per-issuer providers (auth_jwt_provider): which provider a token claims
/// (its unverified "iss", read before any key is chosen), and the checks of
/// a provider's policy after the signature: "iss" equal to the provider's
/// issuer, then the RFC 9068 options (typ, exp, lifetime, audience).
/// </summary>
public static class ProviderChecks
{
    /// <summary>
    /// The "iss" of a compact JWS, unverified: the payload must decode
    /// (strict base64url, UTF-8, a JSON object without repeated names, as
    /// verification reads it). Writes the unescaped issuer to
    /// <paramref name="output"/>. NotFound when there is no string "iss";
    /// BufferTooSmall with the length needed in <paramref name="length"/>.
    /// </summary>
    public static IssuerResult ReadIssuer(ReadOnlySpan<byte> token, Span<byte> output, out int length)
    {
        length = 0;
        if (token.Length > Limits.MaxToken)
        {
            return IssuerResult.TokenTooLarge;
        }
        int dot1 = token.IndexOf((byte)'.');
        if (dot1 < 0)
        {
            return IssuerResult.TokenMalformed;
        }
        int next = token[(dot1 + 1)..].IndexOf((byte)'.');
        if (next < 0)
        {
            return IssuerResult.TokenMalformed;
        }
        int dot2 = dot1 + 1 + next;
        if (token[(dot2 + 1)..].IndexOf((byte)'.') >= 0)
        {
            return IssuerResult.TokenMalformed;
        }

        ReadOnlySpan<byte> encoded = token[(dot1 + 1)..dot2];
        int capacity = Math.Max(1, System.Buffers.Text.Base64Url.GetMaxDecodedLength(encoded.Length));
        byte[] buffer = ArrayPool<byte>.Shared.Rent(capacity);
        try
        {
            if (!JwtVerifier.TryDecode(encoded, buffer, out int written) || written == 0)
            {
                return IssuerResult.TokenMalformed;
            }
            ReadOnlySpan<byte> payload = buffer.AsSpan(0, written);
            Span<MemberValue> found = stackalloc MemberValue[1];
            if (JsonGuard.Check(payload, new JsonGuard.MemberNames("iss"u8, default, default), found)
                != JsonShape.Object)
            {
                return IssuerResult.TokenMalformed;
            }
            MemberValue iss = found[0];
            if (!iss.IsString)
            {
                return IssuerResult.NotFound;
            }

            byte[] text = System.Text.Encoding.UTF8.GetBytes(iss.GetString(payload));
            length = text.Length;
            if (text.Length > output.Length)
            {
                return IssuerResult.BufferTooSmall;
            }
            text.CopyTo(output);
            return IssuerResult.Ok;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
        }
    }

    /// <summary>The provider's checks on a verified (or cached) token.</summary>
    internal static TokenError Check(ProviderProfile profile, JsonElement header, JsonElement payload, long now,
        long leeway)
    {
        if (!payload.TryGetProperty("iss"u8, out JsonElement iss) || iss.ValueKind != JsonValueKind.String
            || !iss.ValueEquals(profile.Issuer))
        {
            return TokenError.IssuerMismatch;
        }

        if ((profile.Options & ProviderOptions.AccessTokenType) != 0 && !IsAccessTokenType(header))
        {
            return TokenError.AtTypeMismatch;
        }

        bool needExp = (profile.Options & ProviderOptions.RequireExp) != 0 || profile.MaxLifetime > 0;
        long exp = 0;
        if (needExp)
        {
            if (!payload.TryGetProperty("exp"u8, out JsonElement e))
            {
                return TokenError.ExpMissing;
            }
            switch (NumericDate.Read(e, out exp))
            {
                case NumericDateStatus.NotANumber:
                    return TokenError.ExpMissing;
                case NumericDateStatus.OutOfRange:
                    return TokenError.TimeInvalid;
            }
            if ((profile.Options & ProviderOptions.RequireExp) != 0 && (Int128)now >= (Int128)exp + leeway)
            {
                return TokenError.Expired;
            }
        }

        if (profile.MaxLifetime > 0)
        {
            if (!payload.TryGetProperty("iat"u8, out JsonElement i))
            {
                return TokenError.IatMissing;
            }
            switch (NumericDate.Read(i, out long iat))
            {
                case NumericDateStatus.NotANumber:
                    return TokenError.IatMissing;
                case NumericDateStatus.OutOfRange:
                    return TokenError.TimeInvalid;
            }
            if ((Int128)exp - iat > profile.MaxLifetime)
            {
                return TokenError.LifetimeTooLong;
            }
        }

        if (profile.Audiences.Count > 0 && !HasAudience(profile, payload))
        {
            return TokenError.AudienceMismatch;
        }
        return TokenError.None;
    }

    // RFC 9068 2.1: "at+jwt"; RFC 8725 3.11 / RFC 6838: media types are
    // case-insensitive and "application/" may be written out.
    private static bool IsAccessTokenType(JsonElement header)
    {
        if (!header.TryGetProperty("typ"u8, out JsonElement typ) || typ.ValueKind != JsonValueKind.String)
        {
            return false;
        }
        string value = typ.GetString()!;
        return value.Equals("at+jwt", StringComparison.OrdinalIgnoreCase)
            || value.Equals("application/at+jwt", StringComparison.OrdinalIgnoreCase);
    }

    private static bool HasAudience(ProviderProfile profile, JsonElement payload)
    {
        if (!payload.TryGetProperty("aud"u8, out JsonElement aud))
        {
            return false;
        }
        if (aud.ValueKind == JsonValueKind.String)
        {
            return Accepted(profile, aud);
        }
        if (aud.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement item in aud.EnumerateArray())
            {
                if (item.ValueKind == JsonValueKind.String && Accepted(profile, item))
                {
                    return true;
                }
            }
        }
        return false;
    }

    private static bool Accepted(ProviderProfile profile, JsonElement value)
    {
        foreach (byte[] audience in profile.Audiences)
        {
            if (value.ValueEquals(audience))
            {
                return true;
            }
        }
        return false;
    }
}

/// <summary>The outcome of <see cref="ProviderChecks.ReadIssuer"/> (NOX_* codes).</summary>
public enum IssuerResult
{
    Ok = 0,
    TokenMalformed = 1,
    TokenTooLarge = 2,
    NotFound = 20,
    BufferTooSmall = -2,
}
