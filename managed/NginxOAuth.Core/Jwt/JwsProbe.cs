using System;
using System.Buffers;
using System.Buffers.Text;
using System.Text.Unicode;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Keys;

namespace NginxOAuth.Core.Jwt;

/// <summary>What <see cref="JwsProbe.Probe"/> found.</summary>
public readonly struct JwsProbeResult
{
    public JwsProbeResult(TokenError error, int issuerLength)
    {
        Error = error;
        IssuerLength = issuerLength;
    }

    /// <summary>None: the token is a JWS for local verification.</summary>
    public TokenError Error { get; }

    /// <summary>Bytes of the unverified "iss" written; -1 when there is none.</summary>
    public int IssuerLength { get; }
}

/// <summary>
/// Decides, without any key and without verifying anything, whether a
/// bearer token is a JWS that a location with both JWT keys and token
/// introspection (auth_jwt_introspect) verifies locally: the compact JWS form
/// (three strict base64url parts), a protected header that is a JSON object
/// (strict, no repeated names) naming a supported signing "alg" and no
/// "enc" (not a JWE, not "none"). It also reads the payload's unverified
/// "iss", which the shim compares with the issuers the location names. The
/// answer routes the token; it never grants anything: a JWS still goes
/// through <see cref="JwtVerifier"/>.
/// </summary>
public static class JwsProbe
{
    private static readonly SearchValues<byte> Base64UrlAlphabet =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"u8);

    public static JwsProbeResult Probe(ReadOnlySpan<byte> token, Span<byte> issuer)
    {
        if (token.Length > Limits.MaxToken)
        {
            return new JwsProbeResult(TokenError.TokenTooLarge, -1);
        }

        int dot1 = token.IndexOf((byte)'.');
        if (dot1 <= 0)
        {
            return new JwsProbeResult(TokenError.TokenMalformed, -1);
        }
        int rest = token[(dot1 + 1)..].IndexOf((byte)'.');
        if (rest < 0)
        {
            return new JwsProbeResult(TokenError.TokenMalformed, -1);
        }
        int dot2 = dot1 + 1 + rest;
        if (token[(dot2 + 1)..].IndexOf((byte)'.') >= 0 || HasForeignByte(token))
        {
            return new JwsProbeResult(TokenError.TokenMalformed, -1);
        }

        ReadOnlySpan<byte> encodedHeader = token[..dot1];
        if (Base64Url.GetMaxDecodedLength(encodedHeader.Length) > Limits.MaxHeader + 2)
        {
            return new JwsProbeResult(TokenError.TokenTooLarge, -1);
        }

        TokenError error = CheckHeader(encodedHeader);
        if (error != TokenError.None)
        {
            return new JwsProbeResult(error, -1);
        }

        return ReadIssuer(token[(dot1 + 1)..dot2], issuer);
    }

    // Every byte other than the two dots is of the base64url alphabet.
    private static bool HasForeignByte(ReadOnlySpan<byte> token)
    {
        foreach (byte b in token)
        {
            if (b != (byte)'.' && !Base64UrlAlphabet.Contains(b))
            {
                return true;
            }
        }
        return false;
    }

    private static TokenError CheckHeader(ReadOnlySpan<byte> encoded)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(Base64Url.GetMaxDecodedLength(encoded.Length), 1));
        try
        {
            if (!JwtVerifier.TryDecode(encoded, buffer, out int length) || length == 0
                || !Utf8.IsValid(buffer.AsSpan(0, length)))
            {
                return TokenError.TokenMalformed;
            }
            ReadOnlySpan<byte> header = buffer.AsSpan(0, length);
            Span<MemberValue> found = stackalloc MemberValue[2];
            if (JsonGuard.Check(header, new JsonGuard.MemberNames("alg"u8, "enc"u8, default), found)
                != JsonShape.Object)
            {
                return TokenError.TokenMalformed;
            }
            if (found[0].ValueEquals(header, "none"u8))
            {
                return TokenError.AlgNone;
            }
            if (found[1].Present || !JwsAlgorithms.TryParse(header, found[0], out _))
            {
                return TokenError.AlgUnsupported;
            }
            return TokenError.None;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // The payload's "iss" string, unescaped; a payload that does not decode
    // to a JSON object has none (the token stays a JWS: verification refuses it).
    private static JwsProbeResult ReadIssuer(ReadOnlySpan<byte> encoded, Span<byte> issuer)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(Base64Url.GetMaxDecodedLength(encoded.Length), 1));
        try
        {
            if (!JwtVerifier.TryDecode(encoded, buffer, out int length) || length == 0)
            {
                return new JwsProbeResult(TokenError.None, -1);
            }
            ReadOnlySpan<byte> payload = buffer.AsSpan(0, length);
            Span<MemberValue> found = stackalloc MemberValue[1];
            if (JsonGuard.Check(payload, new JsonGuard.MemberNames("iss"u8, default, default), found)
                != JsonShape.Object || !found[0].IsString)
            {
                return new JwsProbeResult(TokenError.None, -1);
            }
            if (!found[0].Escaped)
            {
                ReadOnlySpan<byte> raw = payload.Slice(found[0].Start, found[0].Length);
                if (raw.Length > issuer.Length)
                {
                    return new JwsProbeResult(TokenError.TokenTooLarge, -1);
                }
                raw.CopyTo(issuer);
                return new JwsProbeResult(TokenError.None, raw.Length);
            }
            byte[] text = System.Text.Encoding.UTF8.GetBytes(found[0].GetString(payload));
            if (text.Length > issuer.Length)
            {
                return new JwsProbeResult(TokenError.TokenTooLarge, -1);
            }
            text.CopyTo(issuer);
            return new JwsProbeResult(TokenError.None, text.Length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
