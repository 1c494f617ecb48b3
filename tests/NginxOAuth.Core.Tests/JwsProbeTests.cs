using System;
using System.Text;
using NginxOAuth.Core.Jwt;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>nox_jws_probe: which tokens a location with JWT keys and introspection (auth_jwt_introspect) verifies locally.</summary>
public sealed class JwsProbeTests
{
    private static string Token(string header, string payload, string signature = "c2ln") =>
        T.B64(header) + "." + T.B64(payload) + "." + signature;

    private static (TokenError Error, string? Issuer) Probe(string token)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(token);
        byte[] issuer = new byte[bytes.Length];
        JwsProbeResult result = JwsProbe.Probe(bytes, issuer);
        return (result.Error, result.IssuerLength < 0 ? null : Encoding.UTF8.GetString(issuer, 0, result.IssuerLength));
    }

    [TestCase("{\"alg\":\"RS256\"}", "{\"iss\":\"https://a.example\"}", "https://a.example", TestName = "A_JWS_with_an_issuer_is_a_JWS_and_its_iss_is_read")]
    [TestCase("{\"alg\":\"ES256\",\"kid\":\"k\"}", "{\"sub\":\"x\"}", null, TestName = "A_JWS_without_iss_is_a_JWS_without_issuer")]
    [TestCase("{\"alg\":\"HS256\"}", "{\"iss\":\"a\\/b\\u0063\"}", "a/bc", TestName = "An_escaped_iss_is_read_unescaped")]
    [TestCase("{\"alg\":\"EdDSA\"}", "{\"iss\":42}", null, TestName = "An_iss_that_is_not_a_string_is_no_issuer")]
    [TestCase("{\"alg\":\"PS256\"}", "not json", null, TestName = "A_JWS_whose_payload_is_not_JSON_is_still_a_JWS")]
    public void Jws_is_recognised(string header, string payload, string? issuer)
    {
        (TokenError error, string? iss) = Probe(Token(header, payload));

        Assert.That(error, Is.EqualTo(TokenError.None));
        Assert.That(iss, Is.EqualTo(issuer));
    }

    [TestCase("{\"alg\":\"none\"}", TokenError.AlgNone, TestName = "Alg_none_is_not_a_JWS")]
    [TestCase("{\"alg\":\"RSA-OAEP\",\"enc\":\"A256GCM\"}", TokenError.AlgUnsupported, TestName = "A_JWE_header_is_not_a_JWS")]
    [TestCase("{\"alg\":\"RS256\",\"enc\":\"A256GCM\"}", TokenError.AlgUnsupported, TestName = "A_header_with_enc_is_not_a_JWS")]
    [TestCase("{\"alg\":\"XS999\"}", TokenError.AlgUnsupported, TestName = "An_unknown_alg_is_not_a_JWS")]
    [TestCase("{\"typ\":\"JWT\"}", TokenError.AlgUnsupported, TestName = "A_header_without_alg_is_not_a_JWS")]
    [TestCase("{\"alg\":\"RS256\",\"alg\":\"none\"}", TokenError.TokenMalformed, TestName = "A_header_with_a_repeated_alg_is_not_a_JWS")]
    [TestCase("[1]", TokenError.TokenMalformed, TestName = "A_header_that_is_not_an_object_is_not_a_JWS")]
    public void Header_decides(string header, TokenError expected)
    {
        Assert.That(Probe(Token(header, "{\"iss\":\"a\"}")).Error, Is.EqualTo(expected));
    }

    [TestCase("2YotnFZFEjr1zCsicMWpAA", TestName = "An_opaque_token_is_not_a_JWS")]
    [TestCase("a.b", TestName = "Two_parts_are_not_a_JWS")]
    [TestCase("eyJhbGciOiJSUzI1NiJ9.e30.c2ln.x.y", TestName = "Five_parts_are_not_a_JWS")]
    [TestCase("eyJhbGciOiJSUzI1NiJ9.e30=.c2ln", TestName = "Padding_is_not_base64url")]
    [TestCase(".e30.c2ln", TestName = "An_empty_header_is_not_a_JWS")]
    public void Shape_decides(string token)
    {
        Assert.That(Probe(token).Error, Is.EqualTo(TokenError.TokenMalformed));
    }

    [Test]
    public void An_issuer_that_does_not_fit_the_buffer_is_refused()
    {
        byte[] token = Encoding.UTF8.GetBytes(Token("{\"alg\":\"RS256\"}", "{\"iss\":\"https://a.example\"}"));

        Assert.That(JwsProbe.Probe(token, new byte[4]).Error, Is.EqualTo(TokenError.TokenTooLarge));
    }

    [Test]
    public void A_token_over_the_size_limit_is_too_large()
    {
        string token = Token("{\"alg\":\"RS256\"}", "{}", new string('a', Limits.MaxToken));

        Assert.That(Probe(token).Error, Is.EqualTo(TokenError.TokenTooLarge));
    }
}
