using System;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.Sts;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>Type jwt: tokens minted locally from the source claims, verified by our verifier and Microsoft.IdentityModel.</summary>
public sealed class StsJwtTests
{
    private const string Source =
        "{\"sub\":\"alice\",\"email\":\"a@example.com\",\"realm_access\":{\"roles\":[\"admin\",\"dev\"]},"
        + "\"a\":{\"b c\":1},\"iss\":\"https://src\",\"iat\":1,\"jti\":\"old\"}";

    private static JsonElement Payload(string jwt)
    {
        using JsonDocument doc = JsonDocument.Parse(Sts.Parts(jwt).Payload);
        return doc.RootElement.Clone();
    }

    [TestCase("RS256")]
    [TestCase("PS256")]
    [TestCase("ES256")]
    [TestCase("ES384")]
    [TestCase("ES512")]
    [TestCase("EdDSA")]
    public void Minted_token_verifies_with_the_public_key(string alg)
    {
        (string privateJwk, string publicJwk, SecurityKey? msKey, IDisposable owner) = StsRequestTests.KeyFor(alg);
        using (owner)
        {
            using StsSettings s = Sts.Create("type", "jwt", "endpoint", privateJwk, "alg", alg);
            Sts.Built b = Sts.Request(s, Source);
            Assert.That(b.Error, Is.EqualTo(StsError.None));
            Assert.That(Sts.Parts(b.Body).Header, Does.Contain("\"alg\":\"" + alg + "\"").And.Contain("\"typ\":\"JWT\"")
                .And.Contain("\"kid\":\"k1\""));
            using KeySet keys = T.Keys(T.Jwks(publicJwk));
            Assert.That(T.Verify(T.Policy(keys), b.Body).Error, Is.EqualTo(TokenError.None));
            if (msKey is not null)
            {
                Assert.That(StsRequestTests.MsValidate(b.Body, msKey), Is.True);
            }
        }
    }

    [TestCase("RSA", "RS256")]
    [TestCase("P-256", "ES256")]
    [TestCase("P-384", "ES384")]
    [TestCase("P-521", "ES512")]
    [TestCase("Ed25519", "EdDSA")]
    public void Alg_defaults_from_the_key(string kind, string alg)
    {
        string jwk;
        IDisposable owner;
        if (kind == "RSA")
        {
            RSA rsa = RSA.Create(2048);
            (jwk, owner) = (Sts.RsaPrivateJwk(rsa), rsa);
        }
        else if (kind == "Ed25519")
        {
            var ed = new EdKey(false);
            (jwk, owner) = (Sts.EdPrivateJwk(ed), ed);
        }
        else
        {
            ECDsa ec = T.NewEc(kind);
            (jwk, owner) = (Sts.EcPrivateJwk(ec, kind), ec);
        }
        using (owner)
        {
            using StsSettings s = Sts.Create("type", "jwt", "endpoint", jwk);
            string header = Sts.Parts(Sts.Request(s, "{}").Body).Header;
            Assert.That(header, Does.Contain("\"alg\":\"" + alg + "\""));
            Assert.That(header, Does.Not.Contain("kid"));
        }
    }

    [Test]
    public void Ed448_key_mints_EdDSA_tokens_our_verifier_accepts()
    {
        using var ed = new EdKey(true);
        using StsSettings s = Sts.Create("type", "jwt", "endpoint", Sts.EdPrivateJwk(ed, "k1"));
        Sts.Built b = Sts.Request(s, "{\"sub\":\"x\"}");
        using KeySet keys = T.Keys(T.Jwks(ed.Jwk("k1")));
        Assert.That(T.Verify(T.Policy(keys), b.Body).Error, Is.EqualTo(TokenError.None));
    }

    [Test]
    public void HMAC_JWK_mints_HS256_tokens()
    {
        using StsSettings s = Sts.Create("type", "jwt", "endpoint", T.OctJwk(T.HmacSecret, "h"));
        Sts.Built b = Sts.Request(s, "{\"sub\":\"x\"}");
        using KeySet keys = T.Keys(T.Jwks(T.OctJwk(T.HmacSecret, "h")));
        Assert.That(T.Verify(T.Policy(keys), b.Body).Error, Is.EqualTo(TokenError.None));
        Assert.That(StsRequestTests.MsValidate(b.Body, new SymmetricSecurityKey(T.HmacSecret)), Is.True);
    }

