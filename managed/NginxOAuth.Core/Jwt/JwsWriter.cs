using System;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Keys;

namespace NginxOAuth.Core.Jwt;

/// <summary>
/// Produces compact JWS (JWTs): header {"alg","typ":"JWT","kid"?}, a payload
/// written by the caller with a <see cref="Utf8JsonWriter"/> (no reflection,
/// so NativeAOT-safe), signed by a <see cref="JwsSigner"/>.
/// </summary>
public static class JwsWriter
{
    public delegate void PayloadWriter(Utf8JsonWriter writer);

    // A JWT is not HTML: only what JSON requires is escaped.
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Create(JwsSigner signer, JwsAlgorithm alg, ReadOnlySpan<byte> kid, PayloadWriter payload)
    {
        using var header = new PooledBufferWriter(128);
        using (var w = new Utf8JsonWriter(header, Options))
        {
            w.WriteStartObject();
            w.WriteString("alg"u8, JwsAlgorithms.Name(alg));
            w.WriteString("typ"u8, "JWT"u8);
            if (!kid.IsEmpty)
            {
                w.WriteString("kid"u8, kid);
            }
            w.WriteEndObject();
        }

        using var body = new PooledBufferWriter(512);
        using (var w = new Utf8JsonWriter(body, Options))
        {
            w.WriteStartObject();
            payload(w);
            w.WriteEndObject();
        }

        string input = Base64Url.EncodeToString(header.WrittenSpan) + "." + Base64Url.EncodeToString(body.WrittenSpan);
        byte[] signature = signer.Sign(alg, Encoding.ASCII.GetBytes(input));
        return input + "." + Base64Url.EncodeToString(signature);
    }

    /// <summary>128 random bits, base64url (a "jti").</summary>
    public static string RandomId() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16));
}
