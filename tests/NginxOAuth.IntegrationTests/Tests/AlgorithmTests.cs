using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>Every JWS algorithm, from JWKS and from keyval PEM files.</summary>
[TestFixture]
public sealed class AlgorithmTests : NginxFixture
{
    private const string Echo = "sub=$jwt_claim_sub alg=$jwt_header_alg";

    public static IEnumerable<AlgVariant> Variants => AlgVariant.All;

    public static IEnumerable<AlgVariant> AsymmetricVariants => AlgVariant.Asymmetric;

    public static IEnumerable<string> IdentityModelAlgs => ["HS256", "HS512", "RS256", "RS384", "PS256", "PS512", "ES256", "ES384", "ES512"];

    protected override Task StartNginx(NginxInstance nginx)
    {
        var locations = new StringBuilder();
        foreach (AlgVariant v in AlgVariant.All)
        {
            nginx.WriteFile($"jwks-{v.Name}.json", TokenFactory.Jwks(v.Key()));
            locations.Append($$"""
                location /jwks/{{v.Name}} {
                    auth_jwt "jwks";
                    auth_jwt_key_file jwks-{{v.Name}}.json;
                    {{nginx.Echo(Echo)}}
                }

                """);

            if (v.IsAsymmetric)
            {
                nginx.WriteFile($"keyval-{v.Name}.json", TokenFactory.Keyval(v.Key()));
                locations.Append($$"""
                    location /keyval/{{v.Name}} {
                        auth_jwt "keyval";
                        auth_jwt_key_file keyval-{{v.Name}}.json keyval;
                        {{nginx.Echo(Echo)}}
                    }

                    """);
            }
        }

        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
            {{locations}}
            }
            """);
        return Task.CompletedTask;
    }

    [TestCaseSource(nameof(Variants))]
    public async Task Valid_token_is_accepted(AlgVariant v)
    {
        string token = TokenFactory.Sign(v.Key(), TokenFactory.Claims("alice-" + v.Name));

        HttpReply reply = await Nginx.GetAsync($"/jwks/{v.Name}", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"sub=alice-{v.Name} alg={v.Alg}"));
    }

    [TestCaseSource(nameof(Variants))]
    public async Task Token_signed_by_another_key_is_rejected(AlgVariant v)
    {
        // same kid and alg, different key material
        string token = TokenFactory.Sign(v.Stranger(), TokenFactory.Claims("mallory"));

        HttpReply reply = await Nginx.GetAsync($"/jwks/{v.Name}", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"jwks\", error=\"invalid_token\""));
    }

    [TestCaseSource(nameof(Variants))]
    public async Task Tampered_payload_is_rejected(AlgVariant v)
    {
        string token = TokenFactory.Tampered(TokenFactory.Sign(v.Key()));

        HttpReply reply = await Nginx.GetAsync($"/jwks/{v.Name}", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
    }

    [TestCaseSource(nameof(AsymmetricVariants))]
    public async Task Keyval_PEM_public_key_verifies_the_token(AlgVariant v)
    {
        string token = TokenFactory.Sign(v.Key(), TokenFactory.Claims("pem-" + v.Name));

        HttpReply reply = await Nginx.GetAsync($"/keyval/{v.Name}", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"sub=pem-{v.Name} alg={v.Alg}"));
    }

    [TestCaseSource(nameof(AsymmetricVariants))]
    public async Task Keyval_PEM_public_key_rejects_a_token_signed_by_another_key(AlgVariant v)
    {
        HttpReply reply = await Nginx.GetAsync($"/keyval/{v.Name}", TokenFactory.Sign(v.Stranger()));

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
    }

    [TestCaseSource(nameof(IdentityModelAlgs))]
    public async Task Token_made_by_Microsoft_IdentityModel_is_accepted(string alg)
    {
        AlgVariant v = AlgVariant.Get(alg);
        string token = TokenFactory.ByIdentityModel(v.Key(), "im-" + alg);

        HttpReply reply = await Nginx.GetAsync($"/jwks/{v.Name}", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"sub=im-{alg} alg={alg}"));
    }

    [TestCase("RS256", "PS256")]
    [TestCase("PS256", "RS256")]
    [TestCase("RS256", "RS512")]
    [TestCase("ES256", "ES384")]
    [TestCase("HS256", "HS512")]
    public async Task Header_alg_that_differs_from_the_signing_alg_is_rejected(string signedWith, string claimed)
    {
        AlgVariant v = AlgVariant.Get(signedWith);
        string header = TokenFactory.Json(new JsonObject { ["alg"] = claimed, ["kid"] = v.Key().Kid });
        string token = TokenFactory.SignRaw(v.Key(), header, TokenFactory.Json(TokenFactory.Claims()));

        HttpReply reply = await Nginx.GetAsync($"/jwks/{signedWith}", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
    }

    [Test]
    public async Task RSA_public_key_is_never_used_as_an_HMAC_secret()
    {
        // the classic key confusion: HS256 keyed with the server's public key
        RsaSigningKey rsa = (RsaSigningKey)AlgVariant.Get("RS256").Key();
        var forger = new HmacSigningKey("HS256", rsa.Kid, Encoding.ASCII.GetBytes(rsa.PublicPem()));

        HttpReply keyval = await Nginx.GetAsync("/keyval/RS256", TokenFactory.Sign(forger));
        var raw = new HmacSigningKey("HS256", rsa.Kid, rsa.Rsa.ExportSubjectPublicKeyInfo());
        HttpReply jwks = await Nginx.GetAsync("/jwks/RS256", TokenFactory.Sign(raw));

        Assert.That(keyval.Status, Is.EqualTo(401), keyval.ToString());
        Assert.That(jwks.Status, Is.EqualTo(401), jwks.ToString());
    }

    [Test]
    public async Task ECDSA_signature_in_DER_form_is_rejected()
    {
        EcSigningKey key = (EcSigningKey)AlgVariant.Get("ES256").Key();
        string input = TokenFactory.Encode(TokenFactory.Json(new JsonObject { ["alg"] = "ES256", ["kid"] = key.Kid }))
            + "." + TokenFactory.Encode(TokenFactory.Json(TokenFactory.Claims()));
        byte[] der = key.Ecdsa.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256,
            DSASignatureFormat.Rfc3279DerSequence);
        string token = input + "." + System.Buffers.Text.Base64Url.EncodeToString(der);

        HttpReply reply = await Nginx.GetAsync("/jwks/ES256", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
    }

    [Test]
    public async Task Token_for_one_key_family_is_rejected_by_a_location_of_another()
    {
        string es256 = TokenFactory.Sign(AlgVariant.Get("ES256").Key());
        string ed25519 = TokenFactory.Sign(AlgVariant.Get("EdDSA-Ed25519").Key());

        HttpReply onRsa = await Nginx.GetAsync("/jwks/RS256", es256);
        HttpReply onEd448 = await Nginx.GetAsync("/jwks/EdDSA-Ed448", ed25519);

        Assert.That(new[] { onRsa.Status, onEd448.Status }, Is.All.EqualTo(401));
    }

    [Test]
    public void There_is_a_variant_for_every_supported_algorithm()
    {
        Assert.That(AlgVariant.All.Select(v => v.Alg).Distinct(), Is.EquivalentTo(new[]
        {
            "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
            "ES256", "ES384", "ES512", "ES256K", "EdDSA",
        }));
        Assert.That(AlgVariant.All.Count(v => v.Alg == "EdDSA"), Is.EqualTo(2), "Ed25519 and Ed448");
    }
}
