using System;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.Policy;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>
/// auth_jwt_type encrypted and nested through the whole verifier: claims
/// and rules on the decrypted payload, the inner JWS's signature, the
/// output layout (header, payload, inner JWS), and tokens of the wrong type.
/// Nested tokens come from Microsoft.IdentityModel (an independent producer).
/// </summary>
public sealed class JweVerifierTests
{
    private static readonly RSA Signer = RSA.Create(2048);
    private static readonly RSA Decrypter = RSA.Create(2048);
    private static readonly byte[] DirKey = RandomNumberGenerator.GetBytes(32);

    private static string SignedJws(string payloadJson) =>
        T.Token("{\"alg\":\"RS256\",\"kid\":\"sig\"}", payloadJson, T.Rsa(Signer, JwsAlgorithm.RS256));

    private static KeySet Keys()
    {
        RSAParameters p = Decrypter.ExportParameters(true);
        string enc = "{\"kty\":\"RSA\",\"kid\":\"enc\",\"use\":\"enc\",\"n\":\"" + T.B64(p.Modulus!) + "\",\"e\":\""
            + T.B64(p.Exponent!) + "\",\"d\":\"" + T.B64(p.D!) + "\",\"p\":\"" + T.B64(p.P!) + "\",\"q\":\""
            + T.B64(p.Q!) + "\",\"dp\":\"" + T.B64(p.DP!) + "\",\"dq\":\"" + T.B64(p.DQ!) + "\",\"qi\":\""
            + T.B64(p.InverseQ!) + "\"}";
        string dir = "{\"kty\":\"oct\",\"kid\":\"dir\",\"use\":\"enc\",\"k\":\"" + T.B64(DirKey) + "\"}";
        return T.Keys("{\"keys\":[" + T.RsaJwk(Signer, "sig") + "," + enc + "," + dir + "]}");
    }

    private static string DirGcm(string plaintext, string? cty = null)
    {
        string header = T.B64("{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"dir\""
            + (cty is null ? "" : ",\"cty\":\"" + cty + "\"") + "}");
        byte[] iv = RandomNumberGenerator.GetBytes(12);
        byte[] data = Encoding.UTF8.GetBytes(plaintext);
        byte[] ciphertext = new byte[data.Length];
        byte[] tag = new byte[16];
        using (var gcm = new AesGcm(DirKey, 16))
        {
            gcm.Encrypt(iv, data, ciphertext, tag, Encoding.ASCII.GetBytes(header));
        }
        return header + ".." + T.B64(iv) + "." + T.B64(ciphertext) + "." + T.B64(tag);
    }

    private static VerificationPolicy Policy(KeySet keys, JwtType type)
    {
        VerificationPolicy policy = T.Policy(keys);
        policy.SetTokenType(type);
        return policy;
    }

