using System;
using System.Buffers.Text;
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Text;
using NginxOAuth.Core;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.Policy;

namespace NginxOAuth.Fuzz;

/// <summary>Compact JWE, what nox_jwt_verify_ex reads under auth_jwt_type encrypted and nested.</summary>
internal static class JweTargets
{
    /// <summary>A JWE as the client sends it: decryption alone, then the encrypted and nested policies.</summary>
    public static void Jwe(ReadOnlySpan<byte> input)
    {
        JweFixtures f = JweFixtures.Instance;
        var output = new byte[2 * input.Length];

        DecryptResult d = JweDecryptor.Decrypt(input, [f.Keys], ReadOnlySpan<KeySet>.Empty, output);
        Contract.Defined(d.Error);
        Contract.That(d.HeaderLength >= -1 && d.PlaintextLength >= -1, "negative length");
        Contract.That(d.HeaderLength + Math.Max(d.PlaintextLength, 0) <= input.Length,
            "header and plaintext longer than the token");
        Contract.That((d.Error == TokenError.None) == (d.PlaintextLength >= 0), "a plaintext exactly on success");

        foreach (VerificationPolicy policy in (ReadOnlySpan<VerificationPolicy>)[f.Encrypted, f.Nested])
        {
            VerifyResult r = JwtVerifier.Verify(policy, input, JwtFixtures.Now, ReadOnlySpan<KeySet>.Empty,
                new NoRuleValues(), output);
            Contract.Defined(r.Error);
            int total = Math.Max(r.HeaderLength, 0) + Math.Max(r.PayloadLength, 0) + Math.Max(r.InnerLength, 0);
            Contract.That(total <= output.Length, "decoded parts beyond the output buffer");
            if (r.PayloadLength >= 0)
            {
                Contract.That(JsonGuard.Check(output.AsSpan(r.HeaderLength, r.PayloadLength)) == JsonShape.Object,
                    "decoded payload is not a JSON object");
            }
            Contract.That(!r.IsValid || policy == f.Encrypted || r.InnerLength > 0, "a nested token without its JWS");
        }
    }
}

/// <summary>
/// Decryption keys of fixed value (so seeds made in one process decrypt in
/// another): a dir key and an A128KW key; plus an RSA and an EC key made
/// per process, whose paths run to the tag check.
/// </summary>
internal sealed class JweFixtures
{
    private static JweFixtures? _instance;

    public static JweFixtures Instance => _instance ??= new JweFixtures();

    public static readonly byte[] DirKey = Sequence(32);

    public static readonly byte[] WrapKey = Sequence(16);

    private JweFixtures()
    {
        using RSA rsa = RSA.Create(2048);
        RSAParameters p = rsa.ExportParameters(true);
        using ECDiffieHellman ec = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        ECParameters e = ec.ExportParameters(true);
        string jwks = "{\"keys\":["
            + "{\"kty\":\"oct\",\"kid\":\"dir\",\"use\":\"enc\",\"k\":\"" + B64(DirKey) + "\"},"
            + "{\"kty\":\"oct\",\"kid\":\"kw\",\"use\":\"enc\",\"alg\":\"A128KW\",\"k\":\"" + B64(WrapKey) + "\"},"
            + "{\"kty\":\"RSA\",\"kid\":\"rsa\",\"use\":\"enc\",\"n\":\"" + B64(p.Modulus!) + "\",\"e\":\""
            + B64(p.Exponent!) + "\",\"d\":\"" + B64(p.D!) + "\",\"p\":\"" + B64(p.P!) + "\",\"q\":\"" + B64(p.Q!)
            + "\",\"dp\":\"" + B64(p.DP!) + "\",\"dq\":\"" + B64(p.DQ!) + "\",\"qi\":\"" + B64(p.InverseQ!) + "\"},"
            + "{\"kty\":\"EC\",\"kid\":\"ec\",\"use\":\"enc\",\"crv\":\"P-256\",\"x\":\"" + B64(e.Q.X!) + "\",\"y\":\""
            + B64(e.Q.Y!) + "\",\"d\":\"" + B64(e.D!) + "\"}"
            + "]}";
        KeySetResult loaded = KeySetLoader.Load(Encoding.UTF8.GetBytes(jwks), KeySetFormat.Jwks);
        Keys = loaded.KeySet ?? throw new InvalidOperationException("JWE fixture keys: " + loaded.Error);

        Encrypted = new VerificationPolicy(validateExp: false, validateSignature: true, leewaySeconds: 0);
        Encrypted.AddKeySet(Keys);
        Encrypted.SetTokenType(JwtType.Encrypted);
        Nested = new VerificationPolicy(validateExp: true, validateSignature: true, leewaySeconds: 30);
        Nested.AddKeySet(Keys);
        Nested.AddKeySet(JwtFixtures.Instance.Rfc7515);
        Nested.SetTokenType(JwtType.Nested);
    }

