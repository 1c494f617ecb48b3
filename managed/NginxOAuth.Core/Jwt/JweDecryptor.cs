using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Unicode;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Keys;

namespace NginxOAuth.Core.Jwt;

/// <summary>The outcome of <see cref="JweDecryptor.Decrypt"/>.</summary>
public readonly struct DecryptResult
{
    public DecryptResult(TokenError error, int headerLength, int plaintextLength, bool contentIsJwt,
        int detail = -1)
    {
        Error = error;
        HeaderLength = headerLength;
        PlaintextLength = plaintextLength;
        ContentIsJwt = contentIsJwt;
        Detail = detail;
    }

    public TokenError Error { get; }

    /// <summary>For KeySkipped: why the key was skipped (a ConfigError); else -1.</summary>
    public int Detail { get; }

    /// <summary>Decoded protected header length at the start of the output, -1 when it did not decode.</summary>
    public int HeaderLength { get; }

    /// <summary>Plaintext length (after the header), -1 unless decryption succeeded.</summary>
    public int PlaintextLength { get; }

    /// <summary>The header's "cty" is "JWT" (any case, RFC 7519 section 5.2): the plaintext is a nested JWT.</summary>
    public bool ContentIsJwt { get; }
}

/// <summary>
/// Decrypts compact JWE (RFC 7516) with the decryption keys of key sets.
/// Failures after the key is chosen are one outcome, DecryptFailed, so a
/// client learns nothing about which step failed: an RSA-OAEP unwrap that
/// fails goes on with a random CEK (RFC 7516 section 11.5) and fails at
/// the tag like any other wrong key; tags are compared in constant time;
/// CBC padding is only looked at after the HMAC matched.
/// </summary>
public static class JweDecryptor
{
    private const int MaxEncryptedKey = KeyBuilder.MaxRsaBits / 8;

