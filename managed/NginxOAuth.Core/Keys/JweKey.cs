using System;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace NginxOAuth.Core.Keys;

/// <summary>
/// A JWE decryption key (a private RSA or EC key, or a symmetric key),
/// built once when its key set loads and reused for every token.
/// </summary>
public abstract class JweKey : IDisposable
{
    private readonly byte[]? _kid;

    private protected JweKey(byte[]? kid, JweAlgorithm? pinned, JweEncryption? pinnedEnc)
    {
        _kid = kid;
        PinnedAlgorithm = pinned;
        PinnedEncryption = pinnedEnc;
    }

    /// <summary>The JWK "alg" when it names a key-management algorithm.</summary>
    public JweAlgorithm? PinnedAlgorithm { get; }

    /// <summary>The JWK "alg" when it names a content encryption algorithm (the key is a "dir" key for it).</summary>
    public JweEncryption? PinnedEncryption { get; }

    public bool HasKid => _kid is not null;

    public ReadOnlySpan<byte> Kid => _kid;

    /// <summary>True when this key may unwrap (or be) the CEK for <paramref name="alg"/> and <paramref name="enc"/>.</summary>
    public bool CanDecrypt(JweAlgorithm alg, JweEncryption enc)
    {
        if (PinnedAlgorithm is { } p && p != alg)
        {
            return false;
        }
        if (PinnedEncryption is { } e && (alg != JweAlgorithm.Dir || e != enc))
        {
            return false;
        }
        return Fits(alg, enc);
    }

    private protected abstract bool Fits(JweAlgorithm alg, JweEncryption enc);

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}

internal sealed class RsaJweKey : JweKey
{
    public RsaJweKey(byte[]? kid, JweAlgorithm? pinned, RSA rsa)
        : base(kid, pinned, null)
    {
        Rsa = rsa;
        ModulusBytes = (rsa.KeySize + 7) / 8;
    }

    public RSA Rsa { get; }

    public int ModulusBytes { get; }

    private protected override bool Fits(JweAlgorithm alg, JweEncryption enc) => JweAlgorithms.IsRsa(alg);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Rsa.Dispose();
        }
    }
}

internal sealed class EcJweKey : JweKey
{
    public EcJweKey(byte[]? kid, JweAlgorithm? pinned, KeyFamily family, ECDiffieHellman ecdh)
        : base(kid, pinned, null)
    {
        Family = family;
        Ecdh = ecdh;
    }

    public KeyFamily Family { get; }

    public ECDiffieHellman Ecdh { get; }

    private protected override bool Fits(JweAlgorithm alg, JweEncryption enc) => JweAlgorithms.IsEcdh(alg);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Ecdh.Dispose();
        }
    }
}

internal sealed class OctJweKey : JweKey
{
    private readonly byte[] _key;

    public OctJweKey(byte[]? kid, JweAlgorithm? pinned, JweEncryption? pinnedEnc, byte[] key)
        : base(kid, pinned, pinnedEnc)
    {
        _key = key;
    }

    public ReadOnlySpan<byte> Key => _key;

    // dir: the key is the CEK; A*KW / A*GCMKW: the key is the AES key of its size
    private protected override bool Fits(JweAlgorithm alg, JweEncryption enc) => alg == JweAlgorithm.Dir
        ? _key.Length == JweAlgorithms.KeyLength(enc)
        : JweAlgorithms.IsSymmetric(alg) && _key.Length == JweAlgorithms.WrapKeyLength(alg);

    protected override void Dispose(bool disposing)
    {
        CryptographicOperations.ZeroMemory(_key);
    }
}

