using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>auth_jwt_key_file: JWKS and keyval files, kid selection, pinned alg, use, levels.</summary>
[TestFixture]
public sealed class KeyFileTests : NginxFixture
{
    private static SigningKey Rsa(int slot) => AlgVariant.Get("RS256").Key(slot);

    private static readonly SigningKey ServerKey = AlgVariant.Get("ES256").Key(5);
    private static readonly SigningKey NoKidKey = AlgVariant.Get("ES384").Key(0);
    private static readonly SigningKey EncKey = Rsa(4);
    private static readonly SigningKey OaepKey = Rsa(7);
    private static readonly SigningKey SigKey = AlgVariant.Get("ES256").Key(6);
    private static readonly SigningKey JwksKey = AlgVariant.Get("ES512").Key(0);
    private static readonly SigningKey KeyvalKey = AlgVariant.Get("EdDSA-Ed25519").Key(0);
    private static readonly SigningKey InnerKey = AlgVariant.Get("PS384").Key(8);
    private static readonly HmacSigningKey Hmac32 = new("HS256", "hmac32", RandomNumberGenerator.GetBytes(32));

    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("server.jwks", TokenFactory.Jwks(ServerKey));
        nginx.WriteFile("multi.jwks", TokenFactory.Jwks(Rsa(0), Rsa(1), Rsa(2)));
        nginx.WriteFile("nokid.jwks", TokenFactory.Jwks(NoKidKey.Jwk(kid: null)));
        nginx.WriteFile("pinned.jwks", TokenFactory.Jwks(Rsa(3).Jwk(alg: "RS256")));
        nginx.WriteFile("enc.jwks", TokenFactory.Jwks(
            EncKey.Jwk(use: "enc"), OaepKey.Jwk(alg: "RSA-OAEP"), SigKey.Jwk(use: "sig")));
        nginx.WriteFile("a.jwks", TokenFactory.Jwks(JwksKey));
        nginx.WriteFile("b.keyval", TokenFactory.Keyval(KeyvalKey));
        nginx.WriteFile("multi.keyval", TokenFactory.Keyval(Rsa(0), AlgVariant.Get("ES256").Key(0), AlgVariant.Get("EdDSA-Ed448").Key(0)));
        nginx.WriteFile("hmac.jwks", TokenFactory.Jwks(Hmac32));
        nginx.WriteFile("inner.jwks", TokenFactory.Jwks(InnerKey));
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "keys";
                auth_jwt_key_file server.jwks;

