using System;
using System.Text;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.Policy;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>
/// auth_jwt_provider in the core: the unverified iss that chooses the
/// provider, and a provider's checks (iss, RFC 9068 typ, exp, lifetime,
/// audience) on a verification and on decoded parts (cache hits).
/// </summary>
public sealed class ProviderTests
{
    private const string Issuer = "https://a.example";
    private const string AtJwt = "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}";

    private KeySet _keys = null!;

    [SetUp]
    public void SetUp() => _keys = T.Keys(T.Jwks(T.OctJwk(T.HmacSecret)));

    [TearDown]
    public void TearDown() => _keys.Dispose();

    private static string Sign(string header, string payload) =>
        T.Token(header, payload, T.Hmac(JwsAlgorithm.HS256, T.HmacSecret));

    private static string Payload(string extra = "", long iat = T.Now - 60, long exp = T.Now + 300) =>
        $"{{\"iss\":\"{Issuer}\",\"sub\":\"alice\",\"iat\":{iat},\"exp\":{exp}{extra}}}";

    private VerificationPolicy Provider(ProviderOptions options = ProviderOptions.None, long maxLifetime = 0,
        params string[] audiences)
    {
        VerificationPolicy policy = T.Policy(_keys);
        Assert.That(policy.SetProfile(T.U(Issuer), options, maxLifetime), Is.EqualTo(ConfigError.None));
        foreach (string audience in audiences)
        {
            Assert.That(policy.AddAudience(T.U(audience)), Is.EqualTo(ConfigError.None));
        }
        return policy;
    }

    // ---- the unverified iss -------------------------------------------------

    private static (IssuerResult, string) Issuer_of(string token, int cap = 256)
    {
        byte[] output = new byte[cap];
        IssuerResult result = ProviderChecks.ReadIssuer(T.U(token), output, out int length);
        return (result, result == IssuerResult.Ok ? Encoding.UTF8.GetString(output, 0, length) : "");
    }

    [Test]
    public void The_issuer_is_read_without_verifying_the_signature()
    {
        string token = T.B64(AtJwt) + "." + T.B64(Payload()) + ".c2ln";
        Assert.That(Issuer_of(token), Is.EqualTo((IssuerResult.Ok, Issuer)));
    }

    [Test]
    public void An_escaped_issuer_is_read_unescaped()
    {
        string token = T.B64(AtJwt) + "." + T.B64("{\"iss\":\"https:\\/\\/a.example\\u002f\"}") + ".c2ln";
        Assert.That(Issuer_of(token), Is.EqualTo((IssuerResult.Ok, "https://a.example/")));
    }

    [TestCase("{\"sub\":\"alice\"}", IssuerResult.NotFound, TestName = "A_payload_without_iss_names_no_issuer")]
    [TestCase("{\"iss\":1}", IssuerResult.NotFound, TestName = "An_iss_that_is_not_a_string_names_no_issuer")]
    [TestCase("{\"iss\":\"a\",\"iss\":\"b\"}", IssuerResult.TokenMalformed, TestName = "A_repeated_iss_is_malformed")]
    [TestCase("[\"iss\"]", IssuerResult.TokenMalformed, TestName = "A_payload_that_is_not_an_object_is_malformed")]
    [TestCase("{\"iss\":", IssuerResult.TokenMalformed, TestName = "A_payload_that_is_not_JSON_is_malformed")]
    public void Payloads_that_name_no_issuer(string payload, IssuerResult expected)
    {
        string token = T.B64(AtJwt) + "." + T.B64(payload) + ".c2ln";
        Assert.That(Issuer_of(token).Item1, Is.EqualTo(expected));
    }

    [TestCase("a.b", TestName = "Two_segments_name_no_issuer")]
    [TestCase("a.b.c.d.e", TestName = "A_JWE_names_no_issuer")]
    [TestCase("a.e30+.c", TestName = "Padding_or_plus_in_base64url_names_no_issuer")]
    [TestCase("a..c", TestName = "An_empty_payload_names_no_issuer")]
    public void Tokens_that_are_not_a_JWS_are_malformed(string token)
    {
        Assert.That(Issuer_of(token).Item1, Is.EqualTo(IssuerResult.TokenMalformed));
    }

    [Test]
    public void A_small_buffer_reports_the_length_needed()
    {
        string token = T.B64(AtJwt) + "." + T.B64(Payload()) + ".c2ln";
        IssuerResult result = ProviderChecks.ReadIssuer(T.U(token), new byte[4], out int length);
        Assert.That(result, Is.EqualTo(IssuerResult.BufferTooSmall));
        Assert.That(length, Is.EqualTo(Issuer.Length));
    }

