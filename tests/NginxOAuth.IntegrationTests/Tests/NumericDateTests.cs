using System;
using System.Globalization;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// exp and nbf in every JSON number form (integer, fraction, exponent) are
/// read one way, as whole seconds rounded down, by the verification and by
/// the verified-token cache's TTL; numbers outside a 64-bit second count
/// are invalid time claims (401). Each case runs on a location without a
/// cache, with a cache (a miss, then what would be a hit) and with a key
/// request in front of the cache.
/// </summary>
[TestFixture]
public sealed class NumericDateTests : NginxFixture
{
    private static readonly string[] Locations = ["/plain", "/cached", "/fetched"];

    private FakeHttpServer _keys = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _keys = await FakeHttpServer.StartAsync();
        _keys.Set("/jwks", FakeResponse.Json(Keys.DefaultJwks));
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "time";

                location /plain { auth_jwt_key_file keys.jwks; {{echo}} }
                location /cached {
                    auth_jwt_key_file keys.jwks;
                    auth_jwt_verify_cache zone=nd:1m max_ttl=300s;
                    {{echo}}
                }
                location /fetched {
                    auth_jwt_key_request /_keys/jwks;
                    auth_jwt_verify_cache zone=ndf:1m max_ttl=300s;
                    {{echo}}
                }
                location /_keys/ { internal; auth_jwt off; proxy_pass {{_keys.BaseUrl}}/; }
            }
            """);
    }

    protected override async Task OnStopping() => await _keys.DisposeAsync();

    /// <summary>A token whose payload holds exactly these exp / nbf texts (null: absent).</summary>
    private static string Token(string sub, string? exp, string? nbf = null)
    {
        string payload = "{\"sub\":\"" + sub + "\""
            + (exp is null ? "" : ",\"exp\":" + exp)
            + (nbf is null ? "" : ",\"nbf\":" + nbf) + "}";
        string header = "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"" + Keys.Rs256.Kid + "\"}";
        return TokenFactory.SignRaw(Keys.Rs256, header, payload);
    }

    private static string Text(long n) => n.ToString(CultureInfo.InvariantCulture);

    /// <summary>Two requests on every location (a miss, then a hit where the token is cacheable).</summary>
    private async Task ExpectEverywhere(string token, int status, string what)
    {
        foreach (string location in Locations)
        {
            for (int i = 0; i < 2; i++)
            {
                HttpReply reply = await Nginx.GetAsync(location, token);
                Assert.That(reply.Status, Is.EqualTo(status), $"{what}: {location}, request {i + 1}: {reply}");
            }
        }
    }

    /// <summary>Waits until the wall clock is past <paramref name="unixSeconds"/> by at least a second.</summary>
    private static Task WaitUntilPast(double unixSeconds) =>
        Poll.UntilAsync(() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0,
            now => now >= Math.Floor(unixSeconds) + 1.2, $"the clock to pass {unixSeconds}",
            TimeSpan.FromSeconds(30));

    [Test]
    public async Task Exp_in_exponent_form_in_the_future_is_accepted()
    {
        long exp = TokenFactory.Now + 3600;
        await ExpectEverywhere(Token("e1", Text(exp * 10) + "e-1"), 200, "exp*10 e-1");
        await ExpectEverywhere(Token("e2", Text(exp / 100) + "." + Text(exp % 100).PadLeft(2, '0') + "E+2"), 200,
            "exp as d.dd E+2");
    }

    [Test]
    public async Task Exp_in_exponent_form_in_the_past_is_rejected()
    {
        long exp = TokenFactory.Now - 60;
        await ExpectEverywhere(Token("e3", Text(exp * 10) + "e-1"), 401, "past exp*10 e-1");
    }

    [Test]
    public async Task Cached_token_with_an_exponent_form_exp_is_rejected_once_it_expired()
    {
        // the attack campaign's case: exp = 17961582910e-1 style, a few seconds
        // away (wide enough for the first requests on a loaded machine)
        long exp = TokenFactory.Now + 8;
        string token = Token("e4", Text(exp * 10) + "e-1");
        foreach (string location in Locations)
        {
            Assert.That((await Nginx.GetAsync(location, token)).Status, Is.EqualTo(200), location);
        }

        await WaitUntilPast(exp);

        foreach (string location in Locations)
        {
            HttpReply reply = await Nginx.GetAsync(location, token);
            Assert.That(reply.Status, Is.EqualTo(401), $"{location} after exp: {reply}");
        }
    }

    [Test]
    public async Task Cached_token_with_a_fractional_exp_is_rejected_once_it_expired()
    {
        double exp = TokenFactory.Now + 8.5;
        string token = Token("f1", exp.ToString("0.0", CultureInfo.InvariantCulture));
        foreach (string location in Locations)
        {
            Assert.That((await Nginx.GetAsync(location, token)).Status, Is.EqualTo(200), location);
        }

        await WaitUntilPast(exp);

        foreach (string location in Locations)
        {
            HttpReply reply = await Nginx.GetAsync(location, token);
            Assert.That(reply.Status, Is.EqualTo(401), $"{location} after exp: {reply}");
        }
    }

    [Test]
    public async Task Fractional_exp_in_the_past_is_rejected()
    {
        await ExpectEverywhere(Token("f2", Text(TokenFactory.Now - 30) + ".75"), 401, "past fractional exp");
    }

    [TestCase("1e999")]
    [TestCase("1E+400")]
    [TestCase("9223372036854775808")]
    [TestCase("99999999999999999999999999999999")]
    [TestCase("-1e999")]
    [TestCase("-9223372036854775809")]
    public async Task Exp_outside_a_64_bit_second_count_is_rejected(string exp)
    {
        await ExpectEverywhere(Token("h-" + exp.GetHashCode(StringComparison.Ordinal), exp), 401, "exp " + exp);
        Nginx.WaitForLogLine(TestLogMark, @"\[info\].*auth_jwt: rejected: .*(time|exp)");
    }

    [Test]
    public async Task Largest_64_bit_exp_is_accepted_and_cached_without_overflow()
    {
        await ExpectEverywhere(Token("max", "9223372036854775807"), 200, "exp = 2^63 - 1");
    }

    [TestCase("-1")]
    [TestCase("-5.5")]
    [TestCase("0")]
    [TestCase("-9223372036854775808")]
    public async Task Negative_or_zero_exp_is_expired(string exp)
    {
        await ExpectEverywhere(Token("n-" + exp.GetHashCode(StringComparison.Ordinal), exp), 401, "exp " + exp);
    }

    [TestCase("-1e999")]
    [TestCase("1e999")]
    [TestCase("-9223372036854775809")]
    public async Task Nbf_outside_a_64_bit_second_count_is_rejected(string nbf)
    {
        string token = Token("nbf-" + nbf.GetHashCode(StringComparison.Ordinal), Text(TokenFactory.Now + 3600), nbf);
        await ExpectEverywhere(token, 401, "nbf " + nbf);
    }

    [Test]
    public async Task Nbf_in_fraction_and_exponent_forms_in_the_past_is_accepted()
    {
        string exp = Text(TokenFactory.Now + 3600);
        await ExpectEverywhere(Token("nbf1", exp, "-1.5"), 200, "nbf -1.5");
        await ExpectEverywhere(Token("nbf2", exp, Text(TokenFactory.Now - 60) + "0e-1"), 200, "nbf past e-1");
        await ExpectEverywhere(Token("nbf3", exp, "1e9"), 200, "nbf 1e9 (2001)");
    }

    [Test]
    public async Task Nbf_in_exponent_form_in_the_future_is_rejected()
    {
        string exp = Text(TokenFactory.Now + 3600);
        await ExpectEverywhere(Token("nbf4", exp, Text(TokenFactory.Now + 600) + "0e-1"), 401, "future nbf e-1");
    }
}
