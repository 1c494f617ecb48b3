using System;
using System.Buffers.Text;
using System.Collections.Generic;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using NginxOAuth.Core.Json;

namespace NginxOAuth.Core.Keys;

/// <summary>
/// Parses JWKS and keyval documents into <see cref="KeySet"/>s. Runs at
/// configuration or key-fetch time, not per token, so it favours clarity
/// over allocation.
/// </summary>
public static class KeySetLoader
{
    public static KeySetResult Load(ReadOnlySpan<byte> document, KeySetFormat format)
    {
        if (document.Length > Limits.MaxKeySet)
        {
            return KeySetResult.Fail(ConfigError.KeysTooLarge);
        }

        switch (JsonGuard.Check(document))
        {
            case JsonShape.Object:
                break;
            case JsonShape.Invalid:
            case JsonShape.DuplicateMember: // two "keys" or two keys with one kid: ambiguous
                return KeySetResult.Fail(ConfigError.JsonInvalid);
            default:
                return KeySetResult.Fail(ConfigError.JsonNotObject);
        }

        using JsonDocument doc = JsonGuard.Parse(document.ToArray());
        var keys = new List<JwsKey>();
        var skipped = new List<SkippedKey>();
        int detail = -1;
        ConfigError error = format == KeySetFormat.KeyVal
            ? LoadKeyVal(doc.RootElement, keys, skipped)
            : LoadJwks(doc.RootElement, keys, skipped);
        var decryptionKeys = new List<JweKey>();
        if (error == ConfigError.None)
        {
            int count = format == KeySetFormat.KeyVal
                ? CountMembers(doc.RootElement)
                : doc.RootElement.GetProperty("keys"u8).GetArrayLength();
            var decryption = new DecryptionOutcome[count];
            LoadDecryptionKeys(doc.RootElement, format, decryption);
            Reconcile(decryption, skipped, decryptionKeys);
        }
        if (error == ConfigError.None && keys.Count == 0 && decryptionKeys.Count == 0 && skipped.Count > 0)
        {
            // no usable key at all, for verifying or for decrypting: the
            // document is refused, for its first key's reason
            error = skipped[0].Reason;
            detail = skipped[0].Index;
        }
        if (error != ConfigError.None)
        {
            foreach (JwsKey key in keys)
            {
                key.Dispose();
            }
            foreach (JweKey key in decryptionKeys)
            {
                key.Dispose();
            }
            return KeySetResult.Fail(error, detail);
        }
        return KeySetResult.Ok(new KeySet(keys.ToArray(), decryptionKeys.ToArray(), skipped.ToArray()));
    }

    private static int CountMembers(JsonElement root)
    {
        int count = 0;
        foreach (JsonProperty _ in root.EnumerateObject())
        {
            count++;
        }
        return count;
    }

    /// <summary>What the decryption pass made of one key: a key, a reason it cannot be used, or neither (not a decryption key).</summary>
    private struct DecryptionOutcome
    {
        public JweKey? Key;
        public ConfigError Error;
    }

    /// <summary>
    /// The JWE decryption keys of a document (see <see cref="JweKeyLoader"/>),
    /// one outcome per key: a second pass, so that neither pass needs to
    /// know the other's rules; <see cref="Reconcile"/> joins them.
    /// </summary>
    private static void LoadDecryptionKeys(JsonElement root, KeySetFormat format, DecryptionOutcome[] outcomes)
    {
        int index = 0;
        if (format == KeySetFormat.KeyVal)
        {
            foreach (JsonProperty member in root.EnumerateObject())
            {
                if (member.Name.Length > 0 && member.Value.ValueKind == JsonValueKind.String)
                {
                    outcomes[index].Error = JweKeyLoader.ParsePem(member.Value.GetString()!,
                        Encoding.UTF8.GetBytes(member.Name), out outcomes[index].Key);
                }
                index++;
            }
            return;
        }

        foreach (JsonElement jwk in root.GetProperty("keys"u8).EnumerateArray())
        {
            outcomes[index].Error = JweKeyLoader.ParseJwk(jwk, out outcomes[index].Key);
            index++;
        }
    }

