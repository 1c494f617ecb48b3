using System;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace NginxOAuth.IntegrationTests.Tokens;

/// <summary>A private key (or HMAC secret) that signs tokens with one JWS alg, and its public JWK / PEM.</summary>
public abstract class SigningKey
{
    protected SigningKey(string alg, string kid)
    {
        Alg = alg;
        Kid = kid;
    }

    /// <summary>The JWS "alg" this key signs with.</summary>
    public string Alg { get; }

    public string Kid { get; }

    public abstract byte[] Sign(ReadOnlySpan<byte> signingInput);

    /// <summary>The public JWK members (kty, n/e, crv/x/y, k), without kid/alg/use.</summary>
    public abstract JsonObject PublicJwkMembers();

    /// <summary>The public key as PEM SubjectPublicKeyInfo ("keyval" files).</summary>
    public abstract string PublicPem();

    /// <summary>The same key material signing with another alg of its family (RS256 key as PS256 ...).</summary>
    public abstract SigningKey WithAlg(string alg);

    /// <summary>A JWK: the public members plus kid (unless null), alg and use when given.</summary>
    public JsonObject Jwk(string? kid = "", string? alg = null, string? use = null)
    {
        JsonObject jwk = PublicJwkMembers();
        string? k = kid == "" ? Kid : kid;
        if (k is not null)
        {
            jwk["kid"] = k;
        }

        if (alg is not null)
        {
            jwk["alg"] = alg;
        }

        if (use is not null)
        {
            jwk["use"] = use;
        }

        return jwk;
    }

    protected static string B64(ReadOnlySpan<byte> data) => Base64Url.EncodeToString(data);
}

public sealed class HmacSigningKey : SigningKey
{
    private readonly byte[] _secret;

    public HmacSigningKey(string alg, string kid, byte[] secret)
        : base(alg, kid)
    {
        _secret = secret;
    }

    public static HmacSigningKey Generate(string alg, string kid, int? bytes = null) =>
        new(alg, kid, RandomNumberGenerator.GetBytes(bytes ?? HashBytes(alg)));

    public byte[] Secret => _secret;

    public override byte[] Sign(ReadOnlySpan<byte> signingInput) => Alg switch
    {
        "HS256" => HMACSHA256.HashData(_secret, signingInput),
        "HS384" => HMACSHA384.HashData(_secret, signingInput),
        "HS512" => HMACSHA512.HashData(_secret, signingInput),
        _ => throw new NotSupportedException(Alg),
    };

    public override JsonObject PublicJwkMembers() => new() { ["kty"] = "oct", ["k"] = B64(_secret) };

    public override string PublicPem() => throw new NotSupportedException("an HMAC secret has no PEM public key");

    public override SigningKey WithAlg(string alg) => new HmacSigningKey(alg, Kid, _secret);

    private static int HashBytes(string alg) => alg switch
    {
        "HS256" => 32,
        "HS384" => 48,
        _ => 64,
    };
}

public sealed class RsaSigningKey : SigningKey
{
    public RsaSigningKey(string alg, string kid, RSA rsa)
        : base(alg, kid)
    {
        Rsa = rsa;
    }

    public RSA Rsa { get; }

    public static RsaSigningKey Generate(string alg, string kid, int bits = 2048) => new(alg, kid, RSA.Create(bits));

    public override byte[] Sign(ReadOnlySpan<byte> signingInput)
    {
        RSASignaturePadding padding = Alg.StartsWith("PS", StringComparison.Ordinal)
            ? RSASignaturePadding.Pss // .NET uses salt length = digest length, as RFC 7518 wants
            : RSASignaturePadding.Pkcs1;
        return Rsa.SignData(signingInput.ToArray(), Hash(Alg), padding);
    }

    public override JsonObject PublicJwkMembers()
    {
        RSAParameters p = Rsa.ExportParameters(false);
        return new JsonObject { ["kty"] = "RSA", ["n"] = B64(p.Modulus), ["e"] = B64(p.Exponent) };
    }

    public override string PublicPem() => Rsa.ExportSubjectPublicKeyInfoPem();

    public override SigningKey WithAlg(string alg) => new RsaSigningKey(alg, Kid, Rsa);

    internal static HashAlgorithmName Hash(string alg) => alg[^3..] switch
    {
        "256" => HashAlgorithmName.SHA256,
        "384" => HashAlgorithmName.SHA384,
        "512" => HashAlgorithmName.SHA512,
        _ => throw new NotSupportedException(alg),
    };
}

public sealed class EcSigningKey : SigningKey
{
    public EcSigningKey(string alg, string kid, ECDsa ecdsa, string crv)
        : base(alg, kid)
    {
        Ecdsa = ecdsa;
        Crv = crv;
    }

    public ECDsa Ecdsa { get; }

    public string Crv { get; }

    public static EcSigningKey Generate(string alg, string kid)
    {
        (ECCurve curve, string crv) = alg switch
        {
            "ES256" => (ECCurve.NamedCurves.nistP256, "P-256"),
            "ES384" => (ECCurve.NamedCurves.nistP384, "P-384"),
            "ES512" => (ECCurve.NamedCurves.nistP521, "P-521"),
            "ES256K" => (ECCurve.CreateFromValue("1.3.132.0.10"), "secp256k1"),
            _ => throw new NotSupportedException(alg),
        };
        return new EcSigningKey(alg, kid, ECDsa.Create(curve), crv);
    }

    /// <summary>IEEE P1363 (raw R||S), as JWS wants.</summary>
    public override byte[] Sign(ReadOnlySpan<byte> signingInput) =>
        Ecdsa.SignData(signingInput.ToArray(), Alg == "ES256K" ? HashAlgorithmName.SHA256 : RsaSigningKey.Hash(Alg),
            DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    public override JsonObject PublicJwkMembers()
    {
        ECParameters p = Ecdsa.ExportParameters(false);
        return new JsonObject { ["kty"] = "EC", ["crv"] = Crv, ["x"] = B64(p.Q.X), ["y"] = B64(p.Q.Y) };
    }

    public override string PublicPem() => Ecdsa.ExportSubjectPublicKeyInfoPem();

    public override SigningKey WithAlg(string alg) => new EcSigningKey(alg, Kid, Ecdsa, Crv);
}

public sealed class EdSigningKey : SigningKey
{
    private readonly OpenSslEdDsa _key;

    private EdSigningKey(string kid, OpenSslEdDsa key)
        : base("EdDSA", kid)
    {
        _key = key;
    }

    public string Crv => _key.Type == OpenSslEdDsa.Ed25519 ? "Ed25519" : "Ed448";

    public static EdSigningKey Generate(string crv, string kid) =>
        new(kid, OpenSslEdDsa.Generate(crv == "Ed25519" ? OpenSslEdDsa.Ed25519 : OpenSslEdDsa.Ed448));

    public override byte[] Sign(ReadOnlySpan<byte> signingInput) => _key.Sign(signingInput);

    public override JsonObject PublicJwkMembers() =>
        new() { ["kty"] = "OKP", ["crv"] = Crv, ["x"] = B64(_key.PublicKey()) };

    public override string PublicPem() => PemEncoding.WriteString("PUBLIC KEY", _key.SubjectPublicKeyInfo());

    public override SigningKey WithAlg(string alg) =>
        alg == "EdDSA" ? this : throw new NotSupportedException("an EdDSA key signs EdDSA only");
}
