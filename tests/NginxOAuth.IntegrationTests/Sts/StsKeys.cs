using System;
using System.Buffers.Text;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// A key pair for the STS tests: its private JWK (what nginx is configured
/// with, for jwt minting and private_key_jwt) and signature verification
/// by an independent implementation: Microsoft.IdentityModel for RSA and
/// EC, OpenSSL's libcrypto for EdDSA (.NET has no EdDSA).
/// </summary>
public sealed class StsKey
{
    private readonly RSA? _rsa;
    private readonly ECDsa? _ec;
    private readonly byte[]? _edPublic;

    private StsKey(string alg, string kid, JsonObject privateJwk, RSA? rsa = null, ECDsa? ec = null, byte[]? edPublic = null)
    {
        Alg = alg;
        Kid = kid;
        PrivateJwkObject = privateJwk;
        _rsa = rsa;
        _ec = ec;
        _edPublic = edPublic;
    }

    /// <summary>The JWS alg its tokens carry: RS256, ES256 or EdDSA.</summary>
    public string Alg { get; }

    public string Kid { get; }

    private JsonObject PrivateJwkObject { get; }

    /// <summary>The private JWK as compact JSON (with kid).</summary>
    public string PrivateJwk => PrivateJwkObject.ToJsonString();

    /// <summary>The private JWK without its kid.</summary>
    public string PrivateJwkWithoutKid
    {
        get
        {
            JsonObject copy = PrivateJwkObject.DeepClone().AsObject();
            copy.Remove("kid");
            return copy.ToJsonString();
        }
    }

    public static StsKey Create(string alg, string kid) => alg switch
    {
        "RS256" => Rsa(kid),
        "ES256" => Ec(kid),
        "EdDSA" => Ed25519(kid),
        _ => throw new NotSupportedException(alg),
    };

    private static string B64(byte[]? data) => Base64Url.EncodeToString(data!);

    private static StsKey Rsa(string kid)
    {
        var rsa = System.Security.Cryptography.RSA.Create(2048);
        RSAParameters p = rsa.ExportParameters(true);
        var jwk = new JsonObject
        {
            ["kty"] = "RSA", ["kid"] = kid, ["n"] = B64(p.Modulus), ["e"] = B64(p.Exponent), ["d"] = B64(p.D),
            ["p"] = B64(p.P), ["q"] = B64(p.Q), ["dp"] = B64(p.DP), ["dq"] = B64(p.DQ), ["qi"] = B64(p.InverseQ),
        };
        return new StsKey("RS256", kid, jwk, rsa: rsa);
    }

    private static StsKey Ec(string kid)
    {
        var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        ECParameters p = ec.ExportParameters(true);
        var jwk = new JsonObject
        {
            ["kty"] = "EC", ["kid"] = kid, ["crv"] = "P-256", ["x"] = B64(p.Q.X), ["y"] = B64(p.Q.Y), ["d"] = B64(p.D),
        };
        return new StsKey("ES256", kid, jwk, ec: ec);
    }

    private static StsKey Ed25519(string kid)
    {
        (byte[] priv, byte[] pub) = EdDsaNative.Generate();
        var jwk = new JsonObject { ["kty"] = "OKP", ["kid"] = kid, ["crv"] = "Ed25519", ["x"] = B64(pub), ["d"] = B64(priv) };
        return new StsKey("EdDSA", kid, jwk, edPublic: pub);
    }

    /// <summary>True when <paramref name="jwt"/>'s signature is this key's over its first two parts (alg from the header must be <see cref="Alg"/>).</summary>
    public async Task<bool> VerifiesAsync(string jwt)
    {
        string[] parts = jwt.Split('.');
        if (parts.Length != 3)
        {
            return false;
        }

        if (_edPublic is not null)
        {
            return Header(jwt).GetProperty("alg").GetString() == "EdDSA"
                && EdDsaNative.Verify(_edPublic, Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), Base64Url.DecodeFromChars(parts[2]));
        }

        SecurityKey key = _rsa is not null
            ? new RsaSecurityKey(_rsa.ExportParameters(false))
            : new ECDsaSecurityKey(ECDsa.Create(_ec!.ExportParameters(false)));
        TokenValidationResult result = await new JsonWebTokenHandler().ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            IssuerSigningKey = key,
            ValidAlgorithms = [Alg],
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
            RequireExpirationTime = false,
            RequireSignedTokens = true,
            TryAllIssuerSigningKeys = true,
        }).ConfigureAwait(false);
        return result.IsValid;
    }

    /// <summary>Fails the test unless this key signed <paramref name="jwt"/>; returns its payload.</summary>
    public async Task<JsonElement> AssertSignedAsync(string jwt)
    {
        Assert.That(await VerifiesAsync(jwt).ConfigureAwait(false), Is.True, $"{Alg} signature of {Kid} over {jwt}");
        return Payload(jwt);
    }

    public static JsonElement Header(string jwt) =>
        JsonDocument.Parse(Base64Url.DecodeFromChars(jwt.Split('.')[0])).RootElement.Clone();

    public static JsonElement Payload(string jwt) =>
        JsonDocument.Parse(Base64Url.DecodeFromChars(jwt.Split('.')[1])).RootElement.Clone();

    /// <summary>The member names of a JSON object.</summary>
    public static IReadOnlyList<string> Names(JsonElement obj) => obj.EnumerateObject().Select(p => p.Name).ToList();
}

