using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using Microsoft.IdentityModel.Tokens;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// auth_jwt_type encrypted and nested (JWE), $jwt_payload and the
/// verified-token cache over JWE. Tokens come from Microsoft.IdentityModel's
/// JsonWebTokenHandler where it can make them (RSA-OAEP*, A*KW with
/// A*CBC-HS*; nested JWS-in-JWE) and from JweFactory for AES-GCM content.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class JweTests : NginxFixture
{
    private static readonly SigningKey Signer = AlgVariant.Get("RS256").Key(7);
    private static readonly SigningKey FetchedSigner = AlgVariant.Get("ES256").Key(7);
    private static readonly RSA EncRsa = RSA.Create(2048);
    private static readonly RSA OtherRsa = RSA.Create(2048);
    private static readonly byte[] DirKey = RandomNumberGenerator.GetBytes(32);
    private static readonly byte[] WrapKey = RandomNumberGenerator.GetBytes(32);

    private string _debugLog = "";

    protected override Task StartNginx(NginxInstance nginx)
    {
        _debugLog = Path.Combine(nginx.Directory, "jwe-debug.log");
        nginx.WriteFile("keys.jwks", TokenFactory.Jwks(
            Signer.Jwk(),
            JweFactory.PrivateRsaJwk(EncRsa, "enc-rsa"),
            JweFactory.OctJwk(DirKey, "enc-dir"),
            JweFactory.OctJwk(WrapKey, "enc-kw")));
        Directory.CreateDirectory(Path.Combine(nginx.Directory, "fetched"));
        nginx.WriteFile("fetched/sign.jwks", TokenFactory.Jwks(FetchedSigner));
        nginx.WriteFile("keyval.json", TokenFactory.Json(new JsonObject
        {
            ["enc-pem"] = EncRsa.ExportPkcs8PrivateKeyPem(),
            [Signer.Kid] = Signer.PublicPem(),
        }));
        string echo = nginx.Echo("sub=$jwt_claim_sub alg=$jwt_header_alg enc=$jwt_header_enc role=$jwt_claim_role "
            + "tier=$jwe_tier typ=$jwe_typ payload=$jwt_payload");
        nginx.Start($$"""
            auth_jwt_claim_set $jwe_tier https://example.com/claims tier;
            auth_jwt_header_set $jwe_typ typ;

            server {
                listen 127.0.0.1:{{nginx.Port}};
                large_client_header_buffers 4 64k;
                auth_jwt "jwe";
                auth_jwt_key_file keys.jwks;

                location /signed { {{echo}} }
                location /encrypted { auth_jwt_type encrypted; {{echo}} }
                location /nested { auth_jwt_type nested; {{echo}} }
                location /encrypted-admin {
                    auth_jwt_type encrypted;
                    auth_jwt_require_claim role eq admin;
                    {{echo}}
                }
                location /keyval {
                    auth_jwt_type nested;
                    auth_jwt_key_file keyval.json keyval;
                    {{echo}}
                }
                location /nested-fetched {
                    auth_jwt_type nested;
                    auth_jwt_key_request /_keys/sign.jwks;
                    {{echo}}
                }
                location /_keys/ {
                    internal;
                    auth_jwt off;
                    alias {{Path.Combine(nginx.Directory, "fetched")}}/;
                }
                location /cached {
                    auth_jwt_type nested;
                    auth_jwt_verify_cache zone=jwe:1m;
                    error_log {{_debugLog}} debug;
                    {{echo}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    private static JsonObject Claims(string sub, string? role = null) =>
        TokenFactory.Claims(sub, role is null ? null : new JsonObject { ["role"] = role });

    private static RsaSecurityKey EncKey => new(EncRsa.ExportParameters(false)) { KeyId = "enc-rsa" };

    private static string Field(HttpReply reply, string name) =>
        reply.Body.Split(' ').Single(f => f.StartsWith(name + "=", StringComparison.Ordinal))[(name.Length + 1)..];

    [TestCase(SecurityAlgorithms.RsaOAEP, SecurityAlgorithms.Aes256CbcHmacSha512)]
    [TestCase(SecurityAlgorithms.RsaOAEP, SecurityAlgorithms.Aes128CbcHmacSha256)]
    [TestCase(SecurityAlgorithms.RsaOAEP, SecurityAlgorithms.Aes192CbcHmacSha384)]
    public async Task Encrypted_token_by_IdentityModel_passes_with_its_claims(string alg, string enc)
    {
        string token = JweFactory.Encrypted(Claims("enc-user", "dev"), EncKey, alg, enc);

        HttpReply reply = await Nginx.GetAsync("/encrypted", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(Field(reply, "sub"), Is.EqualTo("enc-user"));
        Assert.That(Field(reply, "alg"), Is.EqualTo(alg));
        Assert.That(Field(reply, "enc"), Is.EqualTo(enc));
        Assert.That(reply.Body, Does.Contain("payload={\"sub\":\"enc-user\""), "$jwt_payload is the plaintext");
    }

    [Test]
    public async Task Encrypted_token_with_AES_key_wrap_passes()
    {
        var key = new SymmetricSecurityKey(WrapKey) { KeyId = "enc-kw" };
        string token = JweFactory.Encrypted(Claims("kw-user"), key, SecurityAlgorithms.Aes256KW,
            SecurityAlgorithms.Aes128CbcHmacSha256);

        HttpReply reply = await Nginx.GetAsync("/encrypted", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(Field(reply, "sub"), Is.EqualTo("kw-user"));
    }

    [Test]
    public async Task Encrypted_token_with_dir_and_A256GCM_passes()
    {
        string token = JweFactory.DirGcm(DirKey, "enc-dir", TokenFactory.Json(Claims("dir-user")));

        HttpReply reply = await Nginx.GetAsync("/encrypted", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(Field(reply, "sub"), Is.EqualTo("dir-user"));
        Assert.That(Field(reply, "enc"), Is.EqualTo("A256GCM"));
    }

    [Test]
    public async Task Nested_token_by_IdentityModel_is_decrypted_then_verified()
    {
        string jwe = JweFactory.Nested(Signer, Claims("nested-user", "admin"), EncKey, SecurityAlgorithms.RsaOAEP,
            SecurityAlgorithms.Aes256CbcHmacSha512);
        Assert.That(JweFactory.HeaderJson(jwe), Does.Contain("\"cty\":\"JWT\""));

        HttpReply reply = await Nginx.GetAsync("/nested", jwe);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(Field(reply, "sub"), Is.EqualTo("nested-user"));
        Assert.That(Field(reply, "role"), Is.EqualTo("admin"));
        Assert.That(Field(reply, "alg"), Is.EqualTo("RS256"), "header variables are the inner JWS's");
        string inner = Field(reply, "payload");
        Assert.That(inner.Split('.'), Has.Length.EqualTo(3), "$jwt_payload is the inner JWS");
        Assert.That(inner, Does.StartWith(TokenFactory.Sign(Signer, Claims("x")).Split('.')[0]));
    }

    [Test]
    public async Task Multi_name_claim_and_header_paths_read_the_inner_token()
    {
        JsonObject claims = Claims("path-user");
        claims["https://example.com/claims"] = new JsonObject { ["tier"] = "gold" };
        string jws = TokenFactory.Sign(Signer, claims);
        string jwe = JweFactory.RsaOaep256Gcm(EncRsa, "enc-rsa", jws, cty: "JWT");

        HttpReply reply = await Nginx.GetAsync("/nested", jwe);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(Field(reply, "tier"), Is.EqualTo("gold"));
        Assert.That(Field(reply, "typ"), Is.EqualTo("JWT"), "the inner JWS header's typ");
    }

    [Test]
    public async Task Nested_token_with_RSA_OAEP_256_and_A256GCM_passes()
    {
        string jws = TokenFactory.Sign(Signer, Claims("gcm-nested"));
        string jwe = JweFactory.RsaOaep256Gcm(EncRsa, "enc-rsa", jws, cty: "JWT");

        HttpReply reply = await Nginx.GetAsync("/nested", jwe);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(Field(reply, "payload"), Is.EqualTo(jws));
    }

    [Test]
    public async Task Nested_token_with_signing_keys_from_a_key_request_passes()
    {
        // the decryption key comes from the inherited key file, the signing
        // key from the key request: a five-part token reaches the key request
        string jws = TokenFactory.Sign(FetchedSigner, Claims("fetched-user"));
        string jwe = JweFactory.DirGcm(DirKey, "enc-dir", jws, cty: "JWT");

        HttpReply reply = await Nginx.GetAsync("/nested-fetched", jwe);
        HttpReply malformed = await Nginx.GetAsync("/nested-fetched", jws);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(Field(reply, "sub"), Is.EqualTo("fetched-user"));
        Assert.That(malformed.Status, Is.EqualTo(401), "a JWS is not the shape of a nested token");
    }

    [Test]
    public async Task Nested_token_whose_inner_signature_is_wrong_is_401()
    {
        string jws = TokenFactory.Tampered(TokenFactory.Sign(Signer, Claims("forged")));
        string jwe = JweFactory.RsaOaep256Gcm(EncRsa, "enc-rsa", jws, cty: "JWT");
        long mark = Nginx.LogMark();

        HttpReply reply = await Nginx.GetAsync("/nested", jwe);

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(Nginx.ErrorLogSince(mark), Does.Contain("rejected: bad signature"));
    }

    [Test]
    public async Task Nested_location_with_keyval_PEM_private_key_passes()
    {
        string jws = TokenFactory.Sign(Signer, Claims("pem-user"));
        string jwe = JweFactory.RsaOaep256Gcm(EncRsa, "enc-pem", jws, cty: "JWT");

        HttpReply reply = await Nginx.GetAsync("/keyval", jwe);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(Field(reply, "sub"), Is.EqualTo("pem-user"));
    }

    [Test]
    public async Task Wrong_key_tampered_tag_and_tampered_key_are_one_401_and_one_log_reason()
    {
        string good = JweFactory.Encrypted(Claims("tamper"), EncKey, SecurityAlgorithms.RsaOAEP,
            SecurityAlgorithms.Aes128CbcHmacSha256);
        string wrongKey = JweFactory.Encrypted(Claims("tamper"),
            new RsaSecurityKey(OtherRsa.ExportParameters(false)) { KeyId = "enc-rsa" }, SecurityAlgorithms.RsaOAEP,
            SecurityAlgorithms.Aes128CbcHmacSha256);
        long mark = Nginx.LogMark();

        foreach (string token in new[] { wrongKey, JweFactory.Flip(good, 4), JweFactory.Flip(good, 1),
                     JweFactory.Flip(good, 3) })
        {
            HttpReply reply = await Nginx.GetAsync("/encrypted", token);
            Assert.That(reply.Status, Is.EqualTo(401));
            Assert.That(reply.Challenge, Does.Contain("error=\"invalid_token\""));
        }

        string[] lines = Nginx.ErrorLogSince(mark).Split('\n').Where(l => l.Contains("auth_jwt: rejected")).ToArray();
        Assert.That(lines, Has.Length.EqualTo(4));
        Assert.That(lines, Has.All.Contains("rejected: the token does not decrypt (kid \"enc-rsa\""));
    }

    [Test]
    public async Task RSA1_5_is_refused()
    {
        long mark = Nginx.LogMark();
        string token = JweFactory.Rsa15(EncRsa, "enc-rsa", TokenFactory.Json(Claims("legacy")));

        Assert.That((await Nginx.GetAsync("/encrypted", token)).Status, Is.EqualTo(401));
        Assert.That(Nginx.ErrorLogSince(mark), Does.Contain("rejected: unsupported or missing alg"));
    }

    [Test]
    public async Task Compressed_JWE_is_refused()
    {
        long mark = Nginx.LogMark();
        string token = JweFactory.DirGcm(DirKey, "enc-dir", TokenFactory.Json(Claims("zipped")), ",\"zip\":\"DEF\"");

        Assert.That((await Nginx.GetAsync("/encrypted", token)).Status, Is.EqualTo(401));
        Assert.That(Nginx.ErrorLogSince(mark), Does.Contain("rejected: compressed (zip) JWE"));
    }

    [Test]
    public async Task Each_type_refuses_the_others_tokens()
    {
        string jws = TokenFactory.Sign(Signer, Claims("typed"));
        string encrypted = JweFactory.DirGcm(DirKey, "enc-dir", TokenFactory.Json(Claims("typed")));
        string nested = JweFactory.DirGcm(DirKey, "enc-dir", jws, cty: "JWT");

        Assert.That((await Nginx.GetAsync("/signed", jws)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/signed", encrypted)).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/encrypted", jws)).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/nested", jws)).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/nested", encrypted)).Status, Is.EqualTo(401), "no cty JWT");
        Assert.That((await Nginx.GetAsync("/encrypted", nested)).Status, Is.EqualTo(401), "a JWS is not claims");
        Assert.That((await Nginx.GetAsync("/nested", nested)).Status, Is.EqualTo(200));
    }

    [Test]
    public async Task Claim_rules_apply_to_the_decrypted_claims()
    {
        string admin = JweFactory.DirGcm(DirKey, "enc-dir", TokenFactory.Json(Claims("a", "admin")));
        string dev = JweFactory.DirGcm(DirKey, "enc-dir", TokenFactory.Json(Claims("d", "dev")));

        Assert.That((await Nginx.GetAsync("/encrypted-admin", admin)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/encrypted-admin", dev)).Status, Is.EqualTo(401));
    }

    [Test]
    public async Task Expired_encrypted_token_is_401()
    {
        JsonObject claims = Claims("late");
        claims["exp"] = TokenFactory.Now - 60;
        string token = JweFactory.DirGcm(DirKey, "enc-dir", TokenFactory.Json(claims));

        Assert.That((await Nginx.GetAsync("/encrypted", token)).Status, Is.EqualTo(401));
    }

    [Test]
    public async Task Verify_cache_hit_skips_decryption_and_keeps_the_variables()
    {
        string jws = TokenFactory.Sign(Signer, Claims("cache-user", "ops"));
        string jwe = JweFactory.RsaOaep256Gcm(EncRsa, "enc-rsa", jws, cty: "JWT");
        long mark = File.Exists(_debugLog) ? new FileInfo(_debugLog).Length : 0;

        HttpReply first = await Nginx.GetAsync("/cached", jwe);
        HttpReply second = await Nginx.GetAsync("/cached", jwe);
        HttpReply tampered = await Nginx.GetAsync("/cached", JweFactory.Flip(jwe, 4));

        Assert.That(first.Status, Is.EqualTo(200), first.ToString());
        Assert.That(second.Status, Is.EqualTo(200), second.ToString());
        Assert.That(Field(second, "sub"), Is.EqualTo("cache-user"));
        Assert.That(Field(second, "role"), Is.EqualTo("ops"));
        Assert.That(Field(second, "alg"), Is.EqualTo("RS256"));
        Assert.That(Field(second, "payload"), Is.EqualTo(jws), "the inner JWS comes from the entry");
        Assert.That(tampered.Status, Is.EqualTo(401), "a tampered copy is another key: a miss, then decryption fails");

        string log;
        using (var stream = new FileStream(_debugLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            stream.Seek(mark, SeekOrigin.Begin);
            log = new StreamReader(stream).ReadToEnd();
        }
        string[] cache = log.Split('\n').Where(l => l.Contains("auth_jwt: cache \"jwe\"")).ToArray();
        Assert.That(cache.Count(l => l.Contains(" stored")), Is.EqualTo(1), string.Join("\n", cache));
        Assert.That(cache.Count(l => l.Contains(" hit")), Is.EqualTo(1), string.Join("\n", cache));
    }
}