    // ---- the provider's checks ---------------------------------------------

    [Test]
    public void A_token_of_the_provider_passes()
    {
        using VerificationPolicy policy = Provider(ProviderOptions.AccessTokenType | ProviderOptions.RequireExp, 600,
            "api");
        Assert.That(T.VerifyError(policy, Sign(AtJwt, Payload(",\"aud\":\"api\""))), Is.EqualTo(TokenError.None));
    }

    [Test]
    public void Another_issuer_is_refused_even_with_a_good_signature()
    {
        using VerificationPolicy policy = Provider();
        string token = Sign(AtJwt, Payload().Replace(Issuer, "https://b.example", StringComparison.Ordinal));
        Assert.That(T.VerifyError(policy, token), Is.EqualTo(TokenError.IssuerMismatch));
        Assert.That(T.VerifyError(policy, Sign(AtJwt, "{\"sub\":\"alice\",\"exp\":2000000000}")),
            Is.EqualTo(TokenError.IssuerMismatch));
    }

    [Test]
    public void The_signature_is_checked_before_the_issuer()
    {
        using VerificationPolicy policy = Provider();
        string token = T.B64(AtJwt) + "." + T.B64(Payload().Replace(Issuer, "x", StringComparison.Ordinal)) + ".c2ln";
        Assert.That(T.VerifyError(policy, token), Is.EqualTo(TokenError.BadSignature));
    }

    [TestCase("at+jwt", TokenError.None)]
    [TestCase("AT+JWT", TokenError.None)]
    [TestCase("application/at+jwt", TokenError.None)]
    [TestCase("Application/At+Jwt", TokenError.None)]
    [TestCase("JWT", TokenError.AtTypeMismatch)]
    [TestCase("at+jwt ", TokenError.AtTypeMismatch)]
    [TestCase("application/jwt", TokenError.AtTypeMismatch)]
    public void Typ_at_jwt_is_required_case_insensitively(string typ, TokenError expected)
    {
        using VerificationPolicy policy = Provider(ProviderOptions.AccessTokenType);
        string header = $"{{\"alg\":\"HS256\",\"typ\":\"{typ}\"}}";
        Assert.That(T.VerifyError(policy, Sign(header, Payload())), Is.EqualTo(expected));
    }

    [Test]
    public void A_missing_or_non_string_typ_is_refused()
    {
        using VerificationPolicy policy = Provider(ProviderOptions.AccessTokenType);
        Assert.That(T.VerifyError(policy, Sign("{\"alg\":\"HS256\"}", Payload())), Is.EqualTo(TokenError.AtTypeMismatch));
        Assert.That(T.VerifyError(policy, Sign("{\"alg\":\"HS256\",\"typ\":1}", Payload())),
            Is.EqualTo(TokenError.AtTypeMismatch));
    }

    [Test]
    public void Require_exp_applies_even_when_validate_exp_is_off()
    {
        using VerificationPolicy policy = new(false, true, 0);
        policy.AddKeySet(_keys);
        Assert.That(policy.SetProfile(T.U(Issuer), ProviderOptions.RequireExp, 0), Is.EqualTo(ConfigError.None));

        Assert.That(T.VerifyError(policy, Sign(AtJwt, $"{{\"iss\":\"{Issuer}\"}}")), Is.EqualTo(TokenError.ExpMissing));
        Assert.That(T.VerifyError(policy, Sign(AtJwt, $"{{\"iss\":\"{Issuer}\",\"exp\":\"soon\"}}")),
            Is.EqualTo(TokenError.ExpMissing));
        Assert.That(T.VerifyError(policy, Sign(AtJwt, Payload(exp: T.Now - 1))), Is.EqualTo(TokenError.Expired));
        Assert.That(T.VerifyError(policy, Sign(AtJwt, Payload())), Is.EqualTo(TokenError.None));
    }

    [TestCase(600, 0, TokenError.None, TestName = "A_lifetime_of_exactly_max_lifetime_passes")]
    [TestCase(601, 0, TokenError.LifetimeTooLong, TestName = "A_lifetime_one_second_over_max_lifetime_is_refused")]
    [TestCase(60, 0, TokenError.None, TestName = "A_short_lifetime_passes")]
    public void Max_lifetime_limits_exp_minus_iat(long lifetime, int unused, TokenError expected)
    {
        using VerificationPolicy policy = Provider(maxLifetime: 600);
        long iat = T.Now - 10;
        Assert.That(T.VerifyError(policy, Sign(AtJwt, Payload(iat: iat, exp: iat + lifetime))), Is.EqualTo(expected));
    }