    /// <summary>
    /// Decrypts <paramref name="token"/>: the decoded protected header, then
    /// the plaintext, are written to <paramref name="output"/> (at least
    /// token.Length bytes).
    /// </summary>
    public static DecryptResult Decrypt(ReadOnlySpan<byte> token, ReadOnlySpan<KeySet> sets1,
        ReadOnlySpan<KeySet> sets2, Span<byte> output)
    {
        if (token.Length > Limits.MaxToken)
        {
            return Fail(TokenError.TokenTooLarge, -1);
        }
        if (output.Length < token.Length)
        {
            throw new ArgumentException("output must hold at least token.Length bytes", nameof(output));
        }

        Span<Range> parts = stackalloc Range[5];
        if (!Split(token, parts))
        {
            return Fail(TokenError.TokenMalformed, -1);
        }
        ReadOnlySpan<byte> encodedHeader = token[parts[0]];
        if (encodedHeader.IsEmpty || Base64Url.GetMaxDecodedLength(encodedHeader.Length) > Limits.MaxHeader + 2)
        {
            return Fail(encodedHeader.IsEmpty ? TokenError.TokenMalformed : TokenError.TokenTooLarge, -1);
        }
        if (!JwtVerifier.TryDecode(encodedHeader, output, out int headerLength)
            || headerLength == 0 || headerLength > Limits.MaxHeader
            || JsonGuard.Check(output[..headerLength]) != JsonShape.Object)
        {
            return Fail(TokenError.TokenMalformed, -1);
        }

        using JsonDocument header = JsonGuard.Parse(output[..headerLength].ToArray());
        JsonElement root = header.RootElement;
        TokenError error = ReadHeader(root, out JweAlgorithm alg, out JweEncryption enc, out bool contentIsJwt);
        if (error != TokenError.None)
        {
            return Fail(error, headerLength);
        }

        byte[] rented = ArrayPool<byte>.Shared.Rent(token.Length);
        try
        {
            // encrypted key | iv | ciphertext | tag, decoded one after another
            Span<byte> scratch = rented;
            if (!DecodePart(token[parts[1]], ref scratch, MaxEncryptedKey, out ReadOnlySpan<byte> encryptedKey)
                || !DecodePart(token[parts[2]], ref scratch, 16, out ReadOnlySpan<byte> iv)
                || !DecodePart(token[parts[3]], ref scratch, int.MaxValue, out ReadOnlySpan<byte> ciphertext)
                || !DecodePart(token[parts[4]], ref scratch, 32, out ReadOnlySpan<byte> tag))
            {
                return Fail(TokenError.TokenMalformed, headerLength);
            }

            int cekLength = JweAlgorithms.KeyLength(enc);
            bool gcm = JweAlgorithms.IsGcm(enc);
            if (iv.Length != (gcm ? 12 : 16) || tag.Length != (gcm ? 16 : cekLength / 2) || ciphertext.IsEmpty
                || (!gcm && ciphertext.Length % 16 != 0))
            {
                return Fail(TokenError.TokenMalformed, headerLength);
            }
            bool direct = alg is JweAlgorithm.Dir or JweAlgorithm.EcdhEs;
            if (direct != encryptedKey.IsEmpty)
            {
                return Fail(TokenError.TokenMalformed, headerLength);
            }

            Span<byte> plaintext = output[headerLength..];
            ReadOnlySpan<byte> aad = encodedHeader;
            int total = 0;
            bool candidate = false;
            JsonElement kid = root.TryGetProperty("kid"u8, out JsonElement k) ? k : default;
            bool hasKid = kid.ValueKind == JsonValueKind.String;
            if (kid.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.String))
            {
                return Fail(TokenError.TokenMalformed, headerLength);
            }

            // Keys carrying the token's kid first, then keys without a kid;
            // with no kid in the token, every key (as for signatures).
            Span<byte> cek = stackalloc byte[64];
            for (int pass = 0; pass < (hasKid ? 2 : 1); pass++)
            {
                for (int s = 0; s < sets1.Length + sets2.Length; s++)
                {
                    KeySet set = s < sets1.Length ? sets1[s] : sets2[s - sets1.Length];
                    foreach (JweKey key in set.DecryptionKeys)
                    {
                        if (pass == 0)
                        {
                            total++;
                        }
                        if (hasKid && (pass == 0 ? !key.HasKid || !kid.ValueEquals(key.Kid) : key.HasKid))
                        {
                            continue;
                        }
                        if (!key.CanDecrypt(alg, enc))
                        {
                            continue;
                        }

                        KeyOutcome outcome = ContentKey(key, alg, enc, root, encryptedKey, cek[..cekLength]);
                        if (outcome == KeyOutcome.Unusable)
                        {
                            continue; // e.g. an ECDH key on another curve than epk
                        }
                        if (outcome == KeyOutcome.Malformed)
                        {
                            return Fail(TokenError.TokenMalformed, headerLength);
                        }
                        candidate = true;
                        int length = outcome == KeyOutcome.Ok
                            ? DecryptContent(enc, cek[..cekLength], iv, ciphertext, tag, aad, plaintext)
                            : -1;
                        if (length >= 0)
                        {
                            CryptographicOperations.ZeroMemory(cek);
                            return new DecryptResult(TokenError.None, headerLength, length, contentIsJwt);
                        }
                    }
                }
            }
            CryptographicOperations.ZeroMemory(cek);

            if (total == 0)
            {
                return Fail(TokenError.NoKeys, headerLength);
            }
            if (!candidate && hasKid && SkippedFor(sets1, sets2, kid) is { } reason)
            {
                return new DecryptResult(TokenError.KeySkipped, headerLength, -1, false, (int)reason);
            }
            return Fail(candidate ? TokenError.DecryptFailed : TokenError.KeyNotFound, headerLength);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented, clearArray: true);
        }
    }

    /// <summary>Exactly five parts separated by '.' (a JWS has three).</summary>
    internal static bool Split(ReadOnlySpan<byte> token, Span<Range> parts)
    {
        int start = 0;
        for (int i = 0; i < 4; i++)
        {
            int dot = token[start..].IndexOf((byte)'.');
            if (dot < 0)
            {
                return false;
            }
            parts[i] = new Range(start, start + dot);
            start += dot + 1;
        }
        if (token[start..].IndexOf((byte)'.') >= 0)
        {
            return false;
        }
        parts[4] = new Range(start, token.Length);
        return true;
    }

    private static DecryptResult Fail(TokenError error, int headerLength) => new(error, headerLength, -1, false);

    /// <summary>
    /// Why the decryption key with the token's kid was skipped, when no
    /// loaded key could be tried: a key marked for encryption that the
    /// decryption pass refused (not a public encryption key, which no
    /// gateway can decrypt with, nor a signing key).
    /// </summary>
    private static ConfigError? SkippedFor(ReadOnlySpan<KeySet> sets1, ReadOnlySpan<KeySet> sets2, JsonElement kid)
    {
        for (int s = 0; s < sets1.Length + sets2.Length; s++)
        {
            KeySet set = s < sets1.Length ? sets1[s] : sets2[s - sets1.Length];
            foreach (SkippedKey skipped in set.Skipped)
            {
                if (skipped.ForEncryption && skipped.Reason != ConfigError.KeyForEncryption
                    && skipped.Kid is { } k && kid.ValueEquals(k))
                {
                    return skipped.Reason;
                }
            }
        }
        return null;
    }

    private static TokenError ReadHeader(JsonElement root, out JweAlgorithm alg, out JweEncryption enc,
        out bool contentIsJwt)
    {
        alg = default;
        enc = default;
        contentIsJwt = false;
        if (!root.TryGetProperty("alg"u8, out JsonElement algElement) || !root.TryGetProperty("enc"u8, out JsonElement encElement))
        {
            return TokenError.AlgUnsupported;
        }
        if (algElement.ValueKind == JsonValueKind.String && algElement.ValueEquals("none"u8))
        {
            return TokenError.AlgNone;
        }
        // RSA1_5 and PBES2 are not in the list: refused before any key is touched
        if (!JweAlgorithms.TryParse(algElement, out alg) || !JweAlgorithms.TryParse(encElement, out enc))
        {
            return TokenError.AlgUnsupported;
        }
        if (root.TryGetProperty("zip"u8, out _))
        {
            return TokenError.ZipUnsupported; // no inflate: a compression bomb has nowhere to go
        }
        if (root.TryGetProperty("crit"u8, out _))
        {
            return TokenError.CritUnsupported;
        }
        if (root.TryGetProperty("cty"u8, out JsonElement cty))
        {
            if (cty.ValueKind != JsonValueKind.String)
            {
                return TokenError.TokenMalformed;
            }
            string value = cty.GetString()!;
            contentIsJwt = value.Equals("JWT", StringComparison.OrdinalIgnoreCase)
                || value.Equals("application/jwt", StringComparison.OrdinalIgnoreCase);
        }
        return TokenError.None;
    }

    private static bool DecodePart(ReadOnlySpan<byte> encoded, ref Span<byte> scratch, int max,
        out ReadOnlySpan<byte> decoded)
    {
        decoded = default;
        if (max != int.MaxValue && Base64Url.GetMaxDecodedLength(encoded.Length) > max + 2)
        {
            return false;
        }
        if (!JwtVerifier.TryDecode(encoded, scratch, out int length) || length > max)
        {
            return false;
        }
        decoded = scratch[..length];
        scratch = scratch[length..];
        return true;
    }

    private enum KeyOutcome
    {
        Ok,
        /// <summary>The key-management step failed: the content step is skipped, the result is DecryptFailed.</summary>
        Failed,
        /// <summary>The key does not apply to this token (another curve).</summary>
        Unusable,
        /// <summary>Header parameters of the algorithm are missing or invalid.</summary>
        Malformed,
    }

    /// <summary>Derives or unwraps the content encryption key into <paramref name="cek"/>.</summary>
    private static KeyOutcome ContentKey(JweKey key, JweAlgorithm alg, JweEncryption enc, JsonElement header,
        ReadOnlySpan<byte> encryptedKey, Span<byte> cek)
    {
        switch (key)
        {
            case OctJweKey oct when alg == JweAlgorithm.Dir:
                oct.Key.CopyTo(cek);
                return KeyOutcome.Ok;

            case OctJweKey oct when alg is JweAlgorithm.A128KW or JweAlgorithm.A192KW or JweAlgorithm.A256KW:
                return AesKeyWrap.Unwrap(oct.Key, encryptedKey, cek) ? KeyOutcome.Ok : KeyOutcome.Failed;

            case OctJweKey oct:
                return GcmUnwrap(oct.Key, header, encryptedKey, cek);

            case RsaJweKey rsa:
                RsaUnwrap(rsa, alg, encryptedKey, cek);
                return KeyOutcome.Ok; // a failed unwrap left a random CEK: it fails at the tag

            case EcJweKey ec:
                return EcdhKey(ec, alg, enc, header, encryptedKey, cek);

            default:
                return KeyOutcome.Unusable;
        }
    }

    private static KeyOutcome GcmUnwrap(ReadOnlySpan<byte> kek, JsonElement header, ReadOnlySpan<byte> encryptedKey,
        Span<byte> cek)
    {
        Span<byte> iv = stackalloc byte[16];
        Span<byte> tag = stackalloc byte[20];
        if (!TryHeaderBytes(header, "iv"u8, iv, out int ivLength) || ivLength != 12
            || !TryHeaderBytes(header, "tag"u8, tag, out int tagLength) || tagLength != 16)
        {
            return KeyOutcome.Malformed;
        }
        if (encryptedKey.Length != cek.Length)
        {
            return KeyOutcome.Failed;
        }
        try
        {
            using var gcm = new AesGcm(kek, 16);
            gcm.Decrypt(iv[..12], encryptedKey, tag[..16], cek);
            return KeyOutcome.Ok;
        }
        catch (CryptographicException)
        {
            return KeyOutcome.Failed;
        }
    }

    private static void RsaUnwrap(RsaJweKey key, JweAlgorithm alg, ReadOnlySpan<byte> encryptedKey, Span<byte> cek)
    {
        // The random CEK first: whatever happens below, a wrong key, a bad
        // padding or a wrong length all end at the content tag.
        RandomNumberGenerator.Fill(cek);
        if (encryptedKey.Length != key.ModulusBytes)
        {
            return;
        }
        RSAEncryptionPadding padding = alg switch
        {
            JweAlgorithm.RsaOaep => RSAEncryptionPadding.OaepSHA1,
            JweAlgorithm.RsaOaep256 => RSAEncryptionPadding.OaepSHA256,
            JweAlgorithm.RsaOaep384 => RSAEncryptionPadding.OaepSHA384,
            _ => RSAEncryptionPadding.OaepSHA512,
        };
        byte[] buffer = ArrayPool<byte>.Shared.Rent(key.ModulusBytes);
        try
        {
            if (key.Rsa.TryDecrypt(encryptedKey, buffer, padding, out int written) && written == cek.Length)
            {
                buffer.AsSpan(0, written).CopyTo(cek);
            }
        }
        catch (CryptographicException)
        {
            // same outcome as a wrong key
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
        }
    }

    private static KeyOutcome EcdhKey(EcJweKey key, JweAlgorithm alg, JweEncryption enc, JsonElement header,
        ReadOnlySpan<byte> encryptedKey, Span<byte> cek)
    {
        if (!header.TryGetProperty("epk"u8, out JsonElement epk) || epk.ValueKind != JsonValueKind.Object
            || !epk.TryGetProperty("kty"u8, out JsonElement kty) || !kty.ValueEquals("EC"u8)
            || !epk.TryGetProperty("crv"u8, out JsonElement crv) || crv.ValueKind != JsonValueKind.String)
        {
            return KeyOutcome.Malformed;
        }
        if (!JweKeyLoader.TryCurve(crv, out KeyFamily family, out ECCurve curve))
        {
            return KeyOutcome.Malformed;
        }
        if (family != key.Family)
        {
            return KeyOutcome.Unusable;
        }
        int field = KeyBuilder.FieldBytes(family);
        Span<byte> x = stackalloc byte[72];
        Span<byte> y = stackalloc byte[72];
        if (!TryMemberBytes(epk, "x"u8, x, out int xLength) || xLength != field
            || !TryMemberBytes(epk, "y"u8, y, out int yLength) || yLength != field)
        {
            return KeyOutcome.Malformed;
        }

        byte[] apu = Array.Empty<byte>();
        byte[] apv = Array.Empty<byte>();
        if (!TryOptionalBytes(header, "apu"u8, ref apu) || !TryOptionalBytes(header, "apv"u8, ref apv))
        {
            return KeyOutcome.Malformed;
        }

        byte[] z;
        try
        {
            // OpenSSL refuses a point that is not on the curve (invalid-curve attacks)
            using ECDiffieHellman peer = ECDiffieHellman.Create(new ECParameters
            {
                Curve = curve,
                Q = new ECPoint { X = x[..field].ToArray(), Y = y[..field].ToArray() },
            });
            using ECDiffieHellmanPublicKey peerKey = peer.PublicKey;
            z = key.Ecdh.DeriveRawSecretAgreement(peerKey);
        }
        catch (CryptographicException)
        {
            return KeyOutcome.Malformed;
        }

        try
        {
            if (alg == JweAlgorithm.EcdhEs)
            {
                ConcatKdf.Derive(z, JweAlgorithms.Name(enc), apu, apv, cek);
                return KeyOutcome.Ok;
            }
            Span<byte> kek = stackalloc byte[32];
            kek = kek[..JweAlgorithms.WrapKeyLength(alg)];
            ConcatKdf.Derive(z, JweAlgorithms.Name(alg), apu, apv, kek);
            bool ok = AesKeyWrap.Unwrap(kek, encryptedKey, cek);
            CryptographicOperations.ZeroMemory(kek);
            return ok ? KeyOutcome.Ok : KeyOutcome.Failed;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(z);
        }
    }

    private static bool TryHeaderBytes(JsonElement header, ReadOnlySpan<byte> name, Span<byte> destination,
        out int length) => TryMemberBytes(header, name, destination, out length);

    private static bool TryMemberBytes(JsonElement obj, ReadOnlySpan<byte> name, Span<byte> destination,
        out int length)
    {
        length = 0;
        if (!obj.TryGetProperty(name, out JsonElement value) || value.ValueKind != JsonValueKind.String)
        {
            return false;
        }
        string text = value.GetString()!;
        if (Base64Url.GetMaxDecodedLength(text.Length) > destination.Length)
        {
            return false;
        }
        byte[] utf8 = System.Text.Encoding.ASCII.GetBytes(text);
        return JwtVerifier.TryDecode(utf8, destination, out length);
    }

    private static bool TryOptionalBytes(JsonElement header, ReadOnlySpan<byte> name, ref byte[] value)
    {
        if (!header.TryGetProperty(name, out JsonElement element))
        {
            return true;
        }
        if (element.ValueKind != JsonValueKind.String)
        {
            return false;
        }
        string text = element.GetString()!;
        if (text.Length > 1024)
        {
            return false;
        }
        byte[] buffer = new byte[Base64Url.GetMaxDecodedLength(text.Length)];
        if (!JwtVerifier.TryDecode(System.Text.Encoding.ASCII.GetBytes(text), buffer, out int length))
        {
            return false;
        }
        value = buffer[..length];
        return true;
    }

    /// <summary>
    /// Authenticated decryption of the content (RFC 7518 sections 5.2 and
    /// 5.3); the plaintext length, or -1 for any failure.
    /// </summary>
    internal static int DecryptContent(JweEncryption enc, ReadOnlySpan<byte> cek, ReadOnlySpan<byte> iv,
        ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, ReadOnlySpan<byte> aad, Span<byte> plaintext)
    {
        if (plaintext.Length < ciphertext.Length)
        {
            return -1;
        }
        if (JweAlgorithms.IsGcm(enc))
        {
            try
            {
                using var gcm = new AesGcm(cek, 16);
                gcm.Decrypt(iv, ciphertext, tag, plaintext[..ciphertext.Length], aad);
                return ciphertext.Length;
            }
            catch (CryptographicException)
            {
                plaintext[..ciphertext.Length].Clear();
                return -1;
            }
        }
        return CbcHmac.Decrypt(enc, cek, iv, ciphertext, tag, aad, plaintext);
    }

    /// <summary>AES_CBC_HMAC_SHA2 (RFC 7518 section 5.2).</summary>
    internal static class CbcHmac
    {
        public static int Decrypt(JweEncryption enc, ReadOnlySpan<byte> key, ReadOnlySpan<byte> iv,
            ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, ReadOnlySpan<byte> aad, Span<byte> plaintext)
        {
            int half = key.Length / 2;
            if (tag.Length != half || iv.Length != 16)
            {
                return -1;
            }
            ReadOnlySpan<byte> macKey = key[..half];
            ReadOnlySpan<byte> encKey = key[half..];
            HashAlgorithmName hash = enc switch
            {
                JweEncryption.A128CbcHs256 => HashAlgorithmName.SHA256,
                JweEncryption.A192CbcHs384 => HashAlgorithmName.SHA384,
                _ => HashAlgorithmName.SHA512,
            };

            // M = HMAC(MAC_KEY, A || IV || E || AL), T = the first half of M
            Span<byte> al = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(al, (ulong)aad.Length * 8);
            Span<byte> mac = stackalloc byte[64];
            using (IncrementalHash hmac = IncrementalHash.CreateHMAC(hash, macKey))
            {
                hmac.AppendData(aad);
                hmac.AppendData(iv);
                hmac.AppendData(ciphertext);
                hmac.AppendData(al);
                if (!hmac.TryGetHashAndReset(mac, out int written) || written != 2 * half)
                {
                    return -1;
                }
            }
            bool equal = CryptographicOperations.FixedTimeEquals(mac[..half], tag);
            CryptographicOperations.ZeroMemory(mac);
            if (!equal)
            {
                return -1;
            }

            try
            {
                using Aes aes = Aes.Create();
                aes.Key = encKey.ToArray();
                return aes.TryDecryptCbc(ciphertext, iv, plaintext, out int length, PaddingMode.PKCS7) ? length : -1;
            }
            catch (CryptographicException)
            {
                return -1; // bad padding under a valid tag: only the key holder can make one
            }
        }
    }
}