/// <summary>
/// Finds the decryption keys of a JWK Set or keyval document. Runs beside
/// the verification-key pass of <see cref="KeySetLoader"/>: a private
/// RSA/EC JWK ("d") or a symmetric JWK whose "use" is absent or "enc" and
/// whose "alg" is absent or a JWE algorithm is a decryption key. Anything
/// else is not this pass's business (null key, no error).
/// </summary>
internal static class JweKeyLoader
{
    /// <summary>
    /// A key marked for encryption ("use":"enc" or a JWE "alg") that cannot
    /// be used is an error; an unmarked one (a signing key that happens to
    /// carry "d", on a curve ECDH-ES does not use) is simply not a
    /// decryption key, so files that loaded before still load.
    /// </summary>
    public static ConfigError ParseJwk(JsonElement jwk, out JweKey? key)
    {
        ConfigError error = ParseJwkCore(jwk, out key, out bool marked);
        return marked ? error : ConfigError.None;
    }

    private static ConfigError ParseJwkCore(JsonElement jwk, out JweKey? key, out bool marked)
    {
        key = null;
        marked = false;
        if (jwk.ValueKind != JsonValueKind.Object)
        {
            return ConfigError.None; // the verification pass reports it
        }
        if (jwk.TryGetProperty("use"u8, out JsonElement use))
        {
            if (use.ValueKind != JsonValueKind.String || !use.ValueEquals("enc"u8))
            {
                return ConfigError.None;
            }
            marked = true;
        }

        JweAlgorithm? pinned = null;
        JweEncryption? pinnedEnc = null;
        if (jwk.TryGetProperty("alg"u8, out JsonElement alg))
        {
            if (JweAlgorithms.TryParse(alg, out JweAlgorithm a))
            {
                pinned = a;
                marked = true;
            }
            else if (JweAlgorithms.TryParse(alg, out JweEncryption e))
            {
                pinnedEnc = e; // RFC 7520 5.6: a "dir" key named by its content encryption
                marked = true;
            }
            else
            {
                return ConfigError.None; // a signing algorithm, RSA1_5, PBES2: not ours
            }
        }

        byte[]? kid = null;
        if (jwk.TryGetProperty("kid"u8, out JsonElement kidElement))
        {
            if (kidElement.ValueKind != JsonValueKind.String)
            {
                return ConfigError.KeyBadParameter;
            }
            kid = Encoding.UTF8.GetBytes(kidElement.GetString()!);
            if (kid.Length == 0)
            {
                return ConfigError.KeyEmptyKid;
            }
        }

        if (!jwk.TryGetProperty("kty"u8, out JsonElement kty) || kty.ValueKind != JsonValueKind.String)
        {
            return ConfigError.KeyBadParameter;
        }

        if (kty.ValueEquals("oct"u8))
        {
            if ((pinned is { } p && !JweAlgorithms.IsSymmetric(p)) || !TryDecode(jwk, "k"u8, out byte[] k))
            {
                return pinned is null ? ConfigError.KeyBadParameter : ConfigError.KeyAlgMismatch;
            }
            if (!IsAesKeyLength(k.Length, pinned, pinnedEnc))
            {
                // no algorithm could use it (a 12-byte HMAC key, say):
                // no decryption key; an error only when marked for encryption
                return ConfigError.KeyBadParameter;
            }
            key = new OctJweKey(kid, pinned, pinnedEnc, k);
            return ConfigError.None;
        }

        if (!jwk.TryGetProperty("d"u8, out _))
        {
            return ConfigError.None; // a public key decrypts nothing
        }
        if (pinnedEnc is not null)
        {
            return ConfigError.KeyAlgMismatch;
        }

        if (kty.ValueEquals("RSA"u8))
        {
            if (pinned is { } p && !JweAlgorithms.IsRsa(p))
            {
                return ConfigError.KeyAlgMismatch;
            }
            return Rsa(jwk, kid, pinned, out key);
        }

        if (kty.ValueEquals("EC"u8))
        {
            if (pinned is { } p && !JweAlgorithms.IsEcdh(p))
            {
                return ConfigError.KeyAlgMismatch;
            }
            return Ec(jwk, kid, pinned, out key);
        }

        return ConfigError.None; // OKP (X25519) and others: not supported for decryption
    }