    /// <summary>
    /// Joins the two passes, key by key. The verification pass skips every
    /// key marked for encryption ("use":"enc", a JWE "alg", a keyval private
    /// key) as KeyForEncryption: when it loaded as a decryption key it is in
    /// use and no longer listed; when the decryption pass refused it, it is
    /// listed for that pass's reason (a short "oct" key marked for
    /// encryption is never reported as a weak HMAC key). An unmarked key
    /// the verification pass refused (a 16-byte "oct" key: too short for
    /// HMAC) stays listed and decrypts nothing either, so that a key is
    /// either used or reported, never both.
    /// </summary>
    private static void Reconcile(DecryptionOutcome[] decryption, List<SkippedKey> skipped, List<JweKey> keys)
    {
        var reasons = new Dictionary<int, int>(skipped.Count);
        for (int i = 0; i < skipped.Count; i++)
        {
            reasons[skipped[i].Index] = i;
        }

        var removed = new List<int>();
        for (int index = 0; index < decryption.Length; index++)
        {
            DecryptionOutcome outcome = decryption[index];
            bool listed = reasons.TryGetValue(index, out int at);
            bool marked = listed && skipped[at].Reason == ConfigError.KeyForEncryption;
            if (outcome.Key is { } key)
            {
                if (listed && !marked)
                {
                    key.Dispose();
                    continue;
                }
                keys.Add(key);
                if (marked)
                {
                    removed.Add(at);
                }
            }
            else if (marked)
            {
                skipped[at] = skipped[at] with
                {
                    Reason = outcome.Error != ConfigError.None ? outcome.Error : ConfigError.KeyForEncryption,
                    ForEncryption = true,
                };
            }
        }

        for (int i = removed.Count - 1; i >= 0; i--)
        {
            skipped.RemoveAt(removed[i]);
        }
    }

    /// <summary>The kid of a JWK that is skipped, for the report (null: none or not a string).</summary>
    private static byte[]? KidOf(JsonElement jwk)
    {
        if (jwk.ValueKind == JsonValueKind.Object && jwk.TryGetProperty("kid"u8, out JsonElement kid)
            && kid.ValueKind == JsonValueKind.String)
        {
            try
            {
                return Encoding.UTF8.GetBytes(kid.GetString()!);
            }
            catch (InvalidOperationException)
            {
                return null; // a lone surrogate escape
            }
        }
        return null;
    }

    /// <summary>
    /// Loads every key it can use. A key it will not use (a weak or
    /// malformed key, an unknown kty or curve, an encryption key) is skipped
    /// and listed; the whole document fails only for what concerns all of it.
    /// </summary>
    private static ConfigError LoadJwks(JsonElement root, List<JwsKey> keys, List<SkippedKey> skipped)
    {
        if (!root.TryGetProperty("keys"u8, out JsonElement array))
        {
            return ConfigError.JsonEmpty;
        }
        if (array.ValueKind != JsonValueKind.Array)
        {
            return ConfigError.KeyBadParameter;
        }

        int count = array.GetArrayLength();
        if (count == 0)
        {
            return ConfigError.JsonEmpty;
        }
        if (count > Limits.MaxKeys)
        {
            return ConfigError.KeysTooMany;
        }

        int index = 0;
        foreach (JsonElement jwk in array.EnumerateArray())
        {
            ConfigError error = ParseJwk(jwk, out JwsKey? key);
            if (error == ConfigError.None && key is null)
            {
                error = ConfigError.KeyForEncryption;
            }
            if (error != ConfigError.None)
            {
                key?.Dispose();
                skipped.Add(new SkippedKey(index, KidOf(jwk), error));
            }
            else
            {
                keys.Add(key!);
            }
            index++;
        }
        return ConfigError.None;
    }

    private static ConfigError LoadKeyVal(JsonElement root, List<JwsKey> keys, List<SkippedKey> skipped)
    {
        int count = 0;
        foreach (JsonProperty _ in root.EnumerateObject())
        {
            count++;
        }
        if (count == 0)
        {
            return ConfigError.JsonEmpty;
        }
        if (count > Limits.MaxKeys)
        {
            return ConfigError.KeysTooMany;
        }

        int index = 0;
        foreach (JsonProperty member in root.EnumerateObject())
        {
            ConfigError error;
            JwsKey? key = null;
            if (member.Name.Length == 0)
            {
                error = ConfigError.KeyEmptyKid;
            }
            else if (member.Value.ValueKind != JsonValueKind.String)
            {
                error = ConfigError.KeyBadPem;
            }
            else
            {
                error = ParsePem(member.Value.GetString()!, Encoding.UTF8.GetBytes(member.Name), out key);
                if (error == ConfigError.None && key is null)
                {
                    error = ConfigError.KeyForEncryption; // a private key: the decryption pass's
                }
            }

            if (error != ConfigError.None)
            {
                key?.Dispose();
                skipped.Add(new SkippedKey(index, Encoding.UTF8.GetBytes(member.Name), error));
            }
            else
            {
                keys.Add(key!);
            }
            index++;
        }
        return ConfigError.None;
    }