/// <summary>AES Key Wrap (RFC 3394), the unwrap direction; .NET 9 has none.</summary>
internal static class AesKeyWrap
{
    private const ulong DefaultIv = 0xA6A6A6A6A6A6A6A6;

    /// <summary>Unwraps <paramref name="wrapped"/> (n+1 64-bit blocks) into <paramref name="key"/> (n blocks).</summary>
    public static bool Unwrap(ReadOnlySpan<byte> kek, ReadOnlySpan<byte> wrapped, Span<byte> key)
    {
        int n = wrapped.Length / 8 - 1;
        if (wrapped.Length % 8 != 0 || n < 2 || key.Length != n * 8 || kek.Length is not (16 or 24 or 32))
        {
            return false;
        }

        using Aes aes = Aes.Create();
        aes.Key = kek.ToArray();
        ulong a = BinaryPrimitives.ReadUInt64BigEndian(wrapped);
        wrapped[8..].CopyTo(key);
        Span<byte> block = stackalloc byte[16];
        for (int j = 5; j >= 0; j--)
        {
            for (int i = n; i >= 1; i--)
            {
                ulong t = (ulong)(n * j + i);
                BinaryPrimitives.WriteUInt64BigEndian(block, a ^ t);
                key.Slice((i - 1) * 8, 8).CopyTo(block[8..]);
                aes.DecryptEcb(block, block, PaddingMode.None);
                a = BinaryPrimitives.ReadUInt64BigEndian(block);
                block[8..].CopyTo(key.Slice((i - 1) * 8, 8));
            }
        }
        CryptographicOperations.ZeroMemory(block);

        Span<byte> check = stackalloc byte[8];
        Span<byte> expected = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(check, a);
        BinaryPrimitives.WriteUInt64BigEndian(expected, DefaultIv);
        if (!CryptographicOperations.FixedTimeEquals(check, expected))
        {
            CryptographicOperations.ZeroMemory(key);
            return false;
        }
        return true;
    }

