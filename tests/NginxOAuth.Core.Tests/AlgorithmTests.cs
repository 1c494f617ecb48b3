using System;
using System.Collections.Generic;
using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using NginxOAuth.Core.Keys;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>Every algorithm round-trips, and keys never cross families.</summary>
public sealed class AlgorithmTests
{
    private const string Payload = "{\"sub\":\"alice\",\"exp\":2000000000}";

    /// <summary>A key set and a signer for one algorithm.</summary>
    private sealed class Signer : IDisposable
    {
        public required string Jwk { get; init; }

        public required Func<byte[], byte[]> Sign { get; init; }

        public IDisposable? Owner { get; init; }

        public void Dispose() => Owner?.Dispose();
    }

    private static Signer For(JwsAlgorithm alg)
    {
        switch (alg)
        {
            case JwsAlgorithm.HS256:
            case JwsAlgorithm.HS384:
            case JwsAlgorithm.HS512:
                return new Signer { Jwk = T.OctJwk(T.HmacSecret), Sign = T.Hmac(alg, T.HmacSecret) };
            case JwsAlgorithm.RS256:
            case JwsAlgorithm.RS384:
            case JwsAlgorithm.RS512:
            case JwsAlgorithm.PS256:
            case JwsAlgorithm.PS384:
            case JwsAlgorithm.PS512:
                RSA rsa = RSA.Create(2048);
                return new Signer { Jwk = T.RsaJwk(rsa), Sign = T.Rsa(rsa, alg), Owner = rsa };
            case JwsAlgorithm.EdDSA:
                var ed = new EdKey(false);
                return new Signer { Jwk = ed.Jwk(), Sign = ed.Sign, Owner = ed };
            default:
                string crv = alg switch
                {
                    JwsAlgorithm.ES256 => "P-256",
                    JwsAlgorithm.ES384 => "P-384",
                    JwsAlgorithm.ES512 => "P-521",
                    _ => "secp256k1",
                };
                ECDsa ec = T.NewEc(crv);
                return new Signer { Jwk = T.EcJwk(ec, crv), Sign = T.Ec(ec, alg), Owner = ec };
        }
    }

    private static IEnumerable<JwsAlgorithm> All() => Enum.GetValues<JwsAlgorithm>();

