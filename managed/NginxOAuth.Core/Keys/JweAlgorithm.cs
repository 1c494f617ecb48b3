using System;
using System.Text.Json;

namespace NginxOAuth.Core.Keys;

/// <summary>
/// The JWE key-management algorithms this module decrypts (the allow-list,
/// RFC 7518 section 4). RSA1_5 (a padding oracle by design) and PBES2 are
/// not among them.
/// </summary>
public enum JweAlgorithm
{
    Dir,
    A128KW,
    A192KW,
    A256KW,
    A128GCMKW,
    A192GCMKW,
    A256GCMKW,
    RsaOaep,
    RsaOaep256,
    RsaOaep384,
    RsaOaep512,
    EcdhEs,
    EcdhEsA128KW,
    EcdhEsA192KW,
    EcdhEsA256KW,
}

/// <summary>JWE content encryption algorithms (RFC 7518 section 5).</summary>
public enum JweEncryption
{
    A128CbcHs256,
    A192CbcHs384,
    A256CbcHs512,
    A128Gcm,
    A192Gcm,
    A256Gcm,
}

/// <summary>Which kind of compact token a location accepts (auth_jwt_type, NOX_JWT_*).</summary>
public enum JwtType
{
    /// <summary>A JWS.</summary>
    Signed = 0,
    /// <summary>A JWE whose plaintext is the claims.</summary>
    Encrypted = 1,
    /// <summary>A JWE (cty JWT) whose plaintext is a JWS.</summary>
    Nested = 2,
}

public static class JweAlgorithms
{
    private static readonly byte[][] AlgNames =
    [
        "dir"u8.ToArray(), "A128KW"u8.ToArray(), "A192KW"u8.ToArray(), "A256KW"u8.ToArray(),
        "A128GCMKW"u8.ToArray(), "A192GCMKW"u8.ToArray(), "A256GCMKW"u8.ToArray(),
        "RSA-OAEP"u8.ToArray(), "RSA-OAEP-256"u8.ToArray(), "RSA-OAEP-384"u8.ToArray(),
        "RSA-OAEP-512"u8.ToArray(), "ECDH-ES"u8.ToArray(), "ECDH-ES+A128KW"u8.ToArray(),
        "ECDH-ES+A192KW"u8.ToArray(), "ECDH-ES+A256KW"u8.ToArray(),
    ];

    private static readonly byte[][] EncNames =
    [
        "A128CBC-HS256"u8.ToArray(), "A192CBC-HS384"u8.ToArray(), "A256CBC-HS512"u8.ToArray(),
        "A128GCM"u8.ToArray(), "A192GCM"u8.ToArray(), "A256GCM"u8.ToArray(),
    ];

    public static ReadOnlySpan<byte> Name(JweAlgorithm alg) => AlgNames[(int)alg];

    public static ReadOnlySpan<byte> Name(JweEncryption enc) => EncNames[(int)enc];

    public static bool TryParse(JsonElement name, out JweAlgorithm alg)
    {
        alg = default;
        if (name.ValueKind != JsonValueKind.String)
        {
            return false;
        }
        for (int i = 0; i < AlgNames.Length; i++)
        {
            if (name.ValueEquals(AlgNames[i]))
            {
                alg = (JweAlgorithm)i;
                return true;
            }
        }
        return false;
    }

    public static bool TryParse(JsonElement name, out JweEncryption enc)
    {
        enc = default;
        if (name.ValueKind != JsonValueKind.String)
        {
            return false;
        }
        for (int i = 0; i < EncNames.Length; i++)
        {
            if (name.ValueEquals(EncNames[i]))
            {
                enc = (JweEncryption)i;
                return true;
            }
        }
        return false;
    }

    /// <summary>True when <paramref name="name"/> is a content encryption algorithm name.</summary>
    internal static bool IsEncryptionName(JsonElement name) => TryParse(name, out JweEncryption _);

    /// <summary>The content encryption key length in bytes (CBC-HS: MAC key + AES key).</summary>
    public static int KeyLength(JweEncryption enc) => enc switch
    {
        JweEncryption.A128CbcHs256 => 32,
        JweEncryption.A192CbcHs384 => 48,
        JweEncryption.A256CbcHs512 => 64,
        JweEncryption.A128Gcm => 16,
        JweEncryption.A192Gcm => 24,
        _ => 32,
    };

    public static bool IsGcm(JweEncryption enc) => enc >= JweEncryption.A128Gcm;

    /// <summary>The AES key length of the key-wrapping step (A*KW, A*GCMKW, ECDH-ES+A*KW); 0 otherwise.</summary>
    public static int WrapKeyLength(JweAlgorithm alg) => alg switch
    {
        JweAlgorithm.A128KW or JweAlgorithm.A128GCMKW or JweAlgorithm.EcdhEsA128KW => 16,
        JweAlgorithm.A192KW or JweAlgorithm.A192GCMKW or JweAlgorithm.EcdhEsA192KW => 24,
        JweAlgorithm.A256KW or JweAlgorithm.A256GCMKW or JweAlgorithm.EcdhEsA256KW => 32,
        _ => 0,
    };

    public static bool IsRsa(JweAlgorithm alg) => alg is JweAlgorithm.RsaOaep or JweAlgorithm.RsaOaep256
        or JweAlgorithm.RsaOaep384 or JweAlgorithm.RsaOaep512;

    public static bool IsEcdh(JweAlgorithm alg) => alg >= JweAlgorithm.EcdhEs;

    public static bool IsSymmetric(JweAlgorithm alg) => alg <= JweAlgorithm.A256GCMKW;
}