    /// <summary>The wrap direction (tests and tools produce tokens with it).</summary>
    public static byte[] Wrap(ReadOnlySpan<byte> kek, ReadOnlySpan<byte> key)
    {
        int n = key.Length / 8;
        using Aes aes = Aes.Create();
        aes.Key = kek.ToArray();
        ulong a = DefaultIv;
        byte[] r = key.ToArray();
        Span<byte> block = stackalloc byte[16];
        for (int j = 0; j <= 5; j++)
        {
            for (int i = 1; i <= n; i++)
            {
                BinaryPrimitives.WriteUInt64BigEndian(block, a);
                r.AsSpan((i - 1) * 8, 8).CopyTo(block[8..]);
                aes.EncryptEcb(block, block, PaddingMode.None);
                a = BinaryPrimitives.ReadUInt64BigEndian(block) ^ (ulong)(n * j + i);
                block[8..].CopyTo(r.AsSpan((i - 1) * 8, 8));
            }
        }
        byte[] result = new byte[8 + r.Length];
        BinaryPrimitives.WriteUInt64BigEndian(result, a);
        r.CopyTo(result, 8);
        return result;
    }
}

/// <summary>The Concat KDF of NIST SP 800-56A with SHA-256, as RFC 7518 section 4.6.2 uses it.</summary>
internal static class ConcatKdf
{
    public static void Derive(ReadOnlySpan<byte> z, ReadOnlySpan<byte> algorithmId, ReadOnlySpan<byte> apu,
        ReadOnlySpan<byte> apv, Span<byte> output)
    {
        Span<byte> digest = stackalloc byte[32];
        Span<byte> number = stackalloc byte[4];
        int done = 0;
        for (uint round = 1; done < output.Length; round++)
        {
            using IncrementalHash sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            BinaryPrimitives.WriteUInt32BigEndian(number, round);
            sha.AppendData(number);
            sha.AppendData(z);
            AppendLengthPrefixed(sha, algorithmId, number);
            AppendLengthPrefixed(sha, apu, number);
            AppendLengthPrefixed(sha, apv, number);
            BinaryPrimitives.WriteUInt32BigEndian(number, (uint)output.Length * 8); // SuppPubInfo: keydatalen
            sha.AppendData(number);
            sha.GetHashAndReset(digest);
            int take = Math.Min(32, output.Length - done);
            digest[..take].CopyTo(output[done..]);
            done += take;
        }
        CryptographicOperations.ZeroMemory(digest);
    }

    private static void AppendLengthPrefixed(IncrementalHash sha, ReadOnlySpan<byte> data, Span<byte> number)
    {
        BinaryPrimitives.WriteUInt32BigEndian(number, (uint)data.Length);
        sha.AppendData(number);
        sha.AppendData(data);
    }
}