    [TestCaseSource(nameof(All))]
    public void Token_signed_with_the_algorithm_verifies(JwsAlgorithm alg)
    {
        using Signer signer = For(alg);
        using KeySet keys = T.Keys(T.Jwks(signer.Jwk));
        string token = T.Token("{\"alg\":\"" + alg + "\"}", Payload, signer.Sign);
        Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.None));
    }

    [TestCaseSource(nameof(All))]
    public void Token_with_a_changed_payload_is_a_bad_signature(JwsAlgorithm alg)
    {
        using Signer signer = For(alg);
        using KeySet keys = T.Keys(T.Jwks(signer.Jwk));
        string token = T.Token("{\"alg\":\"" + alg + "\"}", Payload, signer.Sign);
        string[] parts = token.Split('.');
        string forged = parts[0] + "." + T.B64("{\"sub\":\"admin\",\"exp\":2000000000}") + "." + parts[2];
        Assert.That(T.VerifyError(T.Policy(keys), forged), Is.EqualTo(TokenError.BadSignature));
    }

    [TestCaseSource(nameof(All))]
    public void Token_with_a_truncated_signature_is_a_bad_signature(JwsAlgorithm alg)
    {
        using Signer signer = For(alg);
        using KeySet keys = T.Keys(T.Jwks(signer.Jwk));
        string token = T.Token("{\"alg\":\"" + alg + "\"}", Payload, data => signer.Sign(data)[..^1]);
        Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.BadSignature));
    }

    [TestCaseSource(nameof(All))]
    public void Key_verifies_many_tokens_in_turn_with_forgeries_in_between(JwsAlgorithm alg)
    {
        // RSA/ECDSA keep one OpenSSL context per key and algorithm across
        // calls: a rejection must leave it usable, and never make it accept.
        using Signer signer = For(alg);
        using KeySet keys = T.Keys(T.Jwks(signer.Jwk));
        var policy = T.Policy(keys);
        for (int i = 0; i < 40; i++)
        {
            string payload = "{\"sub\":\"user-" + i + "\",\"exp\":2000000000}";
            string token = T.Token("{\"alg\":\"" + alg + "\"}", payload, signer.Sign);
            string[] parts = token.Split('.');
            string forged = parts[0] + "." + T.B64("{\"sub\":\"admin-" + i + "\",\"exp\":2000000000}") + "." + parts[2];
            Assert.That(T.VerifyError(policy, forged), Is.EqualTo(TokenError.BadSignature), $"forgery {i}");
            Assert.That(T.VerifyError(policy, token), Is.EqualTo(TokenError.None), $"token {i}");
        }
    }

    [TestCase(JwsAlgorithm.RS256)]
    [TestCase(JwsAlgorithm.PS384)]
    [TestCase(JwsAlgorithm.ES256)]
    [TestCase(JwsAlgorithm.ES512)]
    [TestCase(JwsAlgorithm.EdDSA)]
    public void Key_verifies_from_many_threads_at_once(JwsAlgorithm alg)
    {
        using Signer signer = For(alg);
        using KeySet keys = T.Keys(T.Jwks(signer.Jwk));
        var policy = T.Policy(keys);
        string[] tokens = new string[64];
        string[] forged = new string[64];
        for (int i = 0; i < tokens.Length; i++)
        {
            tokens[i] = T.Token("{\"alg\":\"" + alg + "\"}", "{\"sub\":\"u" + i + "\",\"exp\":2000000000}", signer.Sign);
            string[] parts = tokens[i].Split('.');
            forged[i] = parts[0] + "." + T.B64("{\"sub\":\"x" + i + "\",\"exp\":2000000000}") + "." + parts[2];
        }

        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        System.Threading.Tasks.Parallel.For(0, 512, new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            int k = i % tokens.Length;
            if (T.VerifyError(policy, tokens[k]) != TokenError.None)
            {
                errors.Add("token " + k);
            }
            if (T.VerifyError(policy, forged[k]) != TokenError.BadSignature)
            {
                errors.Add("forgery " + k);
            }
        });
        Assert.That(errors, Is.Empty);
    }

    [TestCase("P-256", 32)]
    [TestCase("P-384", 48)]
    [TestCase("P-521", 66)]
    public void Raw_ECDSA_signatures_become_the_DER_form_OpenSSL_verifies(string curve, int field)
    {
        // DER INTEGERs drop leading zero bytes and add one before a high bit;
        // P-521 sequences need a two-byte length. .NET checks the encoding.
        using ECDsa ec = T.NewEc(curve);
        byte[] hash = SHA512.HashData("signing input"u8)[..Math.Min(64, field)];
        Span<byte> der = stackalloc byte[2 * field + 16];
        for (int i = 0; i < 200; i++)
        {
            byte[] raw = ec.SignHash(hash, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
            int length = EcJwsKey.EncodeDerSignature(raw.AsSpan(0, field), raw.AsSpan(field), der);
            Assert.That(ec.VerifyHash(hash, der[..length], DSASignatureFormat.Rfc3279DerSequence), Is.True, $"signature {i}");
        }

        byte[] small = new byte[2 * field];
        small[field - 1] = 0x80; // r = 128: one byte after a zero pad
        small[^1] = 1;           // s = 1
        int n = EcJwsKey.EncodeDerSignature(small.AsSpan(0, field), small.AsSpan(field), der);
        Assert.That(der[..n].ToArray(), Is.EqualTo(new byte[] { 0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x01 }));
    }

    [Test]
    public void Ed448_token_verifies()
    {
        using var ed = new EdKey(true);
        using KeySet keys = T.Keys(T.Jwks(ed.Jwk()));
        string token = T.Token("{\"alg\":\"EdDSA\"}", Payload, ed.Sign);
        Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.None));
    }

    [Test]
    public void Ed25519_key_does_not_verify_an_Ed448_signature()
    {
        using var ed448 = new EdKey(true);
        using var ed25519 = new EdKey(false);
        using KeySet keys = T.Keys(T.Jwks(ed25519.Jwk()));
        string token = T.Token("{\"alg\":\"EdDSA\"}", Payload, ed448.Sign);
        Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.BadSignature));
    }

    [Test]
    public void HS256_token_keyed_with_RSA_public_key_material_finds_no_key()
    {
        using RSA rsa = RSA.Create(2048);
        using KeySet keys = T.Keys(T.Jwks(T.RsaJwk(rsa)));
        byte[] publicKeyAsSecret = T.U(rsa.ExportSubjectPublicKeyInfoPem());
        string token = T.Token("{\"alg\":\"HS256\"}", Payload, T.Hmac(JwsAlgorithm.HS256, publicKeyAsSecret));
        Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.KeyNotFound));
    }

    [TestCase("ES256", "P-384", TestName = "ES256_token_with_only_a_P384_key_finds_no_key")]
    [TestCase("ES256K", "P-256", TestName = "ES256K_token_with_only_a_P256_key_finds_no_key")]
    [TestCase("ES256", "secp256k1", TestName = "ES256_token_with_only_a_secp256k1_key_finds_no_key")]
    public void EC_algorithm_needs_its_own_curve(string alg, string crv)
    {
        using ECDsa ec = T.NewEc(crv);
        using KeySet keys = T.Keys(T.Jwks(T.EcJwk(ec, crv)));
        string token = T.Token("{\"alg\":\"" + alg + "\"}", Payload, d => ec.SignData(d, HashAlgorithmName.SHA256));
        Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.KeyNotFound));
    }

    [Test]
    public void Pinned_RS256_key_does_not_verify_PS256()
    {
        using RSA rsa = RSA.Create(2048);
        using KeySet keys = T.Keys(T.Jwks(T.RsaJwk(rsa, alg: "RS256")));
        string token = T.Token("{\"alg\":\"PS256\"}", Payload, T.Rsa(rsa, JwsAlgorithm.PS256));
        Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.KeyNotFound));
    }

    [Test]
    public void Pinned_HS256_key_does_not_verify_HS512()
    {
        using KeySet keys = T.Keys(T.Jwks(T.OctJwk(T.HmacSecret, alg: "HS256")));
        string token = T.Token("{\"alg\":\"HS512\"}", Payload, T.Hmac(JwsAlgorithm.HS512, T.HmacSecret));
        Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.KeyNotFound));
    }

    [Test]
    public void HS512_never_uses_a_key_shorter_than_64_bytes()
    {
        byte[] secret = T.HmacSecret[..48];
        using KeySet keys = T.Keys(T.Jwks(T.OctJwk(secret)));
        string hs512 = T.Token("{\"alg\":\"HS512\"}", Payload, T.Hmac(JwsAlgorithm.HS512, secret));
        string hs384 = T.Token("{\"alg\":\"HS384\"}", Payload, T.Hmac(JwsAlgorithm.HS384, secret));
        Assert.That(T.VerifyError(T.Policy(keys), hs512), Is.EqualTo(TokenError.KeyNotFound));
        Assert.That(T.VerifyError(T.Policy(keys), hs384), Is.EqualTo(TokenError.None));
    }

    // ---- an independent producer: Microsoft.IdentityModel.JsonWebTokens ----

    private static IEnumerable<TestCaseData> IdentityModelCases()
    {
        yield return new TestCaseData(SecurityAlgorithms.RsaSha256).SetName("IdentityModel_RS256_token_verifies");
        yield return new TestCaseData(SecurityAlgorithms.RsaSsaPssSha256).SetName("IdentityModel_PS256_token_verifies");
        yield return new TestCaseData(SecurityAlgorithms.RsaSha512).SetName("IdentityModel_RS512_token_verifies");
        yield return new TestCaseData(SecurityAlgorithms.EcdsaSha256).SetName("IdentityModel_ES256_token_verifies");
        yield return new TestCaseData(SecurityAlgorithms.EcdsaSha384).SetName("IdentityModel_ES384_token_verifies");
        yield return new TestCaseData(SecurityAlgorithms.HmacSha256).SetName("IdentityModel_HS256_token_verifies");
        yield return new TestCaseData(SecurityAlgorithms.HmacSha512).SetName("IdentityModel_HS512_token_verifies");
    }

    [TestCaseSource(nameof(IdentityModelCases))]
    public void Token_from_IdentityModel_verifies(string algorithm)
    {
        SecurityKey key;
        string jwk;
        IDisposable? owner = null;
        if (algorithm.StartsWith("HS", StringComparison.Ordinal))
        {
            key = new SymmetricSecurityKey(T.HmacSecret) { KeyId = "k1" };
            jwk = T.OctJwk(T.HmacSecret, "k1");
        }
        else if (algorithm.StartsWith("ES", StringComparison.Ordinal))
        {
            string crv = algorithm == SecurityAlgorithms.EcdsaSha256 ? "P-256" : "P-384";
            ECDsa ec = T.NewEc(crv);
            owner = ec;
            key = new ECDsaSecurityKey(ec) { KeyId = "k1" };
            jwk = T.EcJwk(ec, crv, "k1");
        }
        else
        {
            RSA rsa = RSA.Create(2048);
            owner = rsa;
            key = new RsaSecurityKey(rsa) { KeyId = "k1" };
            jwk = T.RsaJwk(rsa, "k1");
        }

        using (owner)
        {
            var descriptor = new SecurityTokenDescriptor
            {
                Issuer = "https://idp.example",
                Claims = new Dictionary<string, object> { ["sub"] = "alice", ["groups"] = new[] { "a", "b" } },
                IssuedAt = DateTimeOffset.FromUnixTimeSeconds(T.Now - 10).UtcDateTime,
                NotBefore = DateTimeOffset.FromUnixTimeSeconds(T.Now - 10).UtcDateTime,
                Expires = DateTimeOffset.FromUnixTimeSeconds(T.Now + 3600).UtcDateTime,
                SigningCredentials = new SigningCredentials(key, algorithm),
            };
            string token = new JsonWebTokenHandler().CreateToken(descriptor);
            using KeySet keys = T.Keys(T.Jwks(jwk));
            Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.None));
            Assert.That(T.VerifyError(T.Policy(keys), token, T.Now + 3600), Is.EqualTo(TokenError.Expired));
        }
    }
}