    [Test]
    public void Max_lifetime_needs_both_iat_and_exp()
    {
        using VerificationPolicy policy = new(false, true, 0);
        policy.AddKeySet(_keys);
        Assert.That(policy.SetProfile(T.U(Issuer), ProviderOptions.None, 600), Is.EqualTo(ConfigError.None));

        Assert.That(T.VerifyError(policy, Sign(AtJwt, $"{{\"iss\":\"{Issuer}\",\"exp\":{T.Now + 60}}}")),
            Is.EqualTo(TokenError.IatMissing));
        Assert.That(T.VerifyError(policy, Sign(AtJwt, $"{{\"iss\":\"{Issuer}\",\"iat\":{T.Now}}}")),
            Is.EqualTo(TokenError.ExpMissing));
        Assert.That(T.VerifyError(policy, Sign(AtJwt, $"{{\"iss\":\"{Issuer}\",\"iat\":1e999,\"exp\":{T.Now + 60}}}")),
            Is.EqualTo(TokenError.TimeInvalid));
    }

    [TestCase("\"api\"", TokenError.None)]
    [TestCase("[\"other\",\"https://api2.example\"]", TokenError.None)]
    [TestCase("\"web\"", TokenError.AudienceMismatch)]
    [TestCase("[\"web\",\"x\"]", TokenError.AudienceMismatch)]
    [TestCase("[]", TokenError.AudienceMismatch)]
    [TestCase("[1,\"API\"]", TokenError.AudienceMismatch)]
    [TestCase("null", TokenError.AudienceMismatch)]
    public void The_audience_must_be_one_of_the_providers(string aud, TokenError expected)
    {
        using VerificationPolicy policy = Provider(audiences: ["api", "https://api2.example"]);
        Assert.That(T.VerifyError(policy, Sign(AtJwt, Payload($",\"aud\":{aud}"))), Is.EqualTo(expected));
    }

    [Test]
    public void Without_audiences_aud_is_not_checked()
    {
        using VerificationPolicy policy = Provider();
        Assert.That(T.VerifyError(policy, Sign(AtJwt, Payload(",\"aud\":\"anything\""))), Is.EqualTo(TokenError.None));
        Assert.That(T.VerifyError(policy, Sign(AtJwt, Payload())), Is.EqualTo(TokenError.None));
    }

    [Test]
    public void Decoded_parts_get_the_providers_checks_too()
    {
        using VerificationPolicy policy = Provider(ProviderOptions.AccessTokenType, 0, "api");
        VerifyResult ok = JwtVerifier.CheckDecoded(policy, T.U(AtJwt), T.U(Payload(",\"aud\":\"api\"")), T.Now,
            new NoRuleValues());
        VerifyResult other = JwtVerifier.CheckDecoded(policy, T.U(AtJwt), T.U(Payload(",\"aud\":\"web\"")), T.Now,
            new NoRuleValues());
        VerifyResult typ = JwtVerifier.CheckDecoded(policy, T.U("{\"alg\":\"HS256\"}"), T.U(Payload(",\"aud\":\"api\"")),
            T.Now, new NoRuleValues());
        Assert.That(ok.Error, Is.EqualTo(TokenError.None));
        Assert.That(other.Error, Is.EqualTo(TokenError.AudienceMismatch));
        Assert.That(typ.Error, Is.EqualTo(TokenError.AtTypeMismatch));
    }

    [Test]
    public void A_profile_needs_a_UTF8_issuer_and_audiences_need_a_profile()
    {
        using VerificationPolicy policy = T.Policy(_keys);
        Assert.That(policy.AddAudience(T.U("api")), Is.EqualTo(ConfigError.ValueTypeInvalid));
        Assert.That(policy.SetProfile(ReadOnlySpan<byte>.Empty, ProviderOptions.None, 0),
            Is.EqualTo(ConfigError.ValueTypeInvalid));
        Assert.That(policy.SetProfile(new byte[] { 0xff }, ProviderOptions.None, 0),
            Is.EqualTo(ConfigError.ValueTypeInvalid));
        Assert.That(policy.SetProfile(T.U(Issuer), ProviderOptions.None, -1), Is.EqualTo(ConfigError.ValueTypeInvalid));
        Assert.That(policy.SetProfile(T.U(Issuer), ProviderOptions.None, 0), Is.EqualTo(ConfigError.None));
        Assert.That(policy.AddAudience(ReadOnlySpan<byte>.Empty), Is.EqualTo(ConfigError.ValueTypeInvalid));
    }
}