    [Test]
    public void Without_a_projection_every_source_claim_is_copied_and_ours_replace_iat_and_jti()
    {
        using ECDsa ec = T.NewEc("P-256");
        using StsSettings s = Sts.Create("type", "jwt", "endpoint", Sts.EcPrivateJwk(ec, "P-256"));
        Sts.Built b = Sts.Request(s, Source);
        JsonElement p = Payload(b.Body);
        Assert.That(p.GetProperty("sub").GetString(), Is.EqualTo("alice"));
        Assert.That(p.GetProperty("email").GetString(), Is.EqualTo("a@example.com"));
        Assert.That(p.GetProperty("realm_access").GetProperty("roles")[1].GetString(), Is.EqualTo("dev"));
        Assert.That(p.GetProperty("iss").GetString(), Is.EqualTo("https://src"));
        Assert.That(p.GetProperty("iat").GetInt64(), Is.EqualTo(T.Now));
        Assert.That(p.GetProperty("jti").GetString(), Is.Not.EqualTo("old"));
        Assert.That(p.GetProperty("exp").GetInt64(), Is.EqualTo(T.Now + 60));
        Assert.That(b.Ttl, Is.EqualTo(54));
        Assert.That(JsonDuplicateFree(Sts.Parts(b.Body).Payload), Is.True);
    }

    [Test]
    public void Projection_selects_renames_and_omits_missing_members()
    {
        using ECDsa ec = T.NewEc("P-256");
        using StsSettings s = Sts.Create("type", "jwt", "endpoint", Sts.EcPrivateJwk(ec, "P-256"),
            "claims", "{email, roles: .realm_access.roles, \"b c\": .a[\"b c\"], first: .realm_access.roles[0], gone: .nope.x, missing}");
        JsonElement p = Payload(Sts.Request(s, Source).Body);
        Assert.That(p.GetProperty("email").GetString(), Is.EqualTo("a@example.com"));
        Assert.That(p.GetProperty("roles").GetArrayLength(), Is.EqualTo(2));
        Assert.That(p.GetProperty("b c").GetInt32(), Is.EqualTo(1));
        Assert.That(p.GetProperty("first").GetString(), Is.EqualTo("admin"));
        Assert.That(p.TryGetProperty("gone", out _), Is.False);
        Assert.That(p.TryGetProperty("missing", out _), Is.False);
        Assert.That(p.TryGetProperty("iss", out _), Is.False, "not projected, not configured");
        Assert.That(p.GetProperty("sub").GetString(), Is.EqualTo("alice"), "sub comes from the source");
    }

    [Test]
    public void Settings_set_iss_aud_client_id_and_sub()
    {
        using ECDsa ec = T.NewEc("P-256");
        using StsSettings s = Sts.Create("type", "jwt", "endpoint", Sts.EcPrivateJwk(ec, "P-256"), "iss", "https://gw",
            "aud", "api", "client_id", "gw-client", "sub", "service", "kid", "mint-1");
        Sts.Built b = Sts.Request(s, Source);
        JsonElement p = Payload(b.Body);
        Assert.That(p.GetProperty("iss").GetString(), Is.EqualTo("https://gw"));
        Assert.That(p.GetProperty("aud").GetString(), Is.EqualTo("api"));
        Assert.That(p.GetProperty("client_id").GetString(), Is.EqualTo("gw-client"));
        Assert.That(p.GetProperty("sub").GetString(), Is.EqualTo("service"));
        Assert.That(Sts.Parts(b.Body).Header, Does.Contain("\"kid\":\"mint-1\""));
        Assert.That(JsonDuplicateFree(Sts.Parts(b.Body).Payload), Is.True);
    }

