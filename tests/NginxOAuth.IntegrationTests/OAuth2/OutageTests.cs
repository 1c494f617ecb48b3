using System;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Sts;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>
/// auth_oauth2_token under load and during IdP outages: single-flight over
/// both workers (one IdP call for concurrent misses of one key), 503 with
/// Retry-After when the IdP does not answer, 502 when its answer is
/// unusable, stale_if_error, negative_ttl, and exchange refusals as 401 /
/// 403. The IdPs are <see cref="FaultyServer"/>s whose mode each test sets;
/// a connection is an IdP call (nginx does not keep upstream connections
/// alive here).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class OutageTests : NginxFixture
{
    private FaultyServer _introspect = null!;
    private FaultyServer _token = null!;

    private static string Active =>
        "{\"active\":true,\"sub\":\"alice\",\"exp\":" + (DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 3600) + "}";

    protected override Task StartNginx(NginxInstance nginx)
    {
        _introspect = FaultyServer.Start(Fault.WithStatus(200, Active));
        _token = FaultyServer.Start();
        int refused = FaultyServer.RefusedPort();
        string echo = nginx.Echo("pid=$pid sub=$oauth2_token_sub new=$oauth2_token_new_token");
        nginx.Start($$"""
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret s;

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /_i {
                    internal;
                    proxy_read_timeout 8s;
                    proxy_pass {{_introspect.BaseUrl}}/introspect;
                }
                location = /_t {
                    internal;
                    proxy_read_timeout 8s;
                    proxy_pass {{_token.BaseUrl}}/token;
                }
                location = /_down { internal; proxy_pass http://127.0.0.1:{{refused}}/introspect; }
                auth_oauth2_token_introspect_endpoint /_i;
                auth_oauth2_token_token_endpoint /_t;

                location /i {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=oi:1m;
                    {{echo}}
                }
                location /stale {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=oi:1m max_ttl=2s stale_if_error=4s;
                    {{echo}}
                }
                location /neg {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=oi:1m negative_ttl=60s;
                    {{echo}}
                }
                location /down {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_endpoint /_down;
                    {{echo}}
                }
                location /x {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_exchange_cache zone=ox:1m;
                    {{echo}}
                }
                location /xstale {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_exchange_cache zone=ox:1m max_ttl=2s stale_if_error=4s;
                    {{echo}}
                }
                location /xwww-off {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_www_authenticate off;
                    {{echo}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    protected override async Task OnStopping()
    {
        await _introspect.DisposeAsync();
        await _token.DisposeAsync();
    }

    private static string NewToken(string what) => what + "-" + Guid.NewGuid().ToString("N");

    private Task<HttpReply> GetAsync(string path, string token, bool close = false) =>
        Nginx.GetAsync(path, token, configure: r => r.Headers.ConnectionClose = close);

    private static string Pid(HttpReply reply) => Regex.Match(reply.Body, "pid=([0-9]+)").Groups[1].Value;

    // ---- single-flight ---------------------------------------------------------

    [Test]
    public async Task Fifty_concurrent_misses_for_one_token_make_one_introspection_over_both_workers()
    {
        _introspect.Mode = Fault.Delayed(TimeSpan.FromSeconds(1), Active);

        // scheduling may send all 50 to one worker: a new token each round
        // until both workers took part, every round checked in full
        int workers = 0;
        for (int round = 0; round < 5 && workers < 2; round++)
        {
            _introspect.ResetCounts();
            string token = NewToken("flight");

            HttpReply[] replies = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => GetAsync("/i", token, close: true)));

            Assert.That(replies.Select(r => r.Status), Is.All.EqualTo(200), string.Join("\n", replies.Select(r => r.ToString())));
            Assert.That(replies.Select(r => r.Body), Is.All.Contain("sub=alice "));
            Assert.That(_introspect.Connections, Is.EqualTo(1), "one introspection for 50 concurrent requests");
            workers = replies.Select(Pid).Distinct().Count();
        }

        Assert.That(workers, Is.EqualTo(2), "both workers took part in one of 5 rounds");
    }

    [Test]
    public async Task Fifty_concurrent_misses_for_one_token_make_one_exchange_over_both_workers()
    {
        _token.Mode = Fault.Delayed(TimeSpan.FromSeconds(1));

        int workers = 0;
        for (int round = 0; round < 5 && workers < 2; round++)
        {
            _token.ResetCounts();
            string token = NewToken("xflight");

            HttpReply[] replies = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => GetAsync("/x", token, close: true)));

            Assert.That(replies.Select(r => r.Status), Is.All.EqualTo(200), string.Join("\n", replies.Select(r => r.ToString())));
            Assert.That(replies.Select(r => r.Body), Is.All.Contain("new=faulty-server-token"));
            Assert.That(_token.Connections, Is.EqualTo(1), "one exchange for 50 concurrent requests");
            workers = replies.Select(Pid).Distinct().Count();
        }

        Assert.That(workers, Is.EqualTo(2), "both workers took part in one of 5 rounds");
    }

    [Test]
    public async Task Concurrent_requests_waiting_for_a_failed_call_answer_its_status()
    {
        _introspect.Mode = Fault.Hang();
        _introspect.ResetCounts();
        string token = NewToken("flight-fail");

        HttpReply[] replies = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => GetAsync("/i", token, close: true)));

        Assert.That(replies.Select(r => r.Status), Is.All.EqualTo(503), string.Join("\n", replies.Select(r => r.ToString())));
        Assert.That(replies.Select(r => r.Header("Retry-After").Length), Is.All.EqualTo(1));
        Assert.That(_introspect.Connections, Is.EqualTo(1), "the waiting requests took the leader's status");
    }

    // ---- outage statuses -------------------------------------------------------

    [Test]
    public async Task Unreachable_IdP_is_503_with_retry_after()
    {
        HttpReply reply = await GetAsync("/down", NewToken("down"));

        Assert.That(reply.Status, Is.EqualTo(503), reply.ToString());
        Assert.That(reply.Header("Retry-After"), Is.Not.Empty);
        Assert.That(reply.Challenge, Is.Null);
        Nginx.WaitForLogLine(TestLogMark, "\\[error\\].*introspection: \"/_down\" did not answer");
    }

    [TestCase("introspection", TestName = "Reset_connection_of_the_introspection_is_503")]
    [TestCase("exchange", TestName = "Reset_connection_of_the_exchange_is_503")]
    public async Task Reset_connection_is_503_with_retry_after(string step)
    {
        (step == "exchange" ? _token : _introspect).Mode = Fault.Reset();

        HttpReply reply = await GetAsync(step == "exchange" ? "/x" : "/i", NewToken("reset"));

        Assert.That(reply.Status, Is.EqualTo(503), reply.ToString());
        Assert.That(reply.Header("Retry-After"), Is.Not.Empty);
    }

    [TestCase("introspection", 500)]
    [TestCase("introspection", 503)]
    [TestCase("exchange", 500)]
    [TestCase("exchange", 503)]
    public async Task IdP_5xx_is_502(string step, int status)
    {
        (step == "exchange" ? _token : _introspect).Mode = Fault.WithStatus(status);

        HttpReply reply = await GetAsync(step == "exchange" ? "/x" : "/i", NewToken("5xx"));

        Assert.That(reply.Status, Is.EqualTo(502), reply.ToString());
        Assert.That(reply.Header("Retry-After"), Is.Empty);
        Assert.That(reply.Challenge, Is.Null);
        Nginx.WaitForLogLine(TestLogMark, $"\\[error\\].*answered status {status}");
    }

    [TestCase("introspection")]
    [TestCase("exchange")]
    public async Task Garbage_instead_of_HTTP_is_502(string step)
    {
        (step == "exchange" ? _token : _introspect).Mode = Fault.Garbage();

        HttpReply reply = await GetAsync(step == "exchange" ? "/x" : "/i", NewToken("garbage"));

        Assert.That(reply.Status, Is.EqualTo(502), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, "\\[error\\].*without a valid HTTP status line");
    }

    // ---- stale_if_error --------------------------------------------------------

    /// <summary>
    /// Entries live 2 s and are served up to 4 s past that while the IdP
    /// fails: every request is 200 until the IdP has been asked again (the
    /// entry expired) and then until the stale age has passed, then
    /// <paramref name="failure"/>.
    /// </summary>
    private async Task StaleWhileTheIdpFailsAsync(string path, FaultyServer idp, Fault working, Fault failing,
        int failure, string expected)
    {
        idp.Mode = working;
        string token = NewToken("stale");
        HttpReply first = await GetAsync(path, token);
        Assert.That(first.Status, Is.EqualTo(200), first.ToString());

        idp.Mode = failing;
        idp.ResetCounts();

        // the entry expires: the IdP is asked again, fails, the entry is served
        await Poll.UntilAsync(async () =>
        {
            HttpReply reply = await GetAsync(path, token);
            Assert.That(reply.Status, Is.EqualTo(200), "fresh or stale: " + reply);
            Assert.That(reply.Body, Does.Contain(expected));
            return idp.Connections;
        }, n => n > 0, "the entry to expire");

        string line = Nginx.WaitForLogLine(TestLogMark, "\\[warn\\].*serving an answer that expired [0-9]+ s ago \\(stale_if_error\\)");
        Assert.That(line, Does.Not.Contain(token));

        // past the stale age: the IdP's failure is the answer
        HttpReply last = await Poll.UntilAsync(async () =>
        {
            HttpReply reply = await GetAsync(path, token);
            Assert.That(reply.Status, Is.AnyOf(200, failure), reply.ToString());
            return reply;
        }, r => r.Status == failure, "the stale age to pass");

        Assert.That(last.Status, Is.EqualTo(failure));
    }

    [Test]
    public Task Stale_introspection_answer_is_served_while_the_IdP_answers_5xx_until_the_stale_age() =>
        StaleWhileTheIdpFailsAsync("/stale", _introspect, Fault.WithStatus(200, Active), Fault.WithStatus(500), 502,
            "sub=alice ");

    [Test]
    public Task Stale_exchanged_token_is_served_while_the_IdP_is_unreachable_until_the_stale_age() =>
        StaleWhileTheIdpFailsAsync("/xstale", _token, Fault.WithStatus(200, Fault.TokenJson), Fault.Reset(), 503,
            "new=faulty-server-token");

    // ---- negative cache --------------------------------------------------------

    [Test]
    public async Task Inactive_answer_is_remembered_for_negative_ttl()
    {
        _introspect.Mode = Fault.WithStatus(200, "{\"active\":false}");
        _introspect.ResetCounts();
        string token = NewToken("negative");

        for (int i = 0; i < 5; i++)
        {
            HttpReply reply = await GetAsync("/neg", token);
            Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
            Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        }

        Assert.That(_introspect.Connections, Is.EqualTo(1), "a repeated bad token does not reach the IdP");
        Nginx.WaitForLogLine(TestLogMark, "\\[info\\].*token is not active \\(a remembered answer");
    }

    [Test]
    public async Task Inactive_answer_is_not_remembered_without_negative_ttl()
    {
        _introspect.Mode = Fault.WithStatus(200, "{\"active\":false}");
        _introspect.ResetCounts();
        string token = NewToken("no-negative");

        Assert.That((await GetAsync("/i", token)).Status, Is.EqualTo(401));
        Assert.That((await GetAsync("/i", token)).Status, Is.EqualTo(401));

        Assert.That(_introspect.Connections, Is.EqualTo(2), "off by default");
    }

    // ---- exchange refusals -----------------------------------------------------

    [TestCase(400, "invalid_grant", 401, "Bearer error=\"invalid_token\"")]
    [TestCase(400, "invalid_target", 401, "Bearer error=\"invalid_token\"")]
    [TestCase(400, "unauthorized_client", 401, "Bearer error=\"invalid_token\"")]
    [TestCase(401, "invalid_client", 401, "Bearer error=\"invalid_token\"")]
    [TestCase(400, "invalid_scope", 403, "Bearer error=\"insufficient_scope\"")]
    [TestCase(403, "access_denied", 403, "Bearer error=\"insufficient_scope\"")]
    [TestCase(200, "invalid_grant", 401, "Bearer error=\"invalid_token\"")]
    public async Task Exchange_refusal_is_401_or_403_with_a_challenge(int idpStatus, string error, int status,
        string challenge)
    {
        _token.Mode = Fault.WithStatus(idpStatus, "{\"error\":\"" + error + "\",\"error_description\":\"no\"}");
        string token = NewToken("refused");

        HttpReply reply = await GetAsync("/x", token);

        Assert.That(reply.Status, Is.EqualTo(status), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo(challenge));
        string line = Nginx.WaitForLogLine(TestLogMark,
            $"\\[info\\].*rejected: token exchange \"/_t\" answered {idpStatus} \"{error}\"");
        Assert.That(line, Does.Not.Contain(token));
    }

    [Test]
    public async Task Exchange_refusal_without_an_OAuth_error_body_is_401()
    {
        _token.Mode = Fault.WithStatus(400, "not json");

        HttpReply reply = await GetAsync("/x", NewToken("refused-plain"));

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
    }

    [Test]
    public async Task Exchange_refusal_honours_www_authenticate_off()
    {
        _token.Mode = Fault.WithStatus(400, "{\"error\":\"invalid_grant\"}");

        HttpReply reply = await GetAsync("/xwww-off", NewToken("refused-off"));

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.Null);
    }
}