/// <summary>Ed25519 through OpenSSL 3's libcrypto: generate (raw keys) and verify.</summary>
internal static partial class EdDsaNative
{
    private const string LibCrypto = "libcrypto.so.3";
    private const int Ed25519 = 1087; // EVP_PKEY_ED25519

    public static (byte[] Private, byte[] Public) Generate()
    {
        IntPtr ctx = EVP_PKEY_CTX_new_id(Ed25519, IntPtr.Zero);
        if (ctx == IntPtr.Zero)
        {
            throw new CryptographicException("EVP_PKEY_CTX_new_id failed");
        }

        IntPtr pkey = IntPtr.Zero;
        try
        {
            if (EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, ref pkey) != 1 || pkey == IntPtr.Zero)
            {
                throw new CryptographicException("Ed25519 key generation failed");
            }

            byte[] priv = new byte[32], pub = new byte[32];
            nuint privLen = 32, pubLen = 32;
            if (EVP_PKEY_get_raw_private_key(pkey, priv, ref privLen) != 1 || EVP_PKEY_get_raw_public_key(pkey, pub, ref pubLen) != 1)
            {
                throw new CryptographicException("EVP_PKEY_get_raw_*_key failed");
            }

            return (priv, pub);
        }
        finally
        {
            if (pkey != IntPtr.Zero)
            {
                EVP_PKEY_free(pkey);
            }

            EVP_PKEY_CTX_free(ctx);
        }
    }

    public static bool Verify(byte[] publicKey, byte[] data, byte[] signature)
    {
        IntPtr pkey = EVP_PKEY_new_raw_public_key(Ed25519, IntPtr.Zero, publicKey, (nuint)publicKey.Length);
        if (pkey == IntPtr.Zero)
        {
            throw new CryptographicException("EVP_PKEY_new_raw_public_key failed");
        }

        IntPtr md = EVP_MD_CTX_new();
        try
        {
            return EVP_DigestVerifyInit(md, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero, pkey) == 1
                && EVP_DigestVerify(md, signature, (nuint)signature.Length, data, (nuint)data.Length) == 1;
        }
        finally
        {
            EVP_MD_CTX_free(md);
            EVP_PKEY_free(pkey);
        }
    }

    [LibraryImport(LibCrypto)]
    private static partial IntPtr EVP_PKEY_CTX_new_id(int id, IntPtr engine);

    [LibraryImport(LibCrypto)]
    private static partial int EVP_PKEY_keygen_init(IntPtr ctx);

    [LibraryImport(LibCrypto)]
    private static partial int EVP_PKEY_keygen(IntPtr ctx, ref IntPtr pkey);

    [LibraryImport(LibCrypto)]
    private static partial void EVP_PKEY_CTX_free(IntPtr ctx);

    [LibraryImport(LibCrypto)]
    private static partial void EVP_PKEY_free(IntPtr pkey);

    [LibraryImport(LibCrypto)]
    private static partial int EVP_PKEY_get_raw_private_key(IntPtr pkey, byte[] priv, ref nuint len);

    [LibraryImport(LibCrypto)]
    private static partial int EVP_PKEY_get_raw_public_key(IntPtr pkey, byte[] pub, ref nuint len);

    [LibraryImport(LibCrypto)]
    private static partial IntPtr EVP_PKEY_new_raw_public_key(int type, IntPtr engine, byte[] key, nuint keylen);

    [LibraryImport(LibCrypto)]
    private static partial IntPtr EVP_MD_CTX_new();

    [LibraryImport(LibCrypto)]
    private static partial void EVP_MD_CTX_free(IntPtr ctx);

    [LibraryImport(LibCrypto)]
    private static partial int EVP_DigestVerifyInit(IntPtr ctx, IntPtr pctx, IntPtr type, IntPtr engine, IntPtr pkey);

    [LibraryImport(LibCrypto)]
    private static partial int EVP_DigestVerify(IntPtr ctx, byte[] sig, nuint siglen, byte[] tbs, nuint tbslen);
}