    private static (VerifyResult Result, string Header, string Payload, string Inner) Run(VerificationPolicy policy,
        string token)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(token);
        byte[] output = new byte[JwtVerifier.OutputCapacity(policy, bytes.Length)];
        VerifyResult result = JwtVerifier.Verify(policy, bytes, T.Now, ReadOnlySpan<KeySet>.Empty,
            new NoRuleValues(), output);
        string header = result.HeaderLength < 0 ? "" : Encoding.UTF8.GetString(output, 0, result.HeaderLength);
        string payload = result.PayloadLength < 0 ? ""
            : Encoding.UTF8.GetString(output, result.HeaderLength, result.PayloadLength);
        string inner = result.InnerLength < 0 ? ""
            : Encoding.UTF8.GetString(output, result.HeaderLength + result.PayloadLength, result.InnerLength);
        return (result, header, payload, inner);
    }

    private static string Claims(string sub) => "{\"sub\":\"" + sub + "\",\"exp\":" + (T.Now + 600) + "}";

    [Test]
    public void Encrypted_token_passes_with_the_JWE_header_and_the_plaintext_claims()
    {
        using KeySet keys = Keys();
        var (result, header, payload, inner) = Run(Policy(keys, JwtType.Encrypted), DirGcm(Claims("alice")));

        Assert.That(result.Error, Is.EqualTo(TokenError.None));
        Assert.That(header, Does.Contain("\"alg\":\"dir\""));
        Assert.That(payload, Is.EqualTo(Claims("alice")));
        Assert.That(inner, Is.Empty);
    }

    [Test]
    public void Encrypted_token_runs_claim_rules_and_time_checks()
    {
        using KeySet keys = Keys();
        VerificationPolicy policy = Policy(keys, JwtType.Encrypted);
        Assert.That(policy.AddRule(RuleTarget.Claim, "sub"u8, RuleOperator.Eq, RuleValueKind.String, "alice"u8),
            Is.EqualTo(ConfigError.None));

        Assert.That(Run(policy, DirGcm(Claims("alice"))).Result.Error, Is.EqualTo(TokenError.None));
        Assert.That(Run(policy, DirGcm(Claims("bob"))).Result.Error, Is.EqualTo(TokenError.ClaimFailed));
        Assert.That(Run(policy, DirGcm("{\"sub\":\"alice\",\"exp\":1}")).Result.Error, Is.EqualTo(TokenError.Expired));
        Assert.That(Run(policy, DirGcm("not json")).Result.Error, Is.EqualTo(TokenError.TokenMalformed));
    }

    [Test]
    public void Nested_token_by_IdentityModel_is_decrypted_then_its_signature_verified()
    {
        using KeySet keys = Keys();
        var descriptor = new SecurityTokenDescriptor
        {
            Claims = new System.Collections.Generic.Dictionary<string, object> { ["sub"] = "carol", ["exp"] = T.Now + 600 },
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(Signer) { KeyId = "sig" }, "RS256"),
            EncryptingCredentials = new EncryptingCredentials(
                new RsaSecurityKey(Decrypter.ExportParameters(false)) { KeyId = "enc" }, SecurityAlgorithms.RsaOAEP,
                SecurityAlgorithms.Aes256CbcHmacSha512),
        };
        string jwe = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);

        var (result, header, payload, inner) = Run(Policy(keys, JwtType.Nested), jwe);

        Assert.That(result.Error, Is.EqualTo(TokenError.None));
        Assert.That(header, Does.Contain("\"alg\":\"RS256\""), "the inner header");
        Assert.That(payload, Does.Contain("\"sub\":\"carol\""));
        Assert.That(inner.Split('.'), Has.Length.EqualTo(3), "the inner JWS follows");
        Assert.That(JwtVerifier.VerifySignature(Encoding.ASCII.GetBytes(inner), [keys]), Is.EqualTo(TokenError.None));
    }

    [Test]
    public void Nested_token_with_a_forged_inner_signature_is_bad_signature()
    {
        using KeySet keys = Keys();
        using RSA forger = RSA.Create(2048);
        string jws = T.Token("{\"alg\":\"RS256\",\"kid\":\"sig\"}", Claims("mallory"), T.Rsa(forger, JwsAlgorithm.RS256));
        Assert.That(Run(Policy(keys, JwtType.Nested), DirGcm(jws, "JWT")).Result.Error,
            Is.EqualTo(TokenError.BadSignature));
    }

    [Test]
    public void Nested_token_with_an_inner_alg_none_is_refused()
    {
        using KeySet keys = Keys();
        string none = T.B64("{\"alg\":\"none\"}") + "." + T.B64(Claims("eve")) + ".";
        Assert.That(Run(Policy(keys, JwtType.Nested), DirGcm(none, "JWT")).Result.Error, Is.EqualTo(TokenError.AlgNone));
    }

    [Test]
    public void Tokens_of_another_type_are_refused()
    {
        using KeySet keys = Keys();
        string jws = SignedJws(Claims("dave"));

        Assert.That(Run(Policy(keys, JwtType.Signed), jws).Result.Error, Is.EqualTo(TokenError.None));
        Assert.That(Run(Policy(keys, JwtType.Signed), DirGcm(Claims("dave"))).Result.Error,
            Is.EqualTo(TokenError.TokenMalformed));
        Assert.That(Run(Policy(keys, JwtType.Encrypted), jws).Result.Error, Is.EqualTo(TokenError.TypeMismatch));
        Assert.That(Run(Policy(keys, JwtType.Nested), jws).Result.Error, Is.EqualTo(TokenError.TypeMismatch));
        Assert.That(Run(Policy(keys, JwtType.Nested), DirGcm(jws)).Result.Error, Is.EqualTo(TokenError.TypeMismatch),
            "no cty JWT");
        Assert.That(Run(Policy(keys, JwtType.Nested), DirGcm(jws, "JWT")).Result.Error, Is.EqualTo(TokenError.None));
    }

    [Test]
    public void A_decrypted_payload_is_checked_again_on_a_cache_hit_by_CheckDecoded()
    {
        using KeySet keys = Keys();
        VerificationPolicy policy = Policy(keys, JwtType.Encrypted);
        var (result, header, payload, _) = Run(policy, DirGcm(Claims("erin")));
        Assert.That(result.Error, Is.EqualTo(TokenError.None));

        VerifyResult again = JwtVerifier.CheckDecoded(policy, Encoding.UTF8.GetBytes(header),
            Encoding.UTF8.GetBytes(payload), T.Now, new NoRuleValues());
        Assert.That(again.Error, Is.EqualTo(TokenError.None));
    }

    [Test]
    public void Decryption_keys_from_keyval_PEM_private_keys()
    {
        string keyval = "{\"enc\":" + System.Text.Json.JsonSerializer.Serialize(Decrypter.ExportPkcs8PrivateKeyPem())
            + ",\"sig\":" + System.Text.Json.JsonSerializer.Serialize(Signer.ExportSubjectPublicKeyInfoPem()) + "}";
        using KeySet keys = T.Keys(keyval, KeySetFormat.KeyVal);
        Assert.That(keys.Count, Is.EqualTo(1));
        Assert.That(keys.DecryptionKeys.Length, Is.EqualTo(1));

        byte[] cek = RandomNumberGenerator.GetBytes(32);
        string header = T.B64("{\"alg\":\"RSA-OAEP-512\",\"enc\":\"A256GCM\",\"kid\":\"enc\",\"cty\":\"JWT\"}");
        byte[] iv = RandomNumberGenerator.GetBytes(12);
        byte[] plain = Encoding.ASCII.GetBytes(SignedJws(Claims("frank")));
        byte[] ciphertext = new byte[plain.Length];
        byte[] tag = new byte[16];
        using (var gcm = new AesGcm(cek, 16))
        {
            gcm.Encrypt(iv, plain, ciphertext, tag, Encoding.ASCII.GetBytes(header));
        }
        string jwe = header + "." + T.B64(Decrypter.Encrypt(cek, RSAEncryptionPadding.OaepSHA512)) + "."
            + T.B64(iv) + "." + T.B64(ciphertext) + "." + T.B64(tag);

        Assert.That(Run(Policy(keys, JwtType.Nested), jwe).Result.Error, Is.EqualTo(TokenError.None));
    }
}