    /// <summary>A length some JWE algorithm the key is allowed could use: an AES key or a CEK.</summary>
    private static bool IsAesKeyLength(int length, JweAlgorithm? pinned, JweEncryption? pinnedEnc)
    {
        if (pinnedEnc is { } e)
        {
            return length == JweAlgorithms.KeyLength(e);
        }
        if (pinned is { } a && a != JweAlgorithm.Dir)
        {
            return length == JweAlgorithms.WrapKeyLength(a);
        }
        return length is 16 or 24 or 32 or 48 or 64;
    }

    private static ConfigError Rsa(JsonElement jwk, byte[]? kid, JweAlgorithm? pinned, out JweKey? key)
    {
        key = null;
        if (!TryDecode(jwk, "n"u8, out byte[] n) || !TryDecode(jwk, "e"u8, out byte[] e)
            || !TryDecode(jwk, "d"u8, out byte[] d))
        {
            return ConfigError.KeyBadParameter;
        }
        byte[] p, q, dp, dq, qi;
        bool hasCrt = jwk.TryGetProperty("p"u8, out _);
        if (hasCrt)
        {
            // RFC 7518 6.3.2: with one of the other parameters, all of them
            if (!TryDecode(jwk, "p"u8, out p) || !TryDecode(jwk, "q"u8, out q) || !TryDecode(jwk, "dp"u8, out dp)
                || !TryDecode(jwk, "dq"u8, out dq) || !TryDecode(jwk, "qi"u8, out qi))
            {
                return ConfigError.KeyBadParameter;
            }
        }
        else if (!RsaPrimes.TryRecover(n, e, d, out p, out q, out dp, out dq, out qi))
        {
            return ConfigError.KeyBadParameter; // n, e, d only, and d does not fit n and e
        }

        n = TrimLeadingZeros(n);
        int bits = n.Length * 8 - (n.Length == 0 ? 0 : System.Numerics.BitOperations.LeadingZeroCount((uint)n[0]) - 24);
        if (bits < KeyBuilder.MinRsaBits)
        {
            return ConfigError.KeyRsaTooSmall;
        }
        if (bits > KeyBuilder.MaxRsaBits)
        {
            return ConfigError.KeyRsaTooLarge;
        }

        // .NET wants D the modulus' size and the CRT values half of it
        int half = (n.Length + 1) / 2;
        RSA rsa = RSA.Create();
        try
        {
            rsa.ImportParameters(new RSAParameters
            {
                Modulus = n,
                Exponent = TrimLeadingZeros(e),
                D = Pad(d, n.Length),
                P = Pad(p, half),
                Q = Pad(q, half),
                DP = Pad(dp, half),
                DQ = Pad(dq, half),
                InverseQ = Pad(qi, half),
            });
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            rsa.Dispose();
            return ConfigError.KeyBadParameter;
        }
        key = new RsaJweKey(kid, pinned, rsa);
        return ConfigError.None;
    }

    private static ConfigError Ec(JsonElement jwk, byte[]? kid, JweAlgorithm? pinned, out JweKey? key)
    {
        key = null;
        if (!jwk.TryGetProperty("crv"u8, out JsonElement crv) || crv.ValueKind != JsonValueKind.String)
        {
            return ConfigError.KeyBadParameter;
        }
        if (!TryCurve(crv, out KeyFamily family, out ECCurve curve))
        {
            return ConfigError.KeyUnknownCurve;
        }
        int field = KeyBuilder.FieldBytes(family);
        if (!TryDecode(jwk, "x"u8, out byte[] x) || !TryDecode(jwk, "y"u8, out byte[] y)
            || !TryDecode(jwk, "d"u8, out byte[] d) || x.Length != field || y.Length != field || d.Length > field)
        {
            return ConfigError.KeyBadParameter;
        }

        try
        {
            // OpenSSL checks that the point is on the curve and belongs to d
            ECDiffieHellman ecdh = ECDiffieHellman.Create(new ECParameters
            {
                Curve = curve,
                Q = new ECPoint { X = x, Y = y },
                D = Pad(d, field),
            });
            key = new EcJweKey(kid, pinned, family, ecdh);
            return ConfigError.None;
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException
                                       or PlatformNotSupportedException)
        {
            return ConfigError.KeyBadParameter;
        }
    }