    /// <summary>Parses one JWK. A null key with no error means the key was dropped (encryption key).</summary>
    internal static ConfigError ParseJwk(JsonElement jwk, out JwsKey? key)
    {
        key = null;
        if (jwk.ValueKind != JsonValueKind.Object)
        {
            return ConfigError.KeyBadParameter;
        }

        if (jwk.TryGetProperty("use"u8, out JsonElement use))
        {
            if (use.ValueKind != JsonValueKind.String)
            {
                return ConfigError.KeyBadParameter;
            }
            if (use.ValueEquals("enc"u8))
            {
                return ConfigError.None; // never verifies
            }
        }

        JwsAlgorithm? pinned = null;
        if (jwk.TryGetProperty("alg"u8, out JsonElement alg))
        {
            if (alg.ValueKind != JsonValueKind.String)
            {
                return ConfigError.KeyBadParameter;
            }
            if (JwsAlgorithms.IsEncryptionAlgorithm(alg))
            {
                return ConfigError.None; // a JWE key-management key: dropped like "use":"enc"
            }
            if (!JwsAlgorithms.TryParse(alg, out JwsAlgorithm a))
            {
                return ConfigError.KeyUnknownAlg;
            }
            pinned = a;
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

        if (kty.ValueEquals("RSA"u8))
        {
            if (pinned is { } p && !JwsAlgorithms.Fits(p, KeyFamily.Rsa))
            {
                return ConfigError.KeyAlgMismatch;
            }
            if (!TryDecode(jwk, "n"u8, out byte[] n) || !TryDecode(jwk, "e"u8, out byte[] e))
            {
                return ConfigError.KeyBadParameter;
            }
            return KeyBuilder.Rsa(kid, pinned, n, e, out key);
        }

        if (kty.ValueEquals("EC"u8))
        {
            if (!jwk.TryGetProperty("crv"u8, out JsonElement crv) || crv.ValueKind != JsonValueKind.String)
            {
                return ConfigError.KeyBadParameter;
            }
            KeyFamily family;
            if (crv.ValueEquals("P-256"u8))
            {
                family = KeyFamily.P256;
            }
            else if (crv.ValueEquals("P-384"u8))
            {
                family = KeyFamily.P384;
            }
            else if (crv.ValueEquals("P-521"u8))
            {
                family = KeyFamily.P521;
            }
            else if (crv.ValueEquals("secp256k1"u8))
            {
                family = KeyFamily.Secp256k1;
            }
            else
            {
                return ConfigError.KeyUnknownCurve;
            }

            if (pinned is { } p && !JwsAlgorithms.Fits(p, family))
            {
                return ConfigError.KeyAlgMismatch;
            }
            if (!TryDecode(jwk, "x"u8, out byte[] x) || !TryDecode(jwk, "y"u8, out byte[] y))
            {
                return ConfigError.KeyBadParameter;
            }
            return KeyBuilder.Ec(kid, pinned, family, x, y, out key);
        }

        if (kty.ValueEquals("OKP"u8))
        {
            if (!jwk.TryGetProperty("crv"u8, out JsonElement crv) || crv.ValueKind != JsonValueKind.String)
            {
                return ConfigError.KeyBadParameter;
            }
            KeyFamily family;
            if (crv.ValueEquals("Ed25519"u8))
            {
                family = KeyFamily.Ed25519;
            }
            else if (crv.ValueEquals("Ed448"u8))
            {
                family = KeyFamily.Ed448;
            }
            else
            {
                return ConfigError.KeyUnknownCurve; // X25519/X448 are key agreement curves
            }

            if (pinned is { } p && !JwsAlgorithms.Fits(p, family))
            {
                return ConfigError.KeyAlgMismatch;
            }
            if (!TryDecode(jwk, "x"u8, out byte[] x))
            {
                return ConfigError.KeyBadParameter;
            }
            return KeyBuilder.EdDsa(kid, pinned, family, x, out key);
        }

        if (kty.ValueEquals("oct"u8))
        {
            if (pinned is { } p && !JwsAlgorithms.Fits(p, KeyFamily.Oct))
            {
                return ConfigError.KeyAlgMismatch;
            }
            if (!TryDecode(jwk, "k"u8, out byte[] k))
            {
                return ConfigError.KeyBadParameter;
            }
            return KeyBuilder.Hmac(kid, pinned, k, out key);
        }

        return ConfigError.KeyUnknownKty;
    }

    /// <summary>Parses a PEM public key: SubjectPublicKeyInfo ("PUBLIC KEY") or PKCS#1 ("RSA PUBLIC KEY").</summary>
    internal static ConfigError ParsePem(string pem, byte[] kid, out JwsKey? key)
    {
        key = null;
        if (!PemEncoding.TryFind(pem, out PemFields fields))
        {
            return ConfigError.KeyBadPem;
        }

        ReadOnlySpan<char> label = pem.AsSpan()[fields.Label];
        byte[] der = new byte[fields.DecodedDataLength];
        if (!Convert.TryFromBase64Chars(pem.AsSpan()[fields.Base64Data], der, out int written))
        {
            return ConfigError.KeyBadPem;
        }
        der = der.AsSpan(0, written).ToArray();

        try
        {
            if (label.SequenceEqual("RSA PUBLIC KEY"))
            {
                RSA pkcs1 = RSA.Create();
                pkcs1.ImportRSAPublicKey(der, out int read);
                if (read != der.Length)
                {
                    pkcs1.Dispose();
                    return ConfigError.KeyBadPem;
                }
                return KeyBuilder.Rsa(kid, null, pkcs1, out key);
            }

            if (label.SequenceEqual("PRIVATE KEY") || label.SequenceEqual("RSA PRIVATE KEY")
                || label.SequenceEqual("EC PRIVATE KEY"))
            {
                return ConfigError.None; // a JWE decryption key (JweKeyLoader.ParsePem), verifies nothing
            }

            if (!label.SequenceEqual("PUBLIC KEY"))
            {
                return ConfigError.KeyBadPem; // certificates are refused
            }

            return ParseSubjectPublicKeyInfo(der, kid, out key);
        }
        catch (Exception e) when (e is AsnContentException or CryptographicException)
        {
            return ConfigError.KeyBadPem;
        }
    }

    private static ConfigError ParseSubjectPublicKeyInfo(byte[] der, byte[] kid, out JwsKey? key)
    {
        key = null;
        var reader = new AsnReader(der, AsnEncodingRules.DER);
        AsnReader spki = reader.ReadSequence();
        reader.ThrowIfNotEmpty();
        AsnReader algorithm = spki.ReadSequence();
        string oid = algorithm.ReadObjectIdentifier();
        string? curveOid = null;
        if (algorithm.HasData && algorithm.PeekTag().HasSameClassAndValue(Asn1Tag.ObjectIdentifier))
        {
            curveOid = algorithm.ReadObjectIdentifier();
        }
        byte[] subjectPublicKey = spki.ReadBitString(out int unusedBits);
        spki.ThrowIfNotEmpty();
        if (unusedBits != 0)
        {
            return ConfigError.KeyBadPem;
        }

        switch (oid)
        {
            case "1.2.840.113549.1.1.1": // rsaEncryption
                RSA rsa = RSA.Create();
                rsa.ImportSubjectPublicKeyInfo(der, out _);
                return KeyBuilder.Rsa(kid, null, rsa, out key);

            case "1.2.840.10045.2.1": // id-ecPublicKey
                KeyFamily family;
                switch (curveOid)
                {
                    case "1.2.840.10045.3.1.7": family = KeyFamily.P256; break;
                    case "1.3.132.0.34": family = KeyFamily.P384; break;
                    case "1.3.132.0.35": family = KeyFamily.P521; break;
                    case "1.3.132.0.10": family = KeyFamily.Secp256k1; break;
                    default: return ConfigError.KeyBadPem;
                }
                int field = KeyBuilder.FieldBytes(family);
                if (subjectPublicKey.Length != 1 + 2 * field || subjectPublicKey[0] != 0x04)
                {
                    return ConfigError.KeyBadPem; // only uncompressed points
                }
                ConfigError ec = KeyBuilder.Ec(kid, null, family,
                    subjectPublicKey.AsSpan(1, field), subjectPublicKey.AsSpan(1 + field, field), out key);
                return ec == ConfigError.KeyBadParameter ? ConfigError.KeyBadPem : ec;

            case "1.3.101.112": // Ed25519
            case "1.3.101.113": // Ed448
                KeyFamily ed = oid == "1.3.101.112" ? KeyFamily.Ed25519 : KeyFamily.Ed448;
                ConfigError edError = KeyBuilder.EdDsa(kid, null, ed, subjectPublicKey, out key);
                return edError == ConfigError.None ? edError : ConfigError.KeyBadPem;

            default:
                return ConfigError.KeyBadPem;
        }
    }

    private static bool TryDecode(JsonElement jwk, ReadOnlySpan<byte> name, out byte[] value)
    {
        value = Array.Empty<byte>();
        if (!jwk.TryGetProperty(name, out JsonElement element) || element.ValueKind != JsonValueKind.String)
        {
            return false;
        }

        string text = element.GetString()!.TrimEnd('='); // tolerate padding in key documents
        if (text.Length == 0 || !Base64Url.IsValid(text))
        {
            return false;
        }
        value = Base64Url.DecodeFromChars(text);
        return value.Length > 0;
    }
}