    public KeySet Keys { get; }

    public VerificationPolicy Encrypted { get; }

    public VerificationPolicy Nested { get; }

    /// <summary>Valid tokens for the seeds: dir + A256GCM and A128KW + A128CBC-HS256, claims and nested.</summary>
    public static IEnumerable<string> SeedTokens()
    {
        string claims = "{\"sub\":\"alice\",\"iss\":\"joe\",\"exp\":1300819380}";
        yield return DirGcm("{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"dir\"}", claims);
        yield return DirGcm("{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"dir\",\"cty\":\"JWT\"}", Vectors.Rfc7515A1Token);
        yield return DirGcm("{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"zip\":\"DEF\"}", claims);
        yield return KwCbc("{\"alg\":\"A128KW\",\"enc\":\"A128CBC-HS256\",\"kid\":\"kw\"}", claims);
        yield return KwCbc("{\"alg\":\"A128KW\",\"enc\":\"A128CBC-HS256\",\"cty\":\"JWT\"}", Vectors.Rfc7515A3Token);
        yield return "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00iLCJraWQiOiJyc2EifQ.AAAA.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA";
    }

    private static string DirGcm(string header, string plaintext)
    {
        string h = B64(Encoding.UTF8.GetBytes(header));
        byte[] iv = Sequence(12);
        byte[] data = Encoding.UTF8.GetBytes(plaintext);
        byte[] ciphertext = new byte[data.Length];
        byte[] tag = new byte[16];
        using (var gcm = new AesGcm(DirKey, 16))
        {
            gcm.Encrypt(iv, data, ciphertext, tag, Encoding.ASCII.GetBytes(h));
        }
        return h + ".." + B64(iv) + "." + B64(ciphertext) + "." + B64(tag);
    }

    private static string KwCbc(string header, string plaintext)
    {
        string h = B64(Encoding.UTF8.GetBytes(header));
        byte[] cek = Sequence(32);
        byte[] iv = Sequence(16);
        using Aes aes = Aes.Create();
        aes.Key = cek[16..];
        byte[] ciphertext = aes.EncryptCbc(Encoding.UTF8.GetBytes(plaintext), iv, PaddingMode.PKCS7);
        byte[] aad = Encoding.ASCII.GetBytes(h);
        byte[] al = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(al, (ulong)aad.Length * 8);
        byte[] signed = [.. aad, .. iv, .. ciphertext, .. al];
        byte[] mac = HMACSHA256.HashData(cek[..16], signed);
        return h + "." + B64(AesKeyWrapForSeeds(WrapKey, cek)) + "." + B64(iv) + "." + B64(ciphertext) + "."
            + B64(mac[..16]);
    }

    // RFC 3394 wrap, for the seeds only (the core holds the unwrap)
    private static byte[] AesKeyWrapForSeeds(byte[] kek, byte[] key)
    {
        int n = key.Length / 8;
        using Aes aes = Aes.Create();
        aes.Key = kek;
        ulong a = 0xA6A6A6A6A6A6A6A6;
        byte[] r = (byte[])key.Clone();
        byte[] block = new byte[16];
        for (int j = 0; j <= 5; j++)
        {
            for (int i = 1; i <= n; i++)
            {
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(block, a);
                Array.Copy(r, (i - 1) * 8, block, 8, 8);
                block = aes.EncryptEcb(block, PaddingMode.None);
                a = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(block) ^ (ulong)(n * j + i);
                Array.Copy(block, 8, r, (i - 1) * 8, 8);
            }
        }
        byte[] result = new byte[8 + r.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(result, a);
        r.CopyTo(result, 8);
        return result;
    }

    private static byte[] Sequence(int length)
    {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)(i * 7 + 1);
        }
        return bytes;
    }

    private static string B64(byte[] data) => Base64Url.EncodeToString(data);
}
