using System;
using System.Collections.Generic;
using System.Security.Cryptography;
using NginxOAuth.Core.Sts;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>nox_sts_create: names, values, keys and the detail index; the claim projection; nox_sts_key.</summary>
public sealed class StsSettingsTests
{
    private static readonly string RsaJwk = Sts.RsaPrivateJwk(RSA.Create(2048), "r1");

    [TestCase(new[] { "type", "otx", "colour", "blue" }, StsError.SettingUnknown, 1, TestName = "Unknown_name_is_refused_with_its_index")]
    [TestCase(new[] { "Type", "otx" }, StsError.SettingUnknown, 0, TestName = "Names_are_case_sensitive")]
    [TestCase(new[] { "type", "otx", "", "x" }, StsError.SettingUnknown, 1, TestName = "Empty_name_is_unknown")]
    [TestCase(new[] { "type", "saml" }, StsError.SettingInvalid, 0, TestName = "Unknown_type_is_invalid")]
    [TestCase(new[] { "type", "otx", "auth", "magic" }, StsError.SettingInvalid, 1, TestName = "Unknown_auth_method_is_invalid")]
    [TestCase(new[] { "type", "otx", "expiry", "-5" }, StsError.SettingInvalid, 1, TestName = "Negative_expiry_is_invalid")]
    [TestCase(new[] { "type", "otx", "expiry", "5m" }, StsError.SettingInvalid, 1, TestName = "Expiry_with_a_unit_is_invalid")]
    [TestCase(new[] { "type", "otx", "expiry", "99999999999" }, StsError.SettingInvalid, 1, TestName = "Huge_expiry_is_invalid")]
    [TestCase(new[] { "type", "jwt", "lifetime", "" }, StsError.SettingInvalid, 1, TestName = "Empty_lifetime_is_invalid")]
    [TestCase(new[] { "type", "otx", "params", "a=%zz" }, StsError.SettingInvalid, 1, TestName = "Params_with_a_bad_escape_are_invalid")]
    [TestCase(new[] { "type", "otx", "params", "=1" }, StsError.SettingInvalid, 1, TestName = "Params_with_an_empty_name_are_invalid")]
    [TestCase(new[] { "type", "otx", "alg", "none" }, StsError.SettingInvalid, 1, TestName = "Alg_none_is_invalid")]
    [TestCase(new[] { "type", "otx", "scope", "a", "scope", "b" }, StsError.SettingInvalid, 2, TestName = "Repeated_setting_other_than_resource_is_invalid")]
    [TestCase(new[] { "type", "otx", "resource", "a", "resource", "b" }, StsError.None, -1, TestName = "Resource_may_repeat")]
    [TestCase(new[] { "endpoint", "https://x" }, StsError.SettingInvalid, -1, TestName = "Missing_type_is_invalid_without_an_index")]
    [TestCase(new[] { "type", "otx", "claims", "{sub" }, StsError.SettingInvalid, 1, TestName = "Bad_projection_is_invalid")]
    [TestCase(new[] { "type", "otx", "jwk", "{\"kty\":\"oct\"}" }, StsError.KeyInvalid, 1, TestName = "Jwk_without_key_material_is_a_key_error")]
    [TestCase(new[] { "type", "otx", "auth", "private_key_jwt" }, StsError.KeyInvalid, -1, TestName = "Private_key_jwt_without_a_jwk_is_a_key_error")]
    [TestCase(new[] { "type", "jwt", "endpoint", "not json" }, StsError.KeyInvalid, 1, TestName = "Jwt_type_with_a_non_JWK_endpoint_is_a_key_error")]
    [TestCase(new[] { "type", "otx", "auth", "client_secret_jwt", "alg", "RS256" }, StsError.SettingInvalid, 2, TestName = "Client_secret_jwt_with_a_non_HMAC_alg_is_invalid")]
    [TestCase(new[] { "type", "wstrust", "auth", "client_secret_post" }, StsError.SettingInvalid, 1, TestName = "Wstrust_with_body_based_client_authentication_is_invalid")]
    public void Settings_are_checked(string[] pairs, StsError expected, int detail)
    {
        StsCreateResult result = Sts.TryCreate(pairs);
        Assert.That(result.Error, Is.EqualTo(expected));
        Assert.That(result.Detail, Is.EqualTo(detail));
        result.Settings?.Dispose();
    }

    [Test]
    public void Public_JWK_is_not_a_signing_key()
    {
        using RSA rsa = RSA.Create(2048);
        StsCreateResult result = Sts.TryCreate("type", "otx", "auth", "private_key_jwt", "jwk", T.RsaJwk(rsa, "k"));
        Assert.That(result.Error, Is.EqualTo(StsError.KeyInvalid));
        Assert.That(result.Detail, Is.EqualTo(2));
    }

    [Test]
    public void Key_that_does_not_fit_alg_is_a_key_error()
    {
        StsCreateResult result = Sts.TryCreate("type", "otx", "auth", "private_key_jwt", "jwk", RsaJwk, "alg", "ES256");
        Assert.That(result.Error, Is.EqualTo(StsError.KeyInvalid));
        Assert.That(result.Detail, Is.EqualTo(2));
    }

    [Test]
    public void Jwt_key_that_does_not_fit_alg_is_a_key_error()
    {
        using ECDsa ec = T.NewEc("P-256");
        StsCreateResult result = Sts.TryCreate("type", "jwt", "endpoint", Sts.EcPrivateJwk(ec, "P-256"), "alg", "ES384");
        Assert.That(result.Error, Is.EqualTo(StsError.KeyInvalid));
        Assert.That(result.Detail, Is.EqualTo(1));
    }

