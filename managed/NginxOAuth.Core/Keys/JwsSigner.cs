using System;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using NginxOAuth.Core.Interop;
using NginxOAuth.Core.Json;

namespace NginxOAuth.Core.Keys;

/// <summary>
/// A signing key: a private JWK (RSA, EC, OKP) or an HMAC secret, imported
/// once (when an STS configuration is created) and reused. Signs JWS
/// signing inputs for client assertions and minted tokens.
/// </summary>
public abstract class JwsSigner : IDisposable
{
    private protected JwsSigner(KeyFamily family, byte[]? kid)
    {
        Family = family;
        Kid = kid;
    }

    public KeyFamily Family { get; }

    /// <summary>The JWK's "kid", if any.</summary>
    public byte[]? Kid { get; }

    /// <summary>The algorithm used when none is configured: RS256, ES256/384/512 (by curve), ES256K, EdDSA, HS256.</summary>
    public JwsAlgorithm DefaultAlgorithm => Family switch
    {
        KeyFamily.Rsa => JwsAlgorithm.RS256,
        KeyFamily.P256 => JwsAlgorithm.ES256,
        KeyFamily.P384 => JwsAlgorithm.ES384,
        KeyFamily.P521 => JwsAlgorithm.ES512,
        KeyFamily.Secp256k1 => JwsAlgorithm.ES256K,
        KeyFamily.Ed25519 or KeyFamily.Ed448 => JwsAlgorithm.EdDSA,
        _ => JwsAlgorithm.HS256,
    };

    public bool CanSign(JwsAlgorithm alg) => JwsAlgorithms.Fits(alg, Family);