    /// <summary>P-256, P-384, P-521 (the curves of RFC 7518 ECDH-ES).</summary>
    internal static bool TryCurve(JsonElement crv, out KeyFamily family, out ECCurve curve)
    {
        if (crv.ValueEquals("P-256"u8))
        {
            family = KeyFamily.P256;
            curve = ECCurve.NamedCurves.nistP256;
            return true;
        }
        if (crv.ValueEquals("P-384"u8))
        {
            family = KeyFamily.P384;
            curve = ECCurve.NamedCurves.nistP384;
            return true;
        }
        if (crv.ValueEquals("P-521"u8))
        {
            family = KeyFamily.P521;
            curve = ECCurve.NamedCurves.nistP521;
            return true;
        }
        family = default;
        curve = default;
        return false;
    }

    /// <summary>
    /// A PEM private key of a keyval document ("PRIVATE KEY", "RSA PRIVATE
    /// KEY", "EC PRIVATE KEY"): RSA keys decrypt RSA-OAEP*, P-256/384/521
    /// keys ECDH-ES*. Null with no error when the PEM is not a private key.
    /// </summary>
    public static ConfigError ParsePem(string pem, byte[] kid, out JweKey? key)
    {
        key = null;
        if (!PemEncoding.TryFind(pem, out PemFields fields))
        {
            return ConfigError.None;
        }
        ReadOnlySpan<char> label = pem.AsSpan()[fields.Label];
        if (!label.SequenceEqual("PRIVATE KEY") && !label.SequenceEqual("RSA PRIVATE KEY")
            && !label.SequenceEqual("EC PRIVATE KEY"))
        {
            return ConfigError.None;
        }

        try
        {
            if (!label.SequenceEqual("EC PRIVATE KEY"))
            {
                RSA rsa = RSA.Create();
                try
                {
                    rsa.ImportFromPem(pem);
                    if (rsa.KeySize < KeyBuilder.MinRsaBits || rsa.KeySize > KeyBuilder.MaxRsaBits)
                    {
                        rsa.Dispose();
                        return rsa.KeySize < KeyBuilder.MinRsaBits
                            ? ConfigError.KeyRsaTooSmall : ConfigError.KeyRsaTooLarge;
                    }
                    key = new RsaJweKey(kid, null, rsa);
                    return ConfigError.None;
                }
                catch (Exception ex) when (ex is CryptographicException or ArgumentException)
                {
                    rsa.Dispose();
                    if (label.SequenceEqual("RSA PRIVATE KEY"))
                    {
                        return ConfigError.KeyBadPem;
                    }
                    // a PKCS#8 key that is not RSA: try EC below
                }
            }

            ECDiffieHellman ecdh = ECDiffieHellman.Create();
            try
            {
                ecdh.ImportFromPem(pem);
                ECParameters parameters = ecdh.ExportParameters(false);
                KeyFamily family;
                string? oid = parameters.Curve.Oid?.Value;
                switch (oid)
                {
                    case "1.2.840.10045.3.1.7": family = KeyFamily.P256; break;
                    case "1.3.132.0.34": family = KeyFamily.P384; break;
                    case "1.3.132.0.35": family = KeyFamily.P521; break;
                    default:
                        ecdh.Dispose();
                        return ConfigError.KeyBadPem;
                }
                key = new EcJweKey(kid, null, family, ecdh);
                return ConfigError.None;
            }
            catch (Exception ex) when (ex is CryptographicException or ArgumentException)
            {
                ecdh.Dispose();
                return ConfigError.KeyBadPem;
            }
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            return ConfigError.KeyBadPem;
        }
    }