                location /server-only { {{echo}} }
                location /multi { auth_jwt_key_file multi.jwks; {{echo}} }
                location /nokid { auth_jwt_key_file nokid.jwks; {{echo}} }
                location /pinned { auth_jwt_key_file pinned.jwks; {{echo}} }
                location /enc { auth_jwt_key_file enc.jwks; {{echo}} }
                location /two {
                    auth_jwt_key_file a.jwks;
                    auth_jwt_key_file b.keyval keyval;
                    {{echo}}
                }
                location /keyval-multi { auth_jwt_key_file multi.keyval keyval; {{echo}} }
                location /hmac { auth_jwt_key_file hmac.jwks; {{echo}} }
                location /outer {
                    auth_jwt_key_file multi.jwks;
                    {{echo}}
                    location /outer/inner {
                        auth_jwt_key_file inner.jwks;
                        {{echo}}
                    }
                }
            }
            """);
        return Task.CompletedTask;
    }

    private async Task<int> StatusAsync(string path, string token)
    {
        HttpReply reply = await Nginx.GetAsync(path, token);
        if (reply.Status == 200)
        {
            Assert.That(reply.Body, Is.EqualTo("sub=alice"));
        }

        return reply.Status;
    }

    private static string Sign(SigningKey key, string? kid = "", string? alg = null)
    {
        var header = new JsonObject();
        if (kid is not null)
        {
            header["kid"] = kid == "" ? key.Kid : kid;
        }

        if (alg is not null)
        {
            header["alg"] = alg;
        }

        return TokenFactory.Sign(alg is null ? key : key.WithAlg(alg), TokenFactory.Claims("alice"), header, withKid: false);
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    public async Task Kid_selects_the_matching_key_among_several(int slot)
    {
        Assert.That(await StatusAsync("/multi", Sign(Rsa(slot))), Is.EqualTo(200));
    }

    [Test]
    public async Task Token_whose_kid_names_another_key_of_the_set_is_rejected()
    {
        Assert.That(await StatusAsync("/multi", Sign(Rsa(1), kid: Rsa(0).Kid)), Is.EqualTo(401));
    }

    [Test]
    public async Task Token_with_an_unknown_kid_is_rejected_when_every_key_has_a_kid()
    {
        Assert.That(await StatusAsync("/multi", Sign(Rsa(1), kid: "no-such-kid")), Is.EqualTo(401));
    }

    [Test]
    public async Task Key_without_kid_verifies_tokens_with_or_without_kid()
    {
        Assert.That(await StatusAsync("/nokid", Sign(NoKidKey, kid: null)), Is.EqualTo(200));
        Assert.That(await StatusAsync("/nokid", Sign(NoKidKey, kid: "any-kid")), Is.EqualTo(200));
    }

    [Test]
    public async Task Key_file_of_the_server_level_is_appended_to_the_location_key_files()
    {
        Assert.That(await StatusAsync("/server-only", Sign(ServerKey)), Is.EqualTo(200));
        Assert.That(await StatusAsync("/multi", Sign(ServerKey)), Is.EqualTo(200));
        Assert.That(await StatusAsync("/multi", Sign(Rsa(2))), Is.EqualTo(200));
        Assert.That(await StatusAsync("/server-only", Sign(Rsa(2))), Is.EqualTo(401), "location keys do not leak upwards");
    }

    [Test]
    public async Task Key_files_accumulate_through_nested_locations()
    {
        Assert.That(await StatusAsync("/outer/inner", Sign(InnerKey)), Is.EqualTo(200));
        Assert.That(await StatusAsync("/outer/inner", Sign(Rsa(1))), Is.EqualTo(200));
        Assert.That(await StatusAsync("/outer/inner", Sign(ServerKey)), Is.EqualTo(200));
        Assert.That(await StatusAsync("/outer", Sign(InnerKey)), Is.EqualTo(401));
    }

    [Test]
    public async Task Pinned_alg_key_verifies_its_own_alg()
    {
        Assert.That(await StatusAsync("/pinned", Sign(Rsa(3), alg: "RS256")), Is.EqualTo(200));
    }

    [TestCase("PS256")]
    [TestCase("RS512")]
    [TestCase("PS512")]
    public async Task Pinned_alg_key_rejects_other_algs_of_its_family(string alg)
    {
        Assert.That(await StatusAsync("/pinned", Sign(Rsa(3), alg: alg)), Is.EqualTo(401));
    }

    [Test]
    public async Task Key_with_use_enc_is_not_used_for_signatures()
    {
        Assert.That(await StatusAsync("/enc", Sign(EncKey)), Is.EqualTo(401));
    }

    [Test]
    public async Task Key_pinned_to_an_encryption_alg_is_not_used_for_signatures()
    {
        Assert.That(await StatusAsync("/enc", Sign(OaepKey)), Is.EqualTo(401));
    }

    [Test]
    public async Task Key_with_use_sig_is_used()
    {
        Assert.That(await StatusAsync("/enc", Sign(SigKey)), Is.EqualTo(200));
    }

    [Test]
    public async Task Several_key_files_on_one_level_are_all_used()
    {
        Assert.That(await StatusAsync("/two", Sign(JwksKey)), Is.EqualTo(200));
        Assert.That(await StatusAsync("/two", Sign(KeyvalKey)), Is.EqualTo(200));
    }

    [TestCase("RS256")]
    [TestCase("ES256")]
    [TestCase("EdDSA-Ed448")]
    public async Task Keyval_file_selects_the_PEM_key_by_kid(string variant)
    {
        Assert.That(await StatusAsync("/keyval-multi", Sign(AlgVariant.Get(variant).Key(0))), Is.EqualTo(200));
    }

    [Test]
    public async Task Keyval_PEM_RSA_key_verifies_PS_algorithms_too()
    {
        Assert.That(await StatusAsync("/keyval-multi", Sign(Rsa(0), alg: "PS384")), Is.EqualTo(200));
    }

    [Test]
    public async Task HMAC_key_verifies_only_algs_whose_hash_is_not_longer_than_the_key()
    {
        Assert.That(await StatusAsync("/hmac", Sign(Hmac32, alg: "HS256")), Is.EqualTo(200));
        Assert.That(await StatusAsync("/hmac", Sign(Hmac32, alg: "HS384")), Is.EqualTo(401));
        Assert.That(await StatusAsync("/hmac", Sign(Hmac32, alg: "HS512")), Is.EqualTo(401));
    }
}
