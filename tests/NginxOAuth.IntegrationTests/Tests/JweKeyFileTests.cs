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
/// Key files that mix what auth_jwt_key_file skips (weak signing keys,
/// public encryption keys) with JWE decryption keys: skipping a signing key
/// never drops a decryption key, a key marked for encryption is never
/// reported as a weak HMAC key, a file of decryption keys alone loads for
/// encrypted locations (also through a path with variables), and a signed
/// location that is left with decryption keys only is warned about.
/// </summary>
[TestFixture]
public sealed class JweKeyFileTests : NginxFixture
{
    private static readonly SigningKey Signer = AlgVariant.Get("RS256").Key(3);
    private static readonly HmacSigningKey Short = new("HS256", "short", new byte[12]);
    private static readonly RSA EncRsa = RSA.Create(2048);
    private static readonly RSA SmallRsa = RSA.Create(1024);
    private static readonly byte[] Kw128 = RandomNumberGenerator.GetBytes(16);
    private static readonly byte[] DirKey = RandomNumberGenerator.GetBytes(32);

    private static JsonObject PublicEncJwk()
    {
        RSAParameters p = EncRsa.ExportParameters(false);
        return new JsonObject
        {
            ["kty"] = "RSA",
            ["kid"] = "enc-public",
            ["use"] = "enc",
            ["n"] = Base64UrlEncoder.Encode(p.Modulus!),
            ["e"] = Base64UrlEncoder.Encode(p.Exponent!),
        };
    }

    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("mixed.jwks", TokenFactory.Jwks(
            Short.Jwk(alg: "HS256"),
            PublicEncJwk(),
            JweFactory.PrivateRsaJwk(EncRsa, "enc-rsa"),
            JweFactory.OctJwk(Kw128, "enc-kw128"),
            JweFactory.PrivateRsaJwk(SmallRsa, "enc-small"),
            Signer.Jwk()));
        nginx.WriteFile("decrypt-only.jwks", TokenFactory.Jwks(JweFactory.OctJwk(DirKey, "enc-dir")));
        Directory.CreateDirectory(Path.Combine(nginx.Directory, "vars"));
        nginx.WriteFile("vars/dec.jwks", TokenFactory.Jwks(JweFactory.OctJwk(DirKey, "enc-dir")));
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "jwe-keys";

