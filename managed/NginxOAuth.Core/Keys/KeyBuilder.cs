using System;
using System.Security.Cryptography;

namespace NginxOAuth.Core.Keys;

/// <summary>Builds verification keys from raw public parameters, enforcing sizes and curves.</summary>
internal static class KeyBuilder
{
    public const int MinRsaBits = 2048;
    public const int MaxRsaBits = 16384;
    public const int MinUnpinnedHmacBytes = 32;

    public static int FieldBytes(KeyFamily family) => family switch
    {
        KeyFamily.P256 or KeyFamily.Secp256k1 => 32,
        KeyFamily.P384 => 48,
        KeyFamily.P521 => 66,
        _ => 0,
    };

    public static ConfigError Rsa(byte[]? kid, JwsAlgorithm? pinned, ReadOnlySpan<byte> modulus,
        ReadOnlySpan<byte> exponent, out JwsKey? key)
    {
        key = null;
        modulus = TrimLeadingZeros(modulus);
        exponent = TrimLeadingZeros(exponent);
        if (modulus.IsEmpty || exponent.IsEmpty || exponent.Length > 8
            || (exponent[^1] & 1) == 0 || (exponent.Length == 1 && exponent[0] == 1))
        {
            return ConfigError.KeyBadParameter;
        }

        int bits = (modulus.Length - 1) * 8 + (32 - System.Numerics.BitOperations.LeadingZeroCount((uint)modulus[0]));
        if (bits < MinRsaBits)
        {
            return ConfigError.KeyRsaTooSmall;
        }
        if (bits > MaxRsaBits)
        {
            return ConfigError.KeyRsaTooLarge;
        }

        RSA rsa = RSA.Create();
        try
        {
            rsa.ImportParameters(new RSAParameters { Modulus = modulus.ToArray(), Exponent = exponent.ToArray() });
        }
        catch (CryptographicException)
        {
            rsa.Dispose();
            return ConfigError.KeyBadParameter;
        }

        key = RsaJwsKey.Create(kid, pinned, rsa);
        return key is null ? ConfigError.KeyBadParameter : ConfigError.None;
    }

    /// <summary>Checks the size of an RSA key imported from DER.</summary>
    public static ConfigError Rsa(byte[]? kid, JwsAlgorithm? pinned, RSA rsa, out JwsKey? key)
    {
        key = null;
        RSAParameters p = rsa.ExportParameters(false);
        rsa.Dispose();
        return Rsa(kid, pinned, p.Modulus, p.Exponent, out key);
    }

    public static ConfigError Ec(byte[]? kid, JwsAlgorithm? pinned, KeyFamily family,
        ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, out JwsKey? key)
    {
        key = null;
        int field = FieldBytes(family);
        if (x.Length != field || y.Length != field)
        {
            return ConfigError.KeyBadParameter;
        }

        ECCurve curve = family switch
        {
            KeyFamily.P256 => ECCurve.NamedCurves.nistP256,
            KeyFamily.P384 => ECCurve.NamedCurves.nistP384,
            KeyFamily.P521 => ECCurve.NamedCurves.nistP521,
            _ => ECCurve.CreateFromValue("1.3.132.0.10"), // secp256k1
        };

        ECDsa ecdsa;
        try
        {
            // OpenSSL checks that the point is on the curve.
            ecdsa = ECDsa.Create(new ECParameters { Curve = curve, Q = new ECPoint { X = x.ToArray(), Y = y.ToArray() } });
        }
        catch (Exception e) when (e is CryptographicException or PlatformNotSupportedException or ArgumentException)
        {
            return ConfigError.KeyBadParameter;
        }

        key = EcJwsKey.Create(kid, family, pinned, ecdsa, field);
        return key is null ? ConfigError.KeyBadParameter : ConfigError.None;
    }

    public static ConfigError EdDsa(byte[]? kid, JwsAlgorithm? pinned, KeyFamily family,
        ReadOnlySpan<byte> x, out JwsKey? key)
    {
        key = EdDsaJwsKey.Create(kid, family, pinned, x);
        return key is null ? ConfigError.KeyBadParameter : ConfigError.None;
    }

    public static ConfigError Hmac(byte[]? kid, JwsAlgorithm? pinned, byte[] secret, out JwsKey? key)
    {
        key = null;
        if (secret.Length == 0)
        {
            return ConfigError.KeyBadParameter;
        }

        int minimum = pinned is { } alg ? JwsAlgorithms.HashLength(alg) : MinUnpinnedHmacBytes;
        if (secret.Length < minimum)
        {
            return ConfigError.KeyHmacTooShort;
        }

        key = new HmacJwsKey(kid, pinned, secret);
        return ConfigError.None;
    }

    private static ReadOnlySpan<byte> TrimLeadingZeros(ReadOnlySpan<byte> value)
    {
        int i = 0;
        while (i < value.Length && value[i] == 0)
        {
            i++;
        }
        return value[i..];
    }
}