    [Test]
    public void EC_private_key_of_another_point_is_a_key_error()
    {
        using ECDsa a = T.NewEc("P-256"), b = T.NewEc("P-256");
        ECParameters pa = a.ExportParameters(true), pb = b.ExportParameters(true);
        string jwk = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" + T.B64(pa.Q.X!) + "\",\"y\":\"" + T.B64(pa.Q.Y!)
            + "\",\"d\":\"" + T.B64(pb.D!) + "\"}";
        Assert.That(Sts.TryCreate("type", "jwt", "endpoint", jwk).Error, Is.EqualTo(StsError.KeyInvalid));
    }

    [Test]
    public void Ed25519_private_key_with_another_public_key_is_a_key_error()
    {
        using var a = new EdKey(false);
        using var b = new EdKey(false);
        string jwk = "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" + T.B64(a.PublicKey) + "\",\"d\":\"" + T.B64(b.Seed) + "\"}";
        Assert.That(Sts.TryCreate("type", "jwt", "endpoint", jwk).Error, Is.EqualTo(StsError.KeyInvalid));
    }

    [Test]
    public void RSA_key_under_2048_bits_is_a_key_error()
    {
        using RSA rsa = RSA.Create(1024);
        Assert.That(Sts.TryCreate("type", "jwt", "endpoint", Sts.RsaPrivateJwk(rsa)).Error, Is.EqualTo(StsError.KeyInvalid));
    }

    [Test]
    public void Invalid_UTF8_value_is_invalid()
    {
        var pairs = new List<KeyValuePair<byte[], byte[]>>
        {
            new(T.U("type"), T.U("otx")),
            new(T.U("scope"), new byte[] { 0x61, 0xFF }),
        };
        StsCreateResult result = StsSettings.Create(pairs);
        Assert.That(result.Error, Is.EqualTo(StsError.SettingInvalid));
        Assert.That(result.Detail, Is.EqualTo(1));
    }

    // ---- projection ---------------------------------------------------------

    [TestCase("{}", 0)]
    [TestCase("{sub}", 1)]
    [TestCase("{ sub , email }", 2)]
    [TestCase("{sub, email, roles: .realm_access.roles}", 3)]
    [TestCase("{\"full name\": .a[\"b c\"], first: .list[0]}", 2)]
    [TestCase("{\"quoted\"}", 1)]
    [TestCase("{x: .\"dotted.key\"}", 1)]
    [TestCase("{x: .a[\"b,c}\"]}", 1)]
    [TestCase("\n{\n  a,\n  b: .c\n}\n", 2)]
    public void Valid_projection_parses(string text, int count)
    {
        ClaimProjection? projection = ClaimProjection.Parse(text);
        Assert.That(projection, Is.Not.Null);
        Assert.That(projection!.Count, Is.EqualTo(count));
    }

    [TestCase("")]
    [TestCase("sub")]
    [TestCase("{sub")]
    [TestCase("{sub,}")]
    [TestCase("{,sub}")]
    [TestCase("{sub email}")]
    [TestCase("{sub: }")]
    [TestCase("{sub: sub}")]
    [TestCase("{sub: [0]}")]
    [TestCase("{sub: .a b}")]
    [TestCase("{sub: .a[}")]
    [TestCase("{sub, sub}")]
    [TestCase("{a: .x, a: .y}")]
    [TestCase("{\"unterminated}")]
    [TestCase("{1a}")]
    [TestCase("{sub} x")]
    [TestCase("{sub: .a | .b}")]
    public void Invalid_projection_is_refused(string text)
    {
        Assert.That(ClaimProjection.Parse(text), Is.Null);
    }

    // ---- cache key ----------------------------------------------------------

    private static byte[] Key(StsSettings settings, string source, byte[]?[]? values = null)
    {
        var output = new byte[32];
        Assert.That(StsExchange.CacheKey(settings, T.U(source),
            values is null ? ArrayStsValues.None : new ArrayStsValues(values), output), Is.True);
        return output;
    }

    [Test]
    public void Cache_key_is_stable_for_equal_inputs()
    {
        using StsSettings a = Sts.Create("type", "otx", "endpoint", Sts.Endpoint, "scope", "read");
        using StsSettings b = Sts.Create("type", "otx", "endpoint", Sts.Endpoint, "scope", "read");
        Assert.That(Key(a, "tok"), Is.EqualTo(Key(b, "tok")));
        Assert.That(Key(a, "tok"), Is.EqualTo(Key(a, "tok")));
    }

    [Test]
    public void Cache_key_changes_with_the_source_a_setting_or_a_request_value()
    {
        using StsSettings a = Sts.Create("type", "otx", "endpoint", Sts.Endpoint, "scope", "read");
        using StsSettings b = Sts.Create("type", "otx", "endpoint", Sts.Endpoint, "scope", "write");
        byte[] baseline = Key(a, "tok");
        Assert.That(Key(a, "tok2"), Is.Not.EqualTo(baseline));
        Assert.That(Key(b, "tok"), Is.Not.EqualTo(baseline));
        Assert.That(Key(a, "tok", [null, null, T.U("write")]), Is.EqualTo(Key(b, "tok")));
        Assert.That(Key(a, "tok", [null, null, null]), Is.EqualTo(baseline));
    }

    [Test]
    public void Cache_key_does_not_confuse_boundaries()
    {
        using StsSettings a = Sts.Create("type", "otx", "scope", "ab");
        using StsSettings b = Sts.Create("type", "otx", "scope", "a");
        Assert.That(Key(a, "c"), Is.Not.EqualTo(Key(b, "bc")));
    }

    [Test]
    public void Cache_key_needs_32_bytes()
    {
        using StsSettings a = Sts.Create("type", "otx");
        Assert.That(StsExchange.CacheKey(a, T.U("x"), ArrayStsValues.None, new byte[31]), Is.False);
    }
}