                location /signed {
                    auth_jwt_key_file mixed.jwks;
                    {{echo}}
                }
                location /encrypted {
                    auth_jwt_type encrypted;
                    auth_jwt_key_file mixed.jwks;
                    {{echo}}
                }
                location /decrypt-only {
                    auth_jwt_type encrypted;
                    auth_jwt_key_file decrypt-only.jwks;
                    {{echo}}
                }
                location /by-variable {
                    auth_jwt_type encrypted;
                    auth_jwt_key_file vars/$arg_f.jwks;
                    {{echo}}
                }
                location /by-variable-nosig {
                    auth_jwt_type encrypted;
                    auth_jwt_validate_sig off;
                    auth_jwt_key_file vars/$arg_f.jwks;
                    {{echo}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    private static string Claims(string sub) => TokenFactory.Json(TokenFactory.Claims(sub));

    [Test]
    public void Nginx_t_warns_only_about_keys_that_neither_verify_nor_decrypt()
    {
        ConfigTestResult result = Nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
        string[] warnings = result.Output.Split('\n').Where(l => l.Contains("[warn]")).ToArray();
        Assert.That(warnings.Where(w => w.Contains("(kid \"short\") skipped: HMAC key shorter than its hash")), Is.Not.Empty);
        Assert.That(warnings.Where(w => w.Contains("(kid \"enc-public\") skipped: encryption key")), Is.Not.Empty);
        Assert.That(warnings.Where(w => w.Contains("(kid \"enc-small\") skipped: RSA key shorter than 2048 bits")),
            Is.Not.Empty, "a decryption key that cannot be used is skipped for its own reason");
        Assert.That(warnings.Where(w => w.Contains("enc-kw128") || w.Contains("enc-rsa")), Is.Empty,
            "decryption keys are keys in use, a 16-byte one too");
        Assert.That(warnings.Where(w => w.Contains("decrypt-only.jwks")), Is.Empty);
        Assert.That(warnings.Where(w => w.Contains("verifies signatures")), Is.Empty,
            "every location gets a key of the kind it needs");
    }

    [Test]
    public async Task A_16_byte_key_marked_for_encryption_decrypts_A128KW()
    {
        var key = new SymmetricSecurityKey(Kw128) { KeyId = "enc-kw128" };
        string token = JweFactory.Encrypted(TokenFactory.Claims("kw-user"), key, SecurityAlgorithms.Aes128KW,
            SecurityAlgorithms.Aes128CbcHmacSha256);

        HttpReply reply = await Nginx.GetAsync("/encrypted", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=kw-user"));
    }

    [Test]
    public async Task The_private_key_of_a_file_with_skipped_keys_decrypts_RSA_OAEP()
    {
        var key = new RsaSecurityKey(EncRsa.ExportParameters(false)) { KeyId = "enc-rsa" };
        string token = JweFactory.Encrypted(TokenFactory.Claims("oaep-user"), key, SecurityAlgorithms.RsaOAEP,
            SecurityAlgorithms.Aes256CbcHmacSha512);

        HttpReply reply = await Nginx.GetAsync("/encrypted", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=oaep-user"));
    }

    [Test]
    public async Task A_JWE_for_a_skipped_decryption_key_is_401_with_the_reason()
    {
        string token = JweFactory.RsaOaep256Gcm(SmallRsa, "enc-small", Claims("mallory"));

        HttpReply reply = await Nginx.GetAsync("/encrypted", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark,
            @"\[info\].*the key it needs was skipped when its set was loaded: RSA key shorter than 2048 bits \(kid ""enc-small""");
    }

    [Test]
    public async Task The_same_file_verifies_signed_tokens_and_names_a_skipped_key()
    {
        HttpReply good = await Nginx.GetAsync("/signed", TokenFactory.Sign(Signer, TokenFactory.Claims("sig-user")));
        HttpReply weak = await Nginx.GetAsync("/signed", TokenFactory.Sign(Short, TokenFactory.Claims("mallory")));

        Assert.That(good.Status, Is.EqualTo(200), good.ToString());
        Assert.That(good.Body, Is.EqualTo("sub=sig-user"));
        Assert.That(weak.Status, Is.EqualTo(401), weak.ToString());
        Nginx.WaitForLogLine(TestLogMark,
            @"\[info\].*the key it needs was skipped when its set was loaded: HMAC key shorter than its hash \(kid ""short""");
    }

    [Test]
    public async Task A_file_of_decryption_keys_only_serves_an_encrypted_location()
    {
        HttpReply reply = await Nginx.GetAsync("/decrypt-only", JweFactory.DirGcm(DirKey, "enc-dir", Claims("dir-user")));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=dir-user"));
    }

    [TestCase("/by-variable", TestName = "A_key_file_named_with_variables_decrypts")]
    [TestCase("/by-variable-nosig", TestName = "A_key_file_named_with_variables_decrypts_with_validate_sig_off")]
    public async Task Key_file_named_with_variables_decrypts(string path)
    {
        string token = JweFactory.DirGcm(DirKey, "enc-dir", Claims("var-user"));

        HttpReply reply = await Nginx.GetAsync(path + "?f=dec", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=var-user"));
    }

    [Test]
    public async Task A_signed_location_with_decryption_keys_only_is_warned_about_once()
    {
        using var nginx = new NginxInstance("jwe-keys");
        nginx.WriteFile("decrypt-only.jwks", TokenFactory.Jwks(JweFactory.OctJwk(DirKey, "enc-dir")));
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "signed";
                auth_jwt_key_file decrypt-only.jwks;
                location /a { {{nginx.Echo("a")}} }
                location /b { {{nginx.Echo("b")}} }
                location /encrypted { auth_jwt_type encrypted; {{nginx.Echo("e")}} }
            }
            """);

        ConfigTestResult result = nginx.TestConfig();
        HttpReply signed = await nginx.GetAsync("/a", TokenFactory.Sign(Signer, TokenFactory.Claims("sig-user")));
        HttpReply encrypted = await nginx.GetAsync("/encrypted", JweFactory.DirGcm(DirKey, "enc-dir", Claims("e")));

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
        string[] warnings = result.Output.Split('\n').Where(l => l.Contains("verifies signatures")).ToArray();
        Assert.That(warnings, Has.Length.EqualTo(1), result.Output);
        Assert.That(warnings[0], Does.Contain("[warn]"));
        Assert.That(warnings[0], Does.Contain($"{nginx.ConfigPath}:{nginx.LineOf("auth_jwt \"signed\"")}"));
        Assert.That(signed.Status, Is.EqualTo(500), signed.ToString());
        Assert.That(encrypted.Status, Is.EqualTo(200), encrypted.ToString());
    }
}
