using System;
using System.Buffers.Text;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.Policy;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>Builders for tokens, keys and policies used across the tests.</summary>
internal static class T
{
    public const long Now = 1_700_000_000;

    public static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    public static string B64(byte[] data) => Base64Url.EncodeToString(data);

    public static string B64(string utf8) => B64(U(utf8));

    public static string SigningInput(string headerJson, string payloadJson) =>
        B64(headerJson) + "." + B64(payloadJson);

    public static string Token(string headerJson, string payloadJson, Func<byte[], byte[]> sign)
    {
        string input = SigningInput(headerJson, payloadJson);
        return input + "." + B64(sign(U(input)));
    }

    public static KeySet Keys(string json, KeySetFormat format = KeySetFormat.Jwks)
    {
        KeySetResult result = KeySetLoader.Load(U(json), format);
        Assert.That(result.Error, Is.EqualTo(ConfigError.None), $"key set did not load (detail {result.Detail})");
        return result.KeySet!;
    }

    public static VerificationPolicy Policy(KeySet? keys = null, bool exp = true, bool sig = true, long leeway = 0)
    {
        var policy = new VerificationPolicy(exp, sig, leeway);
        if (keys is not null)
        {
            policy.AddKeySet(keys);
        }
        return policy;
    }

    public static VerifyResult Verify(VerificationPolicy policy, string token, long now = Now,
        KeySet[]? extra = null, byte[]?[]? values = null)
    {
        byte[] bytes = U(token);
        var output = new byte[bytes.Length];
        return JwtVerifier.Verify(policy, bytes, now, extra ?? Array.Empty<KeySet>(),
            new ArrayRuleValues(values ?? Array.Empty<byte[]?>()), output);
    }

    public static TokenError VerifyError(VerificationPolicy policy, string token, long now = Now) =>
        Verify(policy, token, now).Error;

    // ---- HMAC ----------------------------------------------------------

    public static readonly byte[] HmacSecret = U("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");

    public static string OctJwk(byte[] secret, string? kid = null, string? alg = null) =>
        "{\"kty\":\"oct\"" + Opt("kid", kid) + Opt("alg", alg) + ",\"k\":\"" + B64(secret) + "\"}";

    public static Func<byte[], byte[]> Hmac(JwsAlgorithm alg, byte[] secret) => data => alg switch
    {
        JwsAlgorithm.HS256 => HMACSHA256.HashData(secret, data),
        JwsAlgorithm.HS384 => HMACSHA384.HashData(secret, data),
        _ => HMACSHA512.HashData(secret, data),
    };

    // ---- RSA -----------------------------------------------------------

    public static string RsaJwk(RSA rsa, string? kid = null, string? alg = null, string? use = null)
    {
        RSAParameters p = rsa.ExportParameters(false);
        return "{\"kty\":\"RSA\"" + Opt("kid", kid) + Opt("alg", alg) + Opt("use", use)
            + ",\"n\":\"" + B64(p.Modulus!) + "\",\"e\":\"" + B64(p.Exponent!) + "\"}";
    }

    public static Func<byte[], byte[]> Rsa(RSA rsa, JwsAlgorithm alg) => data => rsa.SignData(data,
        JwsAlgorithms.Hash(alg),
        alg is JwsAlgorithm.PS256 or JwsAlgorithm.PS384 or JwsAlgorithm.PS512
            ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1);

    // ---- EC ------------------------------------------------------------

    public static string EcJwk(ECDsa ec, string crv, string? kid = null, string? alg = null)
    {
        ECParameters p = ec.ExportParameters(false);
        return "{\"kty\":\"EC\",\"crv\":\"" + crv + "\"" + Opt("kid", kid) + Opt("alg", alg)
            + ",\"x\":\"" + B64(p.Q.X!) + "\",\"y\":\"" + B64(p.Q.Y!) + "\"}";
    }