    /// <summary>The JWS signature of <paramref name="signingInput"/>; the caller checked <see cref="CanSign"/>.</summary>
    public abstract byte[] Sign(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput);

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }

    /// <summary>An HMAC signer over a client secret (client_secret_jwt: the key is the secret's bytes).</summary>
    public static JwsSigner Hmac(byte[] secret) => new HmacSigner(secret, null);

    /// <summary>
    /// Imports a private JWK: RSA (n, e, d, p, q, dp, dq, qi), EC (crv
    /// P-256/P-384/P-521/secp256k1, x, y, d), OKP (crv Ed25519/Ed448, d, and
    /// x, which must match d when present), oct (k). Null when the document
    /// is not such a key (a public key included).
    /// </summary>
    public static JwsSigner? FromJwk(ReadOnlySpan<byte> json)
    {
        if (JsonGuard.Check(json) != JsonShape.Object)
        {
            return null;
        }
        using JsonDocument doc = JsonGuard.Parse(json.ToArray());
        JsonElement jwk = doc.RootElement;
        if (!TryString(jwk, "kty"u8, out string? kty))
        {
            return null;
        }

        byte[]? kid = null;
        if (jwk.TryGetProperty("kid"u8, out JsonElement kidElement))
        {
            if (kidElement.ValueKind != JsonValueKind.String || kidElement.GetString() is not { Length: > 0 } k)
            {
                return null;
            }
            kid = Encoding.UTF8.GetBytes(k);
        }

        try
        {
            return kty switch
            {
                "RSA" => RsaSigner.Create(jwk, kid),
                "EC" => EcSigner.Create(jwk, kid),
                "OKP" => EdDsaSigner.Create(jwk, kid),
                "oct" => Decode(jwk, "k"u8) is { } secret ? new HmacSigner(secret, kid) : null,
                _ => null,
            };
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or PlatformNotSupportedException)
        {
            return null;
        }
    }

    private static bool TryString(JsonElement jwk, ReadOnlySpan<byte> name, out string? value)
    {
        value = jwk.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
        return value is not null;
    }

    private protected static byte[]? Decode(JsonElement jwk, ReadOnlySpan<byte> name)
    {
        if (!TryString(jwk, name, out string? text))
        {
            return null;
        }
        text = text!.TrimEnd('=');
        if (text.Length == 0 || !Base64Url.IsValid(text))
        {
            return null;
        }
        byte[] value = Base64Url.DecodeFromChars(text);
        return value.Length > 0 ? value : null;
    }

    private sealed class HmacSigner : JwsSigner
    {
        private readonly byte[] _key;

        public HmacSigner(byte[] key, byte[]? kid)
            : base(KeyFamily.Oct, kid)
        {
            _key = key;
        }

        public override byte[] Sign(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput) => alg switch
        {
            JwsAlgorithm.HS384 => HMACSHA384.HashData(_key, signingInput),
            JwsAlgorithm.HS512 => HMACSHA512.HashData(_key, signingInput),
            _ => HMACSHA256.HashData(_key, signingInput),
        };
    }

    private sealed class RsaSigner : JwsSigner
    {
        private readonly RSA _rsa;

        private RsaSigner(RSA rsa, byte[]? kid)
            : base(KeyFamily.Rsa, kid)
        {
            _rsa = rsa;
        }

        public static RsaSigner? Create(JsonElement jwk, byte[]? kid)
        {
            byte[]? n = Decode(jwk, "n"u8), e = Decode(jwk, "e"u8), d = Decode(jwk, "d"u8),
                p = Decode(jwk, "p"u8), q = Decode(jwk, "q"u8), dp = Decode(jwk, "dp"u8),
                dq = Decode(jwk, "dq"u8), qi = Decode(jwk, "qi"u8);
            if (n is null || e is null || d is null || p is null || q is null || dp is null || dq is null || qi is null)
            {
                return null;
            }
            n = Trim(n);
            int bits = n.Length * 8 - System.Numerics.BitOperations.LeadingZeroCount((uint)n[0]) + 24;
            if (bits < KeyBuilder.MinRsaBits || bits > KeyBuilder.MaxRsaBits)
            {
                return null;
            }
            // .NET wants D the size of the modulus and the CRT values half of it.
            int size = n.Length, half = (size + 1) / 2;
            var rsa = RSA.Create();
            try
            {
                rsa.ImportParameters(new RSAParameters
                {
                    Modulus = n,
                    Exponent = Trim(e),
                    D = Pad(Trim(d), size),
                    P = Pad(Trim(p), half),
                    Q = Pad(Trim(q), half),
                    DP = Pad(Trim(dp), half),
                    DQ = Pad(Trim(dq), half),
                    InverseQ = Pad(Trim(qi), half),
                });
                // a signature that verifies: d belongs to (n, e)
                byte[] probe = rsa.SignData("probe"u8.ToArray(), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                using RSA pub = RSA.Create(rsa.ExportParameters(false));
                if (!pub.VerifyData("probe"u8, probe, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1))
                {
                    rsa.Dispose();
                    return null;
                }
                return new RsaSigner(rsa, kid);
            }
            catch
            {
                rsa.Dispose();
                throw;
            }
        }

        private static byte[] Trim(byte[] value)
        {
            int i = 0;
            while (i < value.Length - 1 && value[i] == 0)
            {
                i++;
            }
            return value.AsSpan(i).ToArray();
        }

        private static byte[] Pad(byte[] value, int length)
        {
            if (value.Length >= length)
            {
                return value;
            }
            var padded = new byte[length];
            value.CopyTo(padded, length - value.Length);
            return padded;
        }

        public override byte[] Sign(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput) =>
            _rsa.SignData(signingInput.ToArray(), JwsAlgorithms.Hash(alg),
                alg is JwsAlgorithm.PS256 or JwsAlgorithm.PS384 or JwsAlgorithm.PS512
                    ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _rsa.Dispose();
            }
        }
    }

    private sealed class EcSigner : JwsSigner
    {
        private readonly ECDsa _ecdsa;

        private EcSigner(KeyFamily family, ECDsa ecdsa, byte[]? kid)
            : base(family, kid)
        {
            _ecdsa = ecdsa;
        }

        public static EcSigner? Create(JsonElement jwk, byte[]? kid)
        {
            if (!TryString(jwk, "crv"u8, out string? crv))
            {
                return null;
            }
            (KeyFamily family, ECCurve curve) = crv switch
            {
                "P-256" => (KeyFamily.P256, ECCurve.NamedCurves.nistP256),
                "P-384" => (KeyFamily.P384, ECCurve.NamedCurves.nistP384),
                "P-521" => (KeyFamily.P521, ECCurve.NamedCurves.nistP521),
                "secp256k1" => (KeyFamily.Secp256k1, ECCurve.CreateFromValue("1.3.132.0.10")),
                _ => (KeyFamily.Oct, default),
            };
            int field = KeyBuilder.FieldBytes(family);
            byte[]? x = Decode(jwk, "x"u8), y = Decode(jwk, "y"u8), d = Decode(jwk, "d"u8);
            if (field == 0 || x?.Length != field || y?.Length != field || d?.Length != field)
            {
                return null;
            }
            // OpenSSL checks that the point is on the curve and belongs to d.
            ECDsa ecdsa = ECDsa.Create(new ECParameters { Curve = curve, Q = new ECPoint { X = x, Y = y }, D = d });
            return new EcSigner(family, ecdsa, kid);
        }

        public override byte[] Sign(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput) =>
            _ecdsa.SignData(signingInput, JwsAlgorithms.Hash(alg), DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _ecdsa.Dispose();
            }
        }
    }

    /// <summary>Ed25519 / Ed448 through OpenSSL (.NET has no EdDSA).</summary>
    private sealed unsafe class EdDsaSigner : JwsSigner
    {
        private readonly EvpPKeyHandle _pkey;
        private readonly int _signatureBytes;

        private EdDsaSigner(KeyFamily family, EvpPKeyHandle pkey, byte[]? kid)
            : base(family, kid)
        {
            _pkey = pkey;
            _signatureBytes = family == KeyFamily.Ed25519 ? 64 : 114;
        }

        public static EdDsaSigner? Create(JsonElement jwk, byte[]? kid)
        {
            if (!TryString(jwk, "crv"u8, out string? crv) || crv is not ("Ed25519" or "Ed448"))
            {
                return null;
            }
            KeyFamily family = crv == "Ed25519" ? KeyFamily.Ed25519 : KeyFamily.Ed448;
            int size = family == KeyFamily.Ed25519 ? 32 : 57;
            byte[]? d = Decode(jwk, "d"u8);
            byte[]? x = jwk.TryGetProperty("x"u8, out _) ? Decode(jwk, "x"u8) : Array.Empty<byte>();
            if (d?.Length != size || x is null || (x.Length != 0 && x.Length != size))
            {
                return null;
            }

            nint pkey;
            fixed (byte* p = d)
            {
                pkey = LibCrypto.EVP_PKEY_new_raw_private_key(
                    family == KeyFamily.Ed25519 ? LibCrypto.EvpPkeyEd25519 : LibCrypto.EvpPkeyEd448,
                    IntPtr.Zero, p, (nuint)d.Length);
            }
            if (pkey == IntPtr.Zero)
            {
                LibCrypto.ERR_clear_error();
                return null;
            }
            var handle = new EvpPKeyHandle(pkey);

            Span<byte> pub = stackalloc byte[57];
            nuint length = (nuint)size;
            fixed (byte* p = pub)
            {
                if (LibCrypto.EVP_PKEY_get_raw_public_key(pkey, p, &length) != 1
                    || (x.Length != 0 && !pub[..(int)length].SequenceEqual(x)))
                {
                    LibCrypto.ERR_clear_error();
                    handle.Dispose();
                    return null;
                }
            }
            return new EdDsaSigner(family, handle, kid);
        }

        public override byte[] Sign(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput)
        {
            bool added = false;
            nint ctx = IntPtr.Zero;
            try
            {
                _pkey.DangerousAddRef(ref added);
                ctx = LibCrypto.EVP_MD_CTX_new();
                var signature = new byte[_signatureBytes];
                nuint length = (nuint)signature.Length;
                fixed (byte* s = signature)
                fixed (byte* data = signingInput)
                {
                    if (ctx == IntPtr.Zero
                        || LibCrypto.EVP_DigestSignInit(ctx, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero,
                            _pkey.DangerousGetHandle()) != 1
                        || LibCrypto.EVP_DigestSign(ctx, s, &length, data, (nuint)signingInput.Length) != 1)
                    {
                        LibCrypto.ERR_clear_error();
                        throw new CryptographicException("EdDSA signing failed");
                    }
                }
                return signature;
            }
            finally
            {
                if (ctx != IntPtr.Zero)
                {
                    LibCrypto.EVP_MD_CTX_free(ctx);
                }
                if (added)
                {
                    _pkey.DangerousRelease();
                }
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _pkey.Dispose();
            }
        }
    }
}
