using System;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>
/// What the module accepts from an IdP, with and without its caches:
/// introspection "exp" in every JSON number form (rounded down; an exp that
/// has passed makes the token inactive; a number outside a 64-bit second
/// count is an unusable answer), the introspection cache's TTL, exchange
/// "expires_in" in every form for the exchange cache, issued tokens with
/// control characters (header injection), and answers that are not UTF-8.
/// Each test sets the IdP's answer and uses its own token.
/// </summary>
[TestFixture]
public sealed class IdpAnswerTests : NginxFixture
{
    private FakeHttpServer _idp = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeHttpServer.StartAsync();
        _idp.Set("/backend", FakeResponse.Json("{\"backend\":true}"));
        string echo = nginx.Echo("sub=$oauth2_token_sub");
        string backend = $"proxy_pass {_idp.BaseUrl}/backend;";
        nginx.Start($$"""
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret s;

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /_introspect { internal; proxy_pass {{_idp.BaseUrl}}/introspect; }
                location = /_token { internal; proxy_pass {{_idp.BaseUrl}}/token; }
                auth_oauth2_token_introspect_endpoint /_introspect;
                auth_oauth2_token_token_endpoint /_token;

                location /i { auth_oauth2_token_introspect on; {{echo}} }
                location /ic {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=ic:1m max_ttl=60s;
                    {{echo}}
                }
                location /x { auth_oauth2_token_exchange on; {{backend}} }
                location /xc {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_exchange_cache zone=xc:1m max_ttl=60s;
                    {{backend}}
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private static string Text(long n) => n.ToString(CultureInfo.InvariantCulture);

    private void Introspection(string exp) =>
        _idp.Set("/introspect", FakeResponse.Json("{\"active\":true,\"sub\":\"alice\",\"exp\":" + exp + "}"));

    private void Exchange(string accessTokenJson, string expiresIn = "3600") =>
        _idp.Set("/token", FakeResponse.Json("{\"access_token\":" + accessTokenJson
            + ",\"issued_token_type\":\"urn:ietf:params:oauth:token-type:access_token\",\"token_type\":\"Bearer\","
            + "\"expires_in\":" + expiresIn + "}"));

    private static string NewToken(string what) => what + "-" + Guid.NewGuid().ToString("N");

    private static Task WaitUntilPast(double unixSeconds) =>
        Poll.UntilAsync(() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0,
            now => now >= Math.Floor(unixSeconds) + 1.2, $"the clock to pass {unixSeconds}",
            TimeSpan.FromSeconds(30));

    private async Task<int> StatusAsync(string path, string token) => (await Nginx.GetAsync(path, token)).Status;

    // ---- introspection exp ---------------------------------------------------

    [TestCase("-100")]
    [TestCase("-100.5")]
    [TestCase("-1000e-1")]
    public async Task Introspection_answer_whose_exp_has_passed_is_inactive(string offset)
    {
        // now + offset in the given form: "-100" -> now-100, "-1000e-1" -> (now*10-1000)e-1
        string exp = offset.Contains('e', StringComparison.Ordinal)
            ? Text(Now * 10 - 1000) + "e-1"
            : offset.Contains('.', StringComparison.Ordinal) ? Text(Now - 101) + ".5" : Text(Now - 100);
        Introspection(exp);
        string token = NewToken("past");

        foreach (string path in new[] { "/i", "/ic", "/ic" })
        {
            HttpReply reply = await Nginx.GetAsync(path, token);
            Assert.That(reply.Status, Is.EqualTo(401), $"{path} exp {exp}: {reply}");
            Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        }

        Nginx.WaitForLogLine(TestLogMark, @"\[info\].*auth_oauth2_token: rejected: .*exp");
    }

    [Test]
    public async Task Introspection_answer_with_exp_equal_to_now_is_inactive()
    {
        Introspection(Text(Now));
        Assert.That(await StatusAsync("/i", NewToken("now")), Is.EqualTo(401));
    }

    [TestCase("0")]
    [TestCase("-9223372036854775808")]
    public async Task Introspection_answer_with_zero_or_negative_exp_is_inactive(string exp)
    {
        Introspection(exp);
        Assert.That(await StatusAsync("/ic", NewToken("neg")), Is.EqualTo(401));
    }

    [Test]
    public async Task Introspection_exp_in_every_number_form_in_the_future_is_accepted_and_cached()
    {
        long exp = Now + 3600;
        foreach (string form in new[] { Text(exp), Text(exp) + ".25", Text(exp * 100) + "e-2", Text(exp) + "E0" })
        {
            Introspection(form);
            string token = NewToken("future");
            int before = _idp.Count("/introspect");
            Assert.That(await StatusAsync("/i", token), Is.EqualTo(200), form);
            Assert.That(await StatusAsync("/ic", token), Is.EqualTo(200), form);
            Assert.That(await StatusAsync("/ic", token), Is.EqualTo(200), form);
            Assert.That(_idp.Count("/introspect") - before, Is.EqualTo(2), $"{form}: the second /ic is a hit");
        }
    }

    [TestCase("fraction")]
    [TestCase("exponent")]
    public async Task Cached_introspection_ends_at_exp(string form)
    {
        long now = Now;
        double exp = now + 8.5; // wide enough for the first request on a loaded machine
        Introspection(form == "fraction" ? Text(now + 8) + ".5" : Text(now * 10 + 85) + "e-1");
        string token = NewToken("ttl-" + form);

        Assert.That(await StatusAsync("/ic", token), Is.EqualTo(200), "before exp");
        await WaitUntilPast(exp);

        // the IdP still says active with the same (now past) exp: neither the
        // cache nor the answer may let the token through
        HttpReply after = await Nginx.GetAsync("/ic", token);
        Assert.That(after.Status, Is.EqualTo(401), "after exp: " + after);
    }

    [TestCase("1e999")]
    [TestCase("-1e999")]
    [TestCase("9223372036854775808")]
    [TestCase("\"2000000000\"")]
    [TestCase("true")]
    public async Task Introspection_exp_that_is_not_a_64_bit_second_count_is_an_unusable_answer(string exp)
    {
        Introspection(exp);
        string token = NewToken("bad-exp");

        Assert.That(await StatusAsync("/i", token), Is.EqualTo(502), exp);
        Assert.That(await StatusAsync("/ic", token), Is.EqualTo(502), exp);
        Assert.That(await StatusAsync("/ic", token), Is.EqualTo(502), exp + " (never cached)");
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*auth_oauth2_token: introspection .*unusable");
    }

    [Test]
    public async Task Introspection_exp_null_means_no_exp()
    {
        Introspection("null");
        Assert.That(await StatusAsync("/ic", NewToken("null-exp")), Is.EqualTo(200));
    }

    // ---- UTF-8 ---------------------------------------------------------------

    [Test]
    public async Task Introspection_answer_that_is_not_UTF8_is_refused()
    {
        byte[] body = [.. "{\"active\":true,\"sub\":\"al"u8, 0xff, 0xfe, .. "ice\"}"u8];
        _idp.Set("/introspect", FakeResponse.Bytes(body));
        string token = NewToken("utf8");

        HttpReply reply = await Nginx.GetAsync("/i", token);
        Assert.That(reply.Status, Is.EqualTo(502), reply.ToString());
        Assert.That(await StatusAsync("/ic", token), Is.EqualTo(502));
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*introspection .*not valid UTF-8");
    }

    [Test]
    public async Task Exchange_answer_that_is_not_UTF8_is_refused()
    {
        byte[] body = [.. "{\"access_token\":\"new"u8, 0xc3, 0x28, .. "\",\"token_type\":\"Bearer\"}"u8];
        _idp.Set("/token", FakeResponse.Bytes(body));
        int before = _idp.Count("/backend");

        Assert.That(await StatusAsync("/x", NewToken("utf8x")), Is.EqualTo(502));
        Assert.That(_idp.Count("/backend"), Is.EqualTo(before), "the upstream is never reached");
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*token exchange .*not valid UTF-8");
    }

    [Test]
    public async Task Introspection_answer_with_a_lone_surrogate_escape_is_refused_without_an_alert()
    {
        _idp.Set("/introspect", FakeResponse.Json("{\"active\":true,\"sub\":\"a\\ud800\"}"));
        string token = NewToken("surrogate");

        Assert.That(await StatusAsync("/i", token), Is.EqualTo(502));
        Assert.That(await StatusAsync("/ic", token), Is.EqualTo(502));
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*introspection .*unusable response .*invalid JSON");
        Assert.That(Nginx.ProblemLines(TestLogMark), Is.Empty);
    }

    // ---- issued tokens (header injection) ------------------------------------

    [TestCase("\"NEW\\r\\nX-Injected: yes\"", "CRLF")]
    [TestCase("\"NEW\\nX-Injected: yes\"", "LF")]
    [TestCase("\"NEW\\rX-Injected: yes\"", "CR")]
    [TestCase("\"NEW\\u0000tail\"", "NUL")]
    [TestCase("\"NEW\\u001btail\"", "ESC")]
    [TestCase("\"NEW\\u007ftail\"", "DEL")]
    public async Task Issued_token_with_control_characters_is_refused(string accessToken, string what)
    {
        Exchange(accessToken);
        int before = _idp.Count("/backend");

        foreach (string path in new[] { "/x", "/xc", "/xc" })
        {
            HttpReply reply = await Nginx.GetAsync(path, NewToken("inject"));
            Assert.That(reply.Status, Is.EqualTo(502), $"{what} on {path}: {reply}");
        }

        Assert.That(_idp.Count("/backend"), Is.EqualTo(before), "the upstream is never reached");
        Assert.That(_idp.Requests("/backend").Any(r => r.Headers.ContainsKey("X-Injected")), Is.False);
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*token exchange .*control characters");
    }

    [Test]
    public async Task Issued_token_of_printable_characters_reaches_the_upstream()
    {
        Exchange("\"eyJ.a-b_c~d+e/f=\"");
        string token = NewToken("printable");

        Assert.That(await StatusAsync("/x", token), Is.EqualTo(200));
        Assert.That(_idp.Requests("/backend").Last().Headers["Authorization"], Is.EqualTo("Bearer eyJ.a-b_c~d+e/f="));
    }

    // ---- exchange expires_in -------------------------------------------------

    [TestCase("2.5")]
    [TestCase("25e-1")]
    [TestCase("0.2E1")]
    public async Task Exchange_cache_keeps_a_token_for_expires_in_rounded_down(string expiresIn)
    {
        Exchange("\"short-lived\"", expiresIn);
        string token = NewToken("ttl");

        Assert.That(await StatusAsync("/xc", token), Is.EqualTo(200));
        double stored = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

        await WaitUntilPast(stored + 2);

        int calls = _idp.Count("/token");
        Assert.That(await StatusAsync("/xc", token), Is.EqualTo(200));
        Assert.That(_idp.Count("/token"), Is.EqualTo(calls + 1),
            $"expires_in {expiresIn}: the entry ended after 2 s, not after max_ttl");
    }

    [TestCase("-1")]
    [TestCase("0")]
    [TestCase("0.5")]
    [TestCase("-1e999")]
    public async Task Exchange_answer_with_no_lifetime_left_is_used_but_not_cached(string expiresIn)
    {
        Exchange("\"at-once\"", expiresIn);
        string token = NewToken("nolife");
        int before = _idp.Count("/token");

        Assert.That(await StatusAsync("/xc", token), Is.EqualTo(200));
        Assert.That(await StatusAsync("/xc", token), Is.EqualTo(200));
        Assert.That(_idp.Count("/token") - before, Is.EqualTo(2), $"expires_in {expiresIn} is not cached");
    }

    [TestCase("1e999")]
    [TestCase("\"3600\"")]
    [TestCase("3600.9")]
    public async Task Exchange_answer_with_a_long_or_textual_lifetime_is_cached(string expiresIn)
    {
        Exchange("\"long-lived\"", expiresIn);
        string token = NewToken("long");
        int before = _idp.Count("/token");

        Assert.That(await StatusAsync("/xc", token), Is.EqualTo(200));
        Assert.That(await StatusAsync("/xc", token), Is.EqualTo(200));
        Assert.That(_idp.Count("/token") - before, Is.EqualTo(1), $"expires_in {expiresIn}: the second is a hit");
    }
}