    public static Func<byte[], byte[]> Ec(ECDsa ec, JwsAlgorithm alg) =>
        data => ec.SignData(data, JwsAlgorithms.Hash(alg), DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    public static ECDsa NewEc(string crv) => ECDsa.Create(crv switch
    {
        "P-256" => ECCurve.NamedCurves.nistP256,
        "P-384" => ECCurve.NamedCurves.nistP384,
        "P-521" => ECCurve.NamedCurves.nistP521,
        _ => ECCurve.CreateFromValue("1.3.132.0.10"),
    });

    // ---- JWKS ----------------------------------------------------------

    public static string Jwks(params string[] jwks) => "{\"keys\":[" + string.Join(",", jwks) + "]}";

    private static string Opt(string name, string? value) =>
        value is null ? "" : ",\"" + name + "\":\"" + value + "\"";
}

/// <summary>Ed25519 / Ed448 key generation and signing through OpenSSL (test side only).</summary>
internal sealed unsafe partial class EdKey : IDisposable
{
    private const string Lib = "libcrypto.so.3";
    private nint _pkey;

    public EdKey(bool ed448)
    {
        Ed448 = ed448;
        byte[] seed = RandomNumberGenerator.GetBytes(ed448 ? 57 : 32);
        fixed (byte* p = seed)
        {
            _pkey = EVP_PKEY_new_raw_private_key(ed448 ? 1088 : 1087, 0, p, (nuint)seed.Length);
        }
        if (_pkey == 0)
        {
            throw new CryptographicException("EVP_PKEY_new_raw_private_key failed");
        }

        var pub = new byte[ed448 ? 57 : 32];
        nuint len = (nuint)pub.Length;
        fixed (byte* p = pub)
        {
            if (EVP_PKEY_get_raw_public_key(_pkey, p, &len) != 1)
            {
                throw new CryptographicException("EVP_PKEY_get_raw_public_key failed");
            }
        }
        PublicKey = pub;
        Seed = seed;
    }

    /// <summary>The raw private key (the JWK's "d").</summary>
    public byte[] Seed { get; }

    public bool Ed448 { get; }

    public byte[] PublicKey { get; }

    public string Jwk(string? kid = null) =>
        "{\"kty\":\"OKP\",\"crv\":\"" + (Ed448 ? "Ed448" : "Ed25519") + "\""
        + (kid is null ? "" : ",\"kid\":\"" + kid + "\"") + ",\"x\":\"" + T.B64(PublicKey) + "\"}";

    /// <summary>SubjectPublicKeyInfo PEM.</summary>
    public string Pem()
    {
        byte[] prefix = Ed448
            ? [0x30, 0x43, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x71, 0x03, 0x3a, 0x00]
            : [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        return PemEncoding.WriteString("PUBLIC KEY", [.. prefix, .. PublicKey]);
    }

    public byte[] Sign(byte[] data)
    {
        nint ctx = EVP_MD_CTX_new();
        try
        {
            if (EVP_DigestSignInit(ctx, 0, 0, 0, _pkey) != 1)
            {
                throw new CryptographicException("EVP_DigestSignInit failed");
            }
            var sig = new byte[Ed448 ? 114 : 64];
            nuint len = (nuint)sig.Length;
            fixed (byte* s = sig)
            fixed (byte* d = data)
            {
                if (EVP_DigestSign(ctx, s, &len, d, (nuint)data.Length) != 1)
                {
                    throw new CryptographicException("EVP_DigestSign failed");
                }
            }
            return sig;
        }
        finally
        {
            EVP_MD_CTX_free(ctx);
        }
    }

    public void Dispose()
    {
        if (_pkey != 0)
        {
            EVP_PKEY_free(_pkey);
            _pkey = 0;
        }
    }

    [LibraryImport(Lib)]
    private static partial nint EVP_PKEY_new_raw_private_key(int type, nint engine, byte* key, nuint len);

    [LibraryImport(Lib)]
    private static partial int EVP_PKEY_get_raw_public_key(nint pkey, byte* pub, nuint* len);

    [LibraryImport(Lib)]
    private static partial void EVP_PKEY_free(nint pkey);

    [LibraryImport(Lib)]
    private static partial nint EVP_MD_CTX_new();

    [LibraryImport(Lib)]
    private static partial void EVP_MD_CTX_free(nint ctx);

    [LibraryImport(Lib)]
    private static partial int EVP_DigestSignInit(nint ctx, nint pctx, nint md, nint engine, nint pkey);

    [LibraryImport(Lib)]
    private static partial int EVP_DigestSign(nint ctx, byte* sig, nuint* siglen, byte* tbs, nuint tbslen);
}
