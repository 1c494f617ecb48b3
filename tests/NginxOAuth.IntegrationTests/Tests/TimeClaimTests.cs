using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>exp, nbf, auth_jwt_validate_exp and auth_jwt_leeway.</summary>
[TestFixture]
public sealed class TimeClaimTests : NginxFixture
{
    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "time";
                auth_jwt_key_file keys.jwks;

                location /strict {
                    {{echo}}
                }

                location /noexp {
                    auth_jwt_validate_exp off;
                    {{echo}}
                }

                location /leeway {
                    auth_jwt_leeway 60s;
                    {{echo}}
                }

                location /leeway-minutes {
                    auth_jwt_leeway 2m;
                    {{echo}}
                }

                location /require-exp {
                    auth_jwt_require_claim exp gt json=0;
                    {{echo}}
                }

                location /nosig {
                    auth_jwt_validate_sig off;
                    {{echo}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    private static string Token(long? expOffset, long? nbfOffset = null, JsonNode? exp = null)
    {
        JsonObject claims = TokenFactory.Claims("t");
        claims.Remove("exp");
        if (expOffset is { } e)
        {
            claims["exp"] = TokenFactory.Now + e;
        }

        if (exp is not null)
        {
            claims["exp"] = exp;
        }

        if (nbfOffset is { } n)
        {
            claims["nbf"] = TokenFactory.Now + n;
        }

        return TokenFactory.Sign(Keys.Rs256, claims);
    }

    private async Task<int> StatusAsync(string path, string token)
    {
        HttpReply reply = await Nginx.GetAsync(path, token);
        if (reply.Status == 401)
        {
            Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"time\", error=\"invalid_token\""));
        }

        return reply.Status;
    }

    [Test]
    public async Task Token_that_expires_later_is_accepted()
    {
        Assert.That(await StatusAsync("/strict", Token(3600)), Is.EqualTo(200));
        Assert.That(await StatusAsync("/strict", Token(10L * 365 * 86400)), Is.EqualTo(200));
    }

    [TestCase(-30)]
    [TestCase(-86400)]
    [TestCase(0)]
    public async Task Expired_token_is_rejected(long expOffset)
    {
        Assert.That(await StatusAsync("/strict", Token(expOffset)), Is.EqualTo(401));
    }

    [Test]
    public async Task Expired_token_is_logged_as_expired()
    {
        await Nginx.GetAsync("/strict", Token(-30));

        Nginx.WaitForLogLine(TestLogMark, @"\[info\].*auth_jwt: rejected: token expired");
    }

    [Test]
    public async Task Token_without_exp_is_rejected_while_validate_exp_is_on()
    {
        Assert.That(await StatusAsync("/strict", Token(null)), Is.EqualTo(401));
    }

    [TestCase("\"99999999999\"")]
    [TestCase("null")]
    [TestCase("true")]
    [TestCase("[99999999999]")]
    [TestCase("{\"at\":99999999999}")]
    public async Task Exp_that_is_not_a_number_is_rejected(string exp)
    {
        Assert.That(await StatusAsync("/strict", Token(null, exp: JsonNode.Parse(exp))), Is.EqualTo(401));
    }

    [Test]
    public async Task Fractional_exp_in_the_future_is_accepted()
    {
        Assert.That(await StatusAsync("/strict", Token(null, exp: JsonValue.Create(TokenFactory.Now + 3600.5))), Is.EqualTo(200));
    }

    [Test]
    public async Task Validate_exp_off_accepts_expired_tokens_and_tokens_without_exp()
    {
        Assert.That(await StatusAsync("/noexp", Token(-86400)), Is.EqualTo(200));
        Assert.That(await StatusAsync("/noexp", Token(null)), Is.EqualTo(200));
    }

    [Test]
    public async Task Nbf_in_the_future_is_rejected()
    {
        Assert.That(await StatusAsync("/strict", Token(3600, nbfOffset: 120)), Is.EqualTo(401));
        Nginx.WaitForLogLine(TestLogMark, @"\[info\].*auth_jwt: rejected: token not yet valid");
    }

    [Test]
    public async Task Nbf_is_checked_even_when_validate_exp_is_off()
    {
        Assert.That(await StatusAsync("/noexp", Token(null, nbfOffset: 120)), Is.EqualTo(401));
    }

    [Test]
    public async Task Nbf_in_the_past_or_now_is_accepted()
    {
        Assert.That(await StatusAsync("/strict", Token(3600, nbfOffset: -120)), Is.EqualTo(200));
        Assert.That(await StatusAsync("/strict", Token(3600, nbfOffset: 0)), Is.EqualTo(200));
    }

    [Test]
    public async Task Leeway_accepts_a_recently_expired_token()
    {
        Assert.That(await StatusAsync("/strict", Token(-20)), Is.EqualTo(401), "without leeway");
        Assert.That(await StatusAsync("/leeway", Token(-20)), Is.EqualTo(200), "with 60s leeway");
    }

    [Test]
    public async Task Leeway_does_not_accept_a_token_expired_longer_ago()
    {
        Assert.That(await StatusAsync("/leeway", Token(-90)), Is.EqualTo(401));
    }

    [Test]
    public async Task Leeway_accepts_a_token_slightly_before_its_nbf()
    {
        Assert.That(await StatusAsync("/leeway", Token(3600, nbfOffset: 20)), Is.EqualTo(200));
        Assert.That(await StatusAsync("/leeway", Token(3600, nbfOffset: 90)), Is.EqualTo(401));
    }

    [Test]
    public async Task Leeway_takes_nginx_time_units()
    {
        Assert.That(await StatusAsync("/leeway-minutes", Token(-90)), Is.EqualTo(200));
        Assert.That(await StatusAsync("/leeway-minutes", Token(-150)), Is.EqualTo(401));
    }

    [Test]
    public async Task Passing_require_claim_on_exp_does_not_disable_the_exp_check()
    {
        // nginx-auth-jwt skips its exp check when such a rule passes; this module does not
        Assert.That(await StatusAsync("/require-exp", Token(3600)), Is.EqualTo(200));
        Assert.That(await StatusAsync("/require-exp", Token(-30)), Is.EqualTo(401));
    }

    [Test]
    public async Task Exp_is_checked_when_validate_sig_is_off()
    {
        Assert.That(await StatusAsync("/nosig", Token(-30)), Is.EqualTo(401));
        Assert.That(await StatusAsync("/nosig", Token(3600)), Is.EqualTo(200));
    }
}