    [TestCase("{\"exp\":1700003600}", 1700003600L, 300L, TestName = "Source_exp_is_kept_and_ttl_capped_by_expiry")]
    [TestCase("{\"exp\":1700000100}", 1700000100L, 90L, TestName = "Source_exp_bounds_the_ttl")]
    [TestCase("{\"exp\":1699999000}", 1699999000L, 0L, TestName = "Expired_source_is_not_cached")]
    [TestCase("{\"exp\":1700000100.9}", 1700000100L, 90L, TestName = "Fractional_source_exp_is_floored")]
    [TestCase("{\"exp\":\"1700003600\"}", 1700000060L, 54L, TestName = "String_source_exp_falls_back_to_the_lifetime")]
    public void Exp_and_ttl(string source, long exp, long ttl)
    {
        using ECDsa ec = T.NewEc("P-256");
        using StsSettings s = Sts.Create("type", "jwt", "endpoint", Sts.EcPrivateJwk(ec, "P-256"));
        Sts.Built b = Sts.Request(s, source);
        Assert.That(Payload(b.Body).GetProperty("exp").GetInt64(), Is.EqualTo(exp));
        Assert.That(b.Ttl, Is.EqualTo(ttl));
    }

    [Test]
    public void Lifetime_and_expiry_settings_apply()
    {
        using ECDsa ec = T.NewEc("P-256");
        using StsSettings s = Sts.Create("type", "jwt", "endpoint", Sts.EcPrivateJwk(ec, "P-256"), "lifetime", "3600",
            "expiry", "120");
        Sts.Built b = Sts.Request(s, "{}");
        Assert.That(Payload(b.Body).GetProperty("exp").GetInt64(), Is.EqualTo(T.Now + 3600));
        Assert.That(b.Ttl, Is.EqualTo(120));
    }

    [TestCase("eyJhbGciOiJSUzI1NiJ9.e30.sig", TestName = "Compact_JWT_source_is_refused")]
    [TestCase("[1,2]", TestName = "Array_source_is_refused")]
    [TestCase("{\"a\":1,\"a\":2}", TestName = "Source_with_duplicate_members_is_refused")]
    [TestCase("", TestName = "Empty_source_is_refused")]
    public void Source_must_be_a_JSON_object(string source)
    {
        using ECDsa ec = T.NewEc("P-256");
        using StsSettings s = Sts.Create("type", "jwt", "endpoint", Sts.EcPrivateJwk(ec, "P-256"));
        Assert.That(Sts.Request(s, source).Error, Is.EqualTo(StsError.SourceInvalid));
    }

    [Test]
    public void Small_buffer_reports_the_token_length()
    {
        using ECDsa ec = T.NewEc("P-256");
        using StsSettings s = Sts.Create("type", "jwt", "endpoint", Sts.EcPrivateJwk(ec, "P-256"));
        Sts.Built small = Sts.Request(s, "{}", capacity: 10);
        Assert.That(small.Error, Is.EqualTo(StsError.BufferTooSmall));
        Assert.That(small.Needed, Is.GreaterThan(100));
    }

    [Test]
    public void Overridden_key_is_imported_for_the_request()
    {
        using ECDsa a = T.NewEc("P-256"), b = T.NewEc("P-256");
        using StsSettings s = Sts.Create("type", "jwt", "endpoint", Sts.EcPrivateJwk(a, "P-256", "a"));
        Sts.Built built = Sts.Request(s, "{}", values: [null, T.U(Sts.EcPrivateJwk(b, "P-256", "b"))]);
        using KeySet keys = T.Keys(T.Jwks(T.EcJwk(b, "P-256", "b")));
        Assert.That(T.Verify(T.Policy(keys), built.Body).Error, Is.EqualTo(TokenError.None));
        // the configured key still works afterwards
        using KeySet keysA = T.Keys(T.Jwks(T.EcJwk(a, "P-256", "a")));
        Assert.That(T.Verify(T.Policy(keysA), Sts.Request(s, "{}").Body).Error, Is.EqualTo(TokenError.None));
    }

    private static bool JsonDuplicateFree(string json) =>
        NginxOAuth.Core.Json.JsonGuard.Check(T.U(json)) == NginxOAuth.Core.Json.JsonShape.Object;
}
