using System;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace NginxOAuth.IntegrationTests.Tokens;

/// <summary>
/// Encrypted tokens (JWE compact) for the auth_jwt_type tests: most made by
/// Microsoft.IdentityModel's JsonWebTokenHandler (an independent producer),
/// a few written here where it has no switch for the case (AES-GCM content,
/// "zip", RSA1_5 headers).
/// </summary>
public static class JweFactory
{
    /// <summary>A private RSA JWK (all CRT members) for decryption.</summary>
    public static JsonObject PrivateRsaJwk(RSA rsa, string kid, string? alg = null)
    {
        RSAParameters p = rsa.ExportParameters(true);
        var jwk = new JsonObject
        {
            ["kty"] = "RSA",
            ["kid"] = kid,
            ["use"] = "enc",
            ["n"] = B64(p.Modulus!),
            ["e"] = B64(p.Exponent!),
            ["d"] = B64(p.D!),
            ["p"] = B64(p.P!),
            ["q"] = B64(p.Q!),
            ["dp"] = B64(p.DP!),
            ["dq"] = B64(p.DQ!),
            ["qi"] = B64(p.InverseQ!),
        };
        if (alg is not null)
        {
            jwk["alg"] = alg;
        }
        return jwk;
    }

    /// <summary>A symmetric JWK for "dir" or AES key wrap.</summary>
    public static JsonObject OctJwk(byte[] key, string kid) =>
        new() { ["kty"] = "oct", ["kid"] = kid, ["use"] = "enc", ["k"] = B64(key) };

    /// <summary>
    /// JsonWebTokenHandler.EncryptToken over the claims JSON: the plaintext is
    /// the claims (CreateToken(payload, credentials) would wrap an unsigned
    /// "alg":"none" JWT instead).
    /// </summary>
    public static string Encrypted(JsonObject claims, SecurityKey key, string alg, string enc) =>
        new JsonWebTokenHandler().EncryptToken(TokenFactory.Json(claims), new EncryptingCredentials(key, alg, enc));

    /// <summary>A JWS by <paramref name="signer"/> inside a JWE (cty JWT), both by JsonWebTokenHandler.</summary>
    public static string Nested(SigningKey signer, JsonObject claims, SecurityKey key, string alg, string enc)
    {
        string jws = TokenFactory.Sign(signer, claims);
        return new JsonWebTokenHandler().EncryptToken(jws, new EncryptingCredentials(key, alg, enc));
    }

    /// <summary>dir + AES-GCM, written here (the handler encrypts content with AES-CBC-HMAC only).</summary>
    public static string DirGcm(byte[] key, string kid, string plaintext, string? extraHeader = null,
        string? cty = null)
    {
        string enc = key.Length switch { 16 => "A128GCM", 24 => "A192GCM", _ => "A256GCM" };
        string header = "{\"alg\":\"dir\",\"enc\":\"" + enc + "\",\"kid\":\"" + kid + "\""
            + (cty is null ? "" : ",\"cty\":\"" + cty + "\"") + (extraHeader ?? "") + "}";
        return Gcm(header, key, Array.Empty<byte>(), Encoding.UTF8.GetBytes(plaintext));
    }

    /// <summary>RSA-OAEP-256 + A256GCM, written here.</summary>
    public static string RsaOaep256Gcm(RSA publicKey, string kid, string plaintext, string? cty = null)
    {
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        byte[] wrapped = publicKey.Encrypt(cek, RSAEncryptionPadding.OaepSHA256);
        string header = "{\"alg\":\"RSA-OAEP-256\",\"enc\":\"A256GCM\",\"kid\":\"" + kid + "\""
            + (cty is null ? "" : ",\"cty\":\"" + cty + "\"") + "}";
        return Gcm(header, cek, wrapped, Encoding.UTF8.GetBytes(plaintext));
    }

    /// <summary>A JWE whose header says RSA1_5 (RFC 7516 A.2 style); the rest is well-formed noise.</summary>
    public static string Rsa15(RSA publicKey, string kid, string plaintext)
    {
        byte[] cek = RandomNumberGenerator.GetBytes(32);
        byte[] wrapped = publicKey.Encrypt(cek, RSAEncryptionPadding.Pkcs1);
        string header = "{\"alg\":\"RSA1_5\",\"enc\":\"A256GCM\",\"kid\":\"" + kid + "\"}";
        return Gcm(header, cek, wrapped, Encoding.UTF8.GetBytes(plaintext));
    }

    private static string Gcm(string headerJson, byte[] cek, byte[] encryptedKey, byte[] plaintext)
    {
        string encodedHeader = B64(Encoding.UTF8.GetBytes(headerJson));
        byte[] iv = RandomNumberGenerator.GetBytes(12);
        byte[] ciphertext = new byte[plaintext.Length];
        byte[] tag = new byte[16];
        using (var gcm = new AesGcm(cek, 16))
        {
            gcm.Encrypt(iv, plaintext, ciphertext, tag, Encoding.ASCII.GetBytes(encodedHeader));
        }
        return encodedHeader + "." + B64(encryptedKey) + "." + B64(iv) + "." + B64(ciphertext) + "." + B64(tag);
    }

    /// <summary>The token with one bit of part <paramref name="part"/> flipped (4: the tag, 1: the encrypted key).</summary>
    public static string Flip(string token, int part)
    {
        string[] parts = token.Split('.');
        byte[] bytes = Base64Url.DecodeFromChars(parts[part]);
        bytes[bytes.Length / 2] ^= 0x01;
        parts[part] = B64(bytes);
        return string.Join(".", parts);
    }

    public static string HeaderJson(string token) =>
        Encoding.UTF8.GetString(Base64Url.DecodeFromChars(token.Split('.')[0]));

    private static string B64(byte[] data) => Base64Url.EncodeToString(data);
}