    private static byte[] Pad(byte[] value, int length)
    {
        ReadOnlySpan<byte> v = TrimLeadingZeros(value);
        if (v.Length >= length)
        {
            return v.ToArray();
        }
        byte[] padded = new byte[length];
        v.CopyTo(padded.AsSpan(length - v.Length));
        return padded;
    }

    private static byte[] TrimLeadingZeros(byte[] value)
    {
        int i = 0;
        while (i < value.Length - 1 && value[i] == 0)
        {
            i++;
        }
        return i == 0 ? value : value[i..];
    }

    private static bool TryDecode(JsonElement jwk, ReadOnlySpan<byte> name, out byte[] value)
    {
        value = Array.Empty<byte>();
        if (!jwk.TryGetProperty(name, out JsonElement element) || element.ValueKind != JsonValueKind.String)
        {
            return false;
        }
        string text = element.GetString()!.TrimEnd('=');
        if (text.Length == 0 || !System.Buffers.Text.Base64Url.IsValid(text))
        {
            return false;
        }
        value = System.Buffers.Text.Base64Url.DecodeFromChars(text);
        return value.Length > 0;
    }
}

/// <summary>
/// The primes of an RSA key given only n, e and d (RFC 7518 6.3.2 lets a
/// JWK omit them; .NET and OpenSSL want them). The classic randomized
/// method: d*e - 1 is a multiple of lcm(p-1, q-1); a square root of 1
/// modulo n other than +-1 reveals a factor.
/// </summary>
internal static class RsaPrimes
{
    public static bool TryRecover(byte[] modulus, byte[] exponent, byte[] privateExponent, out byte[] p,
        out byte[] q, out byte[] dp, out byte[] dq, out byte[] qi)
    {
        p = q = dp = dq = qi = Array.Empty<byte>();
        var n = new System.Numerics.BigInteger(modulus, isUnsigned: true, isBigEndian: true);
        var e = new System.Numerics.BigInteger(exponent, isUnsigned: true, isBigEndian: true);
        var d = new System.Numerics.BigInteger(privateExponent, isUnsigned: true, isBigEndian: true);
        System.Numerics.BigInteger k = d * e - 1;
        if (n.IsZero || k.Sign <= 0 || !k.IsEven)
        {
            return false;
        }
        int t = 0;
        System.Numerics.BigInteger r = k;
        while (r.IsEven)
        {
            r >>= 1;
            t++;
        }

        System.Numerics.BigInteger factor = System.Numerics.BigInteger.Zero;
        for (int g = 2; g < 200 && factor.IsZero; g++)
        {
            System.Numerics.BigInteger y = System.Numerics.BigInteger.ModPow(g, r, n);
            if (y.IsOne || y == n - 1)
            {
                continue;
            }
            for (int i = 1; i <= t; i++)
            {
                System.Numerics.BigInteger x = System.Numerics.BigInteger.ModPow(y, 2, n);
                if (x.IsOne)
                {
                    factor = System.Numerics.BigInteger.GreatestCommonDivisor(y - 1, n);
                    break;
                }
                if (x == n - 1)
                {
                    break;
                }
                y = x;
            }
        }
        if (factor.IsZero || factor.IsOne || factor == n || !(n % factor).IsZero)
        {
            return false;
        }

        System.Numerics.BigInteger bp = System.Numerics.BigInteger.Max(factor, n / factor);
        System.Numerics.BigInteger bq = n / bp;
        p = bp.ToByteArray(isUnsigned: true, isBigEndian: true);
        q = bq.ToByteArray(isUnsigned: true, isBigEndian: true);
        dp = (d % (bp - 1)).ToByteArray(isUnsigned: true, isBigEndian: true);
        dq = (d % (bq - 1)).ToByteArray(isUnsigned: true, isBigEndian: true);
        qi = System.Numerics.BigInteger.ModPow(bq, bp - 2, bp).ToByteArray(isUnsigned: true, isBigEndian: true);
        return true;
    }
}
