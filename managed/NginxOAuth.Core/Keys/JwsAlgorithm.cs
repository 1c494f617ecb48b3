using System;
using System.Security.Cryptography;
using System.Text.Json;
using NginxOAuth.Core.Json;

namespace NginxOAuth.Core.Keys;

/// <summary>The JWS algorithms this module verifies (the allow-list). "none" is not one of them.</summary>
public enum JwsAlgorithm
{
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    ES256K,
    EdDSA,
}

/// <summary>Key families: the key type plus, for EC and OKP, the curve.</summary>
public enum KeyFamily
{
    Rsa,
    P256,
    P384,
    P521,
    Secp256k1,
    Ed25519,
    Ed448,
    Oct,
}

public static class JwsAlgorithms
{
    private static readonly byte[][] Names =
    [
        "HS256"u8.ToArray(), "HS384"u8.ToArray(), "HS512"u8.ToArray(),
        "RS256"u8.ToArray(), "RS384"u8.ToArray(), "RS512"u8.ToArray(),
        "PS256"u8.ToArray(), "PS384"u8.ToArray(), "PS512"u8.ToArray(),
        "ES256"u8.ToArray(), "ES384"u8.ToArray(), "ES512"u8.ToArray(),
        "ES256K"u8.ToArray(), "EdDSA"u8.ToArray(),
    ];

    // JWE key-management algorithms (RFC 7518 section 4): a JWK pinned to one
    // of these is an encryption key and is dropped like "use":"enc".
    private static readonly byte[][] EncryptionNames =
    [
        "RSA1_5"u8.ToArray(), "RSA-OAEP"u8.ToArray(), "RSA-OAEP-256"u8.ToArray(),
        "RSA-OAEP-384"u8.ToArray(), "RSA-OAEP-512"u8.ToArray(),
        "A128KW"u8.ToArray(), "A192KW"u8.ToArray(), "A256KW"u8.ToArray(), "dir"u8.ToArray(),
        "ECDH-ES"u8.ToArray(), "ECDH-ES+A128KW"u8.ToArray(), "ECDH-ES+A192KW"u8.ToArray(),
        "ECDH-ES+A256KW"u8.ToArray(), "A128GCMKW"u8.ToArray(), "A192GCMKW"u8.ToArray(),
        "A256GCMKW"u8.ToArray(), "PBES2-HS256+A128KW"u8.ToArray(),
        "PBES2-HS384+A192KW"u8.ToArray(), "PBES2-HS512+A256KW"u8.ToArray(),
    ];

    public static ReadOnlySpan<byte> Name(JwsAlgorithm alg) => Names[(int)alg];

    /// <summary>Parses a JSON string element holding an algorithm name (exact, case-sensitive).</summary>
    public static bool TryParse(JsonElement name, out JwsAlgorithm alg)
    {
        if (name.ValueKind == JsonValueKind.String)
        {
            for (int i = 0; i < Names.Length; i++)
            {
                if (name.ValueEquals(Names[i]))
                {
                    alg = (JwsAlgorithm)i;
                    return true;
                }
            }
        }

        alg = default;
        return false;
    }

    /// <summary>
    /// Parses the string value of <paramref name="name"/> in
    /// <paramref name="json"/> (exact, case-sensitive, after unescaping).
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> json, MemberValue name, out JwsAlgorithm alg)
    {
        if (name.IsString)
        {
            for (int i = 0; i < Names.Length; i++)
            {
                if (name.ValueEquals(json, Names[i]))
                {
                    alg = (JwsAlgorithm)i;
                    return true;
                }
            }
        }

        alg = default;
        return false;
    }

    /// <summary>Parses an algorithm name given as raw bytes (exact, case-sensitive).</summary>
    public static bool TryParseName(ReadOnlySpan<byte> name, out JwsAlgorithm alg)
    {
        for (int i = 0; i < Names.Length; i++)
        {
            if (name.SequenceEqual(Names[i]))
            {
                alg = (JwsAlgorithm)i;
                return true;
            }
        }

        alg = default;
        return false;
    }

    internal static bool IsEncryptionAlgorithm(JsonElement name)
    {
        if (JweAlgorithms.IsEncryptionName(name))
        {
            return true; // "alg":"A128GCM": a "dir" key (RFC 7520 5.6)
        }
        foreach (byte[] n in EncryptionNames)
        {
            if (name.ValueEquals(n))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>True when a key of <paramref name="family"/> may verify <paramref name="alg"/>.</summary>
    public static bool Fits(JwsAlgorithm alg, KeyFamily family) => alg switch
    {
        JwsAlgorithm.HS256 or JwsAlgorithm.HS384 or JwsAlgorithm.HS512 => family == KeyFamily.Oct,
        JwsAlgorithm.RS256 or JwsAlgorithm.RS384 or JwsAlgorithm.RS512
            or JwsAlgorithm.PS256 or JwsAlgorithm.PS384 or JwsAlgorithm.PS512 => family == KeyFamily.Rsa,
        JwsAlgorithm.ES256 => family == KeyFamily.P256,
        JwsAlgorithm.ES384 => family == KeyFamily.P384,
        JwsAlgorithm.ES512 => family == KeyFamily.P521,
        JwsAlgorithm.ES256K => family == KeyFamily.Secp256k1,
        JwsAlgorithm.EdDSA => family is KeyFamily.Ed25519 or KeyFamily.Ed448,
        _ => false,
    };

    /// <summary>The digest of RS/PS/ES/HS algorithms; default for EdDSA (it hashes internally).</summary>
    public static HashAlgorithmName Hash(JwsAlgorithm alg) => alg switch
    {
        JwsAlgorithm.HS256 or JwsAlgorithm.RS256 or JwsAlgorithm.PS256
            or JwsAlgorithm.ES256 or JwsAlgorithm.ES256K => HashAlgorithmName.SHA256,
        JwsAlgorithm.HS384 or JwsAlgorithm.RS384 or JwsAlgorithm.PS384
            or JwsAlgorithm.ES384 => HashAlgorithmName.SHA384,
        JwsAlgorithm.HS512 or JwsAlgorithm.RS512 or JwsAlgorithm.PS512
            or JwsAlgorithm.ES512 => HashAlgorithmName.SHA512,
        _ => default,
    };

    /// <summary>Digest length in bytes (0 for EdDSA).</summary>
    public static int HashLength(JwsAlgorithm alg) => alg switch
    {
        JwsAlgorithm.HS256 or JwsAlgorithm.RS256 or JwsAlgorithm.PS256
            or JwsAlgorithm.ES256 or JwsAlgorithm.ES256K => 32,
        JwsAlgorithm.HS384 or JwsAlgorithm.RS384 or JwsAlgorithm.PS384
            or JwsAlgorithm.ES384 => 48,
        JwsAlgorithm.HS512 or JwsAlgorithm.RS512 or JwsAlgorithm.PS512
            or JwsAlgorithm.ES512 => 64,
        _ => 0,
    };

    /// <summary>Hashes the JWS signing input once per verification (shared by all candidate keys).</summary>
    internal static int ComputeHash(JwsAlgorithm alg, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        int length = HashLength(alg);
        if (length != 0 && Interop.Digests.TryHash(length, data, destination))
        {
            return length;
        }

        HashAlgorithmName hash = Hash(alg);
        if (hash == HashAlgorithmName.SHA256)
        {
            return SHA256.HashData(data, destination);
        }
        if (hash == HashAlgorithmName.SHA384)
        {
            return SHA384.HashData(data, destination);
        }
        if (hash == HashAlgorithmName.SHA512)
        {
            return SHA512.HashData(data, destination);
        }
        return 0;
    }
}
