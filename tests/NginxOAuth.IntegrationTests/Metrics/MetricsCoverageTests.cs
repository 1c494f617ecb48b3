using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Net.Http;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Sts;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Metrics;

/// <summary>
/// Every metric family and label value oauth_status can emit, and the test
/// that makes it move with an exact expected value (the audit of issue 15's
/// follow-up; shim/ngx_oauth_metrics.c and its call sites). "Cov" is this
/// fixture; MT = MetricsTests, KS = KeySetMetricsTests, RM =
/// RedisMetricsTests, OV = MetricsOverflowTests.
/// <code>
/// family / label value                          what moves it                                    test
/// requests_allowed_total{module}
///   jwt, oauth2_token, sts                      a module lets the request through                MT Jwt_decisions, Introspection_calls, Sts_decisions
/// requests_rejected_total{reason}
///   missing                                     no token / no STS source                         MT Jwt_decisions, Introspection_calls, Sts_decisions
///   malformed                                   not a JWT                                        MT Jwt_decisions, Sts_decisions
///   alg_not_allowed                             alg none                                         Cov Jwt_rejections_*
///   expired                                     exp passed                                       MT Jwt_decisions
///   bad_signature                               tampered signature                               MT Jwt_decisions
///   no_key                                      kid of no key                                    MT Jwt_decisions
///   revoked                                     sub on auth_jwt_revocation_list_sub              Cov Jwt_rejections_*
///   rule_failed                                 require_claim, auth_jwt_require (jwt);           MT Jwt_decisions;
///                                               auth_oauth2_token_require (oauth2_token)         Cov Token_endpoint_refusals_*
///   inactive                                    "active": false (also a negative_ttl hit)        MT Introspection_calls; Cov Negative_*
///   invalid                                     exchange / STS refusal (invalid_grant)           Cov Token_endpoint_refusals_*, Sts_*
///   forbidden                                   exchange / STS access_denied                     Cov Token_endpoint_refusals_*, Sts_*
///   idp_error                                   502/503/504: every IdP outcome but ok, and a     MT Introspection_calls, Sts_decisions;
///                                               2xx the module cannot use                        Cov Idp_outcomes_*, Sts_*
///   error                                       500: a key request that fails                    Cov Jwt_rejections_*
///   unknown_issuer                              auth_jwt_provider, iss of no provider / no iss   Cov Jwt_rejections_*
/// cache_hits_total / cache_misses_total         verify, introspection, exchange, STS zones       MT Jwt_decisions, Introspection_calls; Cov *
/// cache_stale_total                             introspection and exchange served under          Cov Stale_*
///                                               stale_if_error while the IdP fails (not when
///                                               the kept answer's exp has passed: fixed here)
/// cache_evictions_total                         a full zone: one per new entry once full         MT A_full_cache_zone; Cov A_full_verify_cache_*
/// cache_entries (gauge)                         entries in the zone                              MT A_full_cache_zone; Cov A_full_verify_cache_*, Negative_*
/// cache_* of the auth_jwt_keys zone             lookups of the shared key set fetch              no exact test (the keyset_* families are)
/// idp_requests_total{outcome}
///   ok                                          2xx, whole (also a refusal or garbage in JSON)   MT; Cov Idp_outcomes_*, Sts_*
///   http_error                                  another status (5xx, and 4xx refusals; the       MT; Cov Idp_outcomes_*, Token_endpoint_*, Sts_*,
///                                               internal location's own 404: fixed here)         Jwt_rejections_*
///   unreachable                                 refused, reset, timed out                        MT (refused); Cov Idp_outcomes_* (reset, timeout)
///   unusable                                    no status line, cut short, too large             MT (too large); Cov Idp_outcomes_* (garbage, truncated)
///   module jwt / oauth2_token / sts             key request, introspection+exchange, STS         MT A_key_set_fetch, Cov Jwt_rejections_*; Cov; Cov Sts_*
/// idp_request_duration_seconds (histogram)      one observation per IdP call                     MT; Cov Idp_outcomes_*, Sts_*
/// redis_lookups_total{hit,miss,error}           GET outcomes                                     RM; Cov Redis_* (error)
///   foreign                                     an entry sealed with another key_file            RM An_entry_sealed_with_another_key_*
/// redis_stores_total{ok,error}                  SET outcomes                                     RM; Cov Redis_* (error)
/// redis_errors_total{command GET/SET, error}
///   unreachable                                 Redis stopped                                    RM
///   timeout, refused, garbage                   no reply in read_timeout, -ERR, not RESP         Cov Redis_*
/// redis_command_duration_seconds                one per command, failed ones too                 RM; Cov Redis_*
/// keyset_fetches_total{ok,error}                a stored / refused key set fetch                 KS
/// keyset_kid_miss_refetches_total               a kid in no set                                  KS
/// keyset_keys, _fetched_timestamp_seconds,
/// _refresh_due_timestamp_seconds, _stale        read from the key zone at scrape time            KS
/// metrics_slots{used,max}, metrics_overflow_total  a zone too small for its names                OV
/// </code>
/// A key request with auth_jwt_key_cache 0 is an IdP call of its own
/// (the last test below; its fetch counts are in KeySetMetricsTests).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class MetricsCoverageTests : NginxFixture
{
    private const string Server = "coverage.test";
    private const string Issuer = "https://issuer.coverage.test";
    private const string Allowed = "nginx_oauth_requests_allowed_total";
    private const string Rejected = "nginx_oauth_requests_rejected_total";
    private const string Idp = "nginx_oauth_idp_requests_total";
    private const string Hist = "nginx_oauth_idp_request_duration_seconds";
    private static readonly SigningKey Key = AlgVariant.Get("RS256").Key(5);

    private FaultyServer _introspect = null!;
    private FaultyServer _token = null!;
    private FaultyServer _sts = null!;
    private readonly Dictionary<string, FakeRedis> _redis = new();

    private static string ActiveFor(long seconds) =>
        "{\"active\":true,\"sub\":\"alice\",\"exp\":" + (TokenFactory.Now + seconds) + "}";

    /// <summary>Active for an hour from the fixture's start (the outcome cases share one body).</summary>
    private static readonly string ActiveBody = ActiveFor(3600);

    protected override Task StartNginx(NginxInstance nginx)
    {
        _introspect = FaultyServer.Start(Fault.WithStatus(200, ActiveFor(3600)));
        _token = FaultyServer.Start();
        _sts = FaultyServer.Start();
        nginx.WriteFile("keys.jwks", TokenFactory.Jwks(Key));
        nginx.WriteFile("revoked.json", "{\"revoked-user\":{}}");
        string redisKey = nginx.WriteFile("redis.key", "coverage-secret-0123456789abcdef\n");
        _redis["timeout"] = FakeRedis.Start(null);
        _redis["refused"] = FakeRedis.Start("-ERR not today\r\n");
        _redis["garbage"] = FakeRedis.Start("\0 not RESP\r\n");
        string echo = nginx.Echo("ok");
        string redisServers = string.Concat(_redis.Select(kv =>
            $"oauth_redis r_{kv.Key} 127.0.0.1:{kv.Value.Port} key_file={redisKey} read_timeout=500ms;\n"));
        string redisLocations = string.Concat(_redis.Keys.Select(k => $$"""
                location /redis-{{k}} {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=cov_r_{{k}}:1m redis=r_{{k}};
                    {{echo}}
                }

            """));
        nginx.Start($$"""
            {{redisServers}}
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret s;

            server {
                listen 127.0.0.1:{{nginx.Port}};
                server_name {{Server}};

                location = /metrics { oauth_status; }

                location = /_i {
                    internal;
                    proxy_read_timeout 1s;
                    proxy_pass {{_introspect.BaseUrl}}/introspect;
                }
                location = /_t {
                    internal;
                    proxy_read_timeout 1s;
                    proxy_pass {{_token.BaseUrl}}/token;
                }
                auth_oauth2_token_introspect_endpoint /_i;
                auth_oauth2_token_token_endpoint /_t;

                location /istale {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=cov_is:1m max_ttl=1s stale_if_error=60s;
                    {{echo}}
                }
                location /xstale {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_exchange_cache zone=cov_xs:1m max_ttl=1s stale_if_error=60s;
                    {{echo}}
                }
                location /ineg {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=cov_neg:1m negative_ttl=60s;
                    {{echo}}
                }
                location /iout {
                    auth_oauth2_token_introspect on;
                    {{echo}}
                }
                location /xout {
                    auth_oauth2_token_exchange on;
                    {{echo}}
                }
                location /ireq {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_require $arg_ok;
                    {{echo}}
                }

                location /sts {
                    STSExchange otx {{_sts.BaseUrl}}/token "client_id=gw&audience=api&http_timeout=1";
                    STSVariables $http_x_source $t;
                    {{echo}}
                }
                location /sts-cached {
                    STSCache shm "name=cov_sts&size=1m";
                    STSExchange otx {{_sts.BaseUrl}}/token "client_id=gw&audience=api&cache.expiry=300";
                    STSVariables $http_x_source $t;
                    {{echo}}
                }

                location /alg {
                    auth_jwt "cov";
                    auth_jwt_key_file keys.jwks;
                    {{echo}}
                }
                location /revoked {
                    auth_jwt "cov";
                    auth_jwt_key_file keys.jwks;
                    auth_jwt_revocation_list_sub revoked.json;
                    {{echo}}
                }
                location /prov {
                    auth_jwt "cov";
                    auth_jwt_provider {{Issuer}} key_file=keys.jwks;
                    {{echo}}
                }
                location = /_gone { internal; return 404; }
                location /gone {
                    auth_jwt "cov";
                    auth_jwt_key_request /_gone;
                    {{echo}}
                }
                location /tiny {
                    auth_jwt "cov";
                    auth_jwt_key_file keys.jwks;
                    auth_jwt_verify_cache zone=cov_tiny:32k;
                    {{echo}}
                }
                {{redisLocations}}
                location = /_jwks { internal; alias {{nginx.Directory}}/keys.jwks; }
                location /nocache {
                    auth_jwt "cov";
                    auth_jwt_key_request /_jwks;
                    auth_jwt_key_cache 0;
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
        await _sts.DisposeAsync();
        foreach (FakeRedis redis in _redis.Values)
        {
            redis.Dispose();
        }
    }

    private async Task<PrometheusText> ScrapeAsync()
    {
        HttpReply reply = await Nginx.GetAsync("/metrics");
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        return PrometheusText.Parse(reply.Body);
    }

    /// <summary>Each request on a new connection, so that both workers take them.</summary>
    private Task<HttpReply> GetAsync(string path, string? token = null, string? source = null) =>
        Nginx.GetAsync(path, token, configure: m =>
        {
            m.Headers.ConnectionClose = true;
            if (source is not null)
            {
                m.Headers.Add("X-Source", source);
            }
        });

    private static string NewToken(string what) => what + "-" + Guid.NewGuid().ToString("N");

    private static (string, string)[] At(string location, string module) =>
        [("server", Server), ("location", location), ("module", module)];

    private static (string, string)[] At(string location, string module, string reason) =>
        [.. At(location, module), ("reason", reason)];

    private static (string, string)[] Endpoint(string module, string endpoint) =>
        [("module", module), ("endpoint", endpoint)];

    private static (string, string)[] Outcome(string module, string endpoint, string outcome) =>
        [.. Endpoint(module, endpoint), ("outcome", outcome)];

    private static double Delta(PrometheusText before, PrometheusText after, string name,
        params (string, string)[] labels) =>
        after.Value(name, labels) - before.Value(name, labels);

    /// <summary>The sum of a module's rejections at a location over every reason.</summary>
    private static double AllRejected(PrometheusText t, string location, string module) =>
        t.Samples.Where(s => s.Name == Rejected && s.Has(At(location, module))).Sum(s => s.Value);

    // ---- stale_if_error ----------------------------------------------------------

    /// <summary>
    /// One answer is cached for 1 s (kept 60 s for stale_if_error), then the
    /// IdP fails: requests hit until the entry expires, then each one asks
    /// the IdP (a miss), which fails, and gets the stale answer. Exactly:
    /// one miss and one ok call for the first request, a hit per request
    /// before the expiry, a miss, a failed call and a stale per request after.
    /// </summary>
    private async Task StaleIsCountedAsync(string path, string zone, FaultyServer idp, string endpoint,
        Fault failing, string outcome)
    {
        string token = NewToken("stale");
        PrometheusText before = await ScrapeAsync();

        Assert.That((await GetAsync(path, token)).Status, Is.EqualTo(200));
        idp.Mode = failing;
        int calls = idp.Connections;

        // hits until the entry expires; then the first stale answer
        int hits = 0;
        await Poll.UntilAsync(async () =>
        {
            HttpReply reply = await GetAsync(path, token);
            Assert.That(reply.Status, Is.EqualTo(200), "fresh or stale: " + reply);
            bool asked = idp.Connections > calls;
            hits += asked ? 0 : 1;
            return asked;
        }, asked => asked, "the entry to expire");

        const int More = 2;
        for (int i = 0; i < More; i++)
        {
            Assert.That((await GetAsync(path, token)).Status, Is.EqualTo(200), "stale again");
        }

        PrometheusText after = await ScrapeAsync();
        int staleServed = 1 + More;
        Assert.That(idp.Connections - calls, Is.EqualTo(staleServed), "each stale answer followed one failed call");
        Nginx.WaitForLogLine(TestLogMark, "\\[warn\\].*serving an answer that expired [0-9]+ s ago \\(stale_if_error\\)");

        string module = "oauth2_token";
        Assert.Multiple(() =>
        {
            Assert.That(Delta(before, after, "nginx_oauth_cache_stale_total", ("zone", zone)), Is.EqualTo(staleServed));
            Assert.That(Delta(before, after, "nginx_oauth_cache_hits_total", ("zone", zone)), Is.EqualTo(hits));
            Assert.That(Delta(before, after, "nginx_oauth_cache_misses_total", ("zone", zone)),
                Is.EqualTo(1 + staleServed), "the first request and each one after the expiry");
            Assert.That(Delta(before, after, Idp, Outcome(module, endpoint, "ok")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Idp, Outcome(module, endpoint, outcome)), Is.EqualTo(staleServed));
            Assert.That(Delta(before, after, Hist + "_count", Endpoint(module, endpoint)), Is.EqualTo(1 + staleServed));
            Assert.That(Delta(before, after, Allowed, At(path, module)), Is.EqualTo(1 + hits + staleServed));
            Assert.That(AllRejected(after, path, module) - AllRejected(before, path, module), Is.EqualTo(0),
                "a stale answer is not a rejection");
        });
    }

    [Test]
    public Task Stale_introspection_answers_served_while_the_IdP_answers_500_are_counted_exactly()
    {
        _introspect.Mode = Fault.WithStatus(200, ActiveFor(3600));
        return StaleIsCountedAsync("/istale", "cov_is", _introspect, "/_i", Fault.WithStatus(500), "http_error");
    }

    [Test]
    public Task Stale_exchanged_tokens_served_while_the_IdP_is_unreachable_are_counted_exactly()
    {
        _token.Mode = Fault.WithStatus(200, Fault.TokenJson);
        return StaleIsCountedAsync("/xstale", "cov_xs", _token, "/_t", Fault.Reset(), "unreachable");
    }

    /// <summary>
    /// A kept introspection answer whose own exp has passed is not served
    /// (the IdP's failure is the answer): it is not counted as stale.
    /// </summary>
    [Test]
    public async Task A_kept_answer_past_its_exp_is_refused_and_not_counted_as_stale()
    {
        string token = NewToken("stale-exp");
        _introspect.Mode = Fault.WithStatus(200, ActiveFor(10)); // cached 1 s, stale until exp (10 s: room for a slow first request)
        PrometheusText before = await ScrapeAsync();

        Assert.That((await GetAsync("/istale", token)).Status, Is.EqualTo(200));
        _introspect.Mode = Fault.WithStatus(500);

        // 200 (a hit, or stale while exp has not passed) until 502; what
        // nginx did is read from the IdP's side (every call is one accepted
        // connection) and from the metrics, not inferred per request
        int served = 0;
        int calls = _introspect.Connections;
        await Poll.UntilAsync(async () =>
        {
            HttpReply reply = await GetAsync("/istale", token);
            Assert.That(reply.Status, Is.AnyOf(200, 502), reply.ToString());
            served += reply.Status == 200 ? 1 : 0;
            return reply.Status;
        }, status => status == 502, "the answer's exp to pass", TimeSpan.FromSeconds(60));
        Nginx.WaitForLogLine(TestLogMark, "\\[warn\\].*the stale answer is no longer valid \\(its exp has passed\\)");

        PrometheusText after = await ScrapeAsync();
        int idpCalls = _introspect.Connections - calls;
        double stale = Delta(before, after, "nginx_oauth_cache_stale_total", ("zone", "cov_is"));
        double hits = Delta(before, after, "nginx_oauth_cache_hits_total", ("zone", "cov_is"));
        Assert.Multiple(() =>
        {
            Assert.That(stale, Is.EqualTo(idpCalls - 1),
                "every failed call but the last served the kept answer; the last one, past its exp, is not counted");
            Assert.That(hits + stale, Is.EqualTo(served), "every 200 was a hit or a stale answer");
            Assert.That(Delta(before, after, Rejected, At("/istale", "oauth2_token", "idp_error")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Allowed, At("/istale", "oauth2_token")), Is.EqualTo(1 + served));
        });
    }

    // ---- negative cache ------------------------------------------------------------

    [Test]
    public async Task Negative_cache_entries_are_hits_and_every_request_is_rejected_inactive()
    {
        _introspect.Mode = Fault.WithStatus(200, "{\"active\":false}");
        string token = NewToken("negative");
        int calls = _introspect.Connections;
        PrometheusText before = await ScrapeAsync();

        const int Requests = 4;
        for (int i = 0; i < Requests; i++)
        {
            Assert.That((await GetAsync("/ineg", token)).Status, Is.EqualTo(401));
        }

        PrometheusText after = await ScrapeAsync();
        Assert.Multiple(() =>
        {
            Assert.That(_introspect.Connections - calls, Is.EqualTo(1));
            Assert.That(Delta(before, after, "nginx_oauth_cache_misses_total", ("zone", "cov_neg")), Is.EqualTo(1));
            Assert.That(Delta(before, after, "nginx_oauth_cache_hits_total", ("zone", "cov_neg")),
                Is.EqualTo(Requests - 1), "a remembered inactive answer is a hit");
            Assert.That(after.Value("nginx_oauth_cache_entries", ("zone", "cov_neg")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/ineg", "oauth2_token", "inactive")), Is.EqualTo(Requests));
            Assert.That(Delta(before, after, Idp, Outcome("oauth2_token", "/_i", "ok")), Is.EqualTo(1));
        });
    }

    // ---- IdP outcomes ----------------------------------------------------------------

    [Test]
    public async Task Idp_outcomes_of_introspection_and_exchange_are_counted_by_transport_and_the_rejections_by_status()
    {
        (Fault Fault, int Status, string Outcome)[] cases =
        [
            (Fault.WithStatus(200, ActiveBody), 200, "ok"),
            (Fault.Hang(), 503, "unreachable"),                 // proxy_read_timeout 1s
            (Fault.Reset(), 503, "unreachable"),
            (Fault.WithStatus(500), 502, "http_error"),
            (Fault.WithStatus(503), 502, "http_error"),
            (Fault.Garbage(), 502, "unusable"),
            (Fault.Truncated(ActiveBody), 502, "unusable"),
            (Fault.WithStatus(200, "<html>not json</html>"), 502, "ok"),  // a bad answer: the module's idp_error
        ];

        foreach ((string path, string endpoint, FaultyServer idp) in
                 new[] { ("/iout", "/_i", _introspect), ("/xout", "/_t", _token) })
        {
            PrometheusText before = await ScrapeAsync();
            int calls = idp.Connections;

            foreach ((Fault fault, int status, string _) in cases)
            {
                // the exchange's answers carry a token where the introspection's say active
                idp.Mode = path == "/iout" || fault.Body != ActiveBody ? fault
                    : fault with { Body = Fault.TokenJson };
                HttpReply reply = await GetAsync(path, NewToken("outcome"));
                Assert.That(reply.Status, Is.EqualTo(status), path + " " + fault.Kind + ": " + reply);
            }

            PrometheusText after = await ScrapeAsync();
            Assert.That(idp.Connections - calls, Is.EqualTo(cases.Length));
            Assert.Multiple(() =>
            {
                foreach (string outcome in new[] { "ok", "http_error", "unreachable", "unusable" })
                {
                    Assert.That(Delta(before, after, Idp, Outcome("oauth2_token", endpoint, outcome)),
                        Is.EqualTo(cases.Count(c => c.Outcome == outcome)), path + " " + outcome);
                }

                Assert.That(Delta(before, after, Hist + "_count", Endpoint("oauth2_token", endpoint)),
                    Is.EqualTo(cases.Length));
                Assert.That(Delta(before, after, Hist + "_bucket", [.. Endpoint("oauth2_token", endpoint), ("le", "+Inf")]),
                    Is.EqualTo(cases.Length));
                Assert.That(Delta(before, after, Hist + "_bucket", [.. Endpoint("oauth2_token", endpoint), ("le", "0.5")]),
                    Is.LessThanOrEqualTo(cases.Length - 1), "the timed out call took 1 s");
                Assert.That(Delta(before, after, Allowed, At(path, "oauth2_token")), Is.EqualTo(1));
                Assert.That(Delta(before, after, Rejected, At(path, "oauth2_token", "idp_error")),
                    Is.EqualTo(cases.Length - 1));
                Assert.That(AllRejected(after, path, "oauth2_token") - AllRejected(before, path, "oauth2_token"),
                    Is.EqualTo(cases.Length - 1), "idp_error only");
            });
        }
    }

    [Test]
    public async Task Token_endpoint_refusals_and_a_failed_require_are_counted_as_invalid_forbidden_and_rule_failed()
    {
        _introspect.Mode = Fault.WithStatus(200, ActiveFor(3600));
        PrometheusText before = await ScrapeAsync();

        _token.Mode = Fault.WithStatus(400, "{\"error\":\"invalid_grant\"}");
        Assert.That((await GetAsync("/xout", NewToken("refused"))).Status, Is.EqualTo(401));
        _token.Mode = Fault.WithStatus(200, "{\"error\":\"invalid_grant\"}");
        Assert.That((await GetAsync("/xout", NewToken("refused"))).Status, Is.EqualTo(401));
        _token.Mode = Fault.WithStatus(403, "{\"error\":\"access_denied\"}");
        Assert.That((await GetAsync("/xout", NewToken("denied"))).Status, Is.EqualTo(403));
        _token.Mode = Fault.WithStatus(400, "{\"error\":\"invalid_scope\"}");
        Assert.That((await GetAsync("/xout", NewToken("scope"))).Status, Is.EqualTo(403));

        HttpReply failed = await GetAsync("/ireq", NewToken("require"));
        Assert.That(failed.Status, Is.AnyOf(401, 403), failed.ToString());
        Assert.That((await GetAsync("/ireq?ok=1", NewToken("require"))).Status, Is.EqualTo(200));

        PrometheusText after = await ScrapeAsync();
        Assert.Multiple(() =>
        {
            Assert.That(Delta(before, after, Rejected, At("/xout", "oauth2_token", "invalid")), Is.EqualTo(2));
            Assert.That(Delta(before, after, Rejected, At("/xout", "oauth2_token", "forbidden")), Is.EqualTo(2));
            Assert.That(AllRejected(after, "/xout", "oauth2_token") - AllRejected(before, "/xout", "oauth2_token"),
                Is.EqualTo(4));
            Assert.That(Delta(before, after, Idp, Outcome("oauth2_token", "/_t", "http_error")), Is.EqualTo(3),
                "a 4xx refusal is an http_error call");
            Assert.That(Delta(before, after, Idp, Outcome("oauth2_token", "/_t", "ok")), Is.EqualTo(1),
                "a 200 refusal is an ok call");
            Assert.That(Delta(before, after, Rejected, At("/ireq", "oauth2_token", "rule_failed")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Allowed, At("/ireq", "oauth2_token")), Is.EqualTo(1));
            Assert.That(AllRejected(after, "/ireq", "oauth2_token") - AllRejected(before, "/ireq", "oauth2_token"),
                Is.EqualTo(1));
        });
    }

    // ---- STS ---------------------------------------------------------------------

    [Test]
    public async Task Sts_calls_are_counted_by_outcome_and_its_rejections_by_reason()
    {
        string endpoint = _sts.BaseUrl + "/token";
        (Fault Fault, int Status, string Outcome, string? Reason)[] cases =
        [
            (Fault.WithStatus(200, Fault.TokenJson), 200, "ok", null),
            (Fault.WithStatus(400, "{\"error\":\"invalid_grant\"}"), 401, "http_error", "invalid"),
            (Fault.WithStatus(403, "{\"error\":\"access_denied\"}"), 403, "http_error", "forbidden"),
            (Fault.WithStatus(500), 502, "http_error", "idp_error"),
            (Fault.Hang(), 503, "unreachable", "idp_error"),           // http_timeout=1
            (Fault.Reset(), 503, "unreachable", "idp_error"),
            (Fault.Garbage(), 502, "unusable", "idp_error"),
            (Fault.WithStatus(200, "<html>not json</html>"), 502, "ok", "idp_error"),
        ];

        PrometheusText before = await ScrapeAsync();
        int calls = _sts.Connections;
        foreach ((Fault fault, int status, string _, string? _) in cases)
        {
            _sts.Mode = fault;
            HttpReply reply = await GetAsync("/sts", source: NewToken("sts"));
            Assert.That(reply.Status, Is.EqualTo(status), fault.Kind + ": " + reply);
        }

        Assert.That((await GetAsync("/sts")).Status, Is.EqualTo(401), "no source token: no call");

        PrometheusText after = await ScrapeAsync();
        Assert.That(_sts.Connections - calls, Is.EqualTo(cases.Length));
        Assert.Multiple(() =>
        {
            foreach (string outcome in new[] { "ok", "http_error", "unreachable", "unusable" })
            {
                Assert.That(Delta(before, after, Idp, Outcome("sts", endpoint, outcome)),
                    Is.EqualTo(cases.Count(c => c.Outcome == outcome)), outcome);
            }

            Assert.That(Delta(before, after, Hist + "_count", Endpoint("sts", endpoint)), Is.EqualTo(cases.Length));
            Assert.That(Delta(before, after, Allowed, At("/sts", "sts")), Is.EqualTo(1));
            foreach (string reason in new[] { "invalid", "forbidden", "idp_error" })
            {
                Assert.That(Delta(before, after, Rejected, At("/sts", "sts", reason)),
                    Is.EqualTo(cases.Count(c => c.Reason == reason)), reason);
            }

            Assert.That(Delta(before, after, Rejected, At("/sts", "sts", "missing")), Is.EqualTo(1));
            Assert.That(AllRejected(after, "/sts", "sts") - AllRejected(before, "/sts", "sts"),
                Is.EqualTo(cases.Length));
        });
    }

    [Test]
    public async Task Sts_cache_counts_one_miss_and_then_hits_with_one_call()
    {
        _sts.Mode = Fault.WithStatus(200, Fault.TokenJson);
        string source = NewToken("sts-cached");
        int calls = _sts.Connections;
        PrometheusText before = await ScrapeAsync();

        const int Requests = 3;
        for (int i = 0; i < Requests; i++)
        {
            Assert.That((await GetAsync("/sts-cached", source: source)).Status, Is.EqualTo(200));
        }

        PrometheusText after = await ScrapeAsync();
        Assert.Multiple(() =>
        {
            Assert.That(_sts.Connections - calls, Is.EqualTo(1));
            Assert.That(Delta(before, after, "nginx_oauth_cache_misses_total", ("zone", "cov_sts")), Is.EqualTo(1));
            Assert.That(Delta(before, after, "nginx_oauth_cache_hits_total", ("zone", "cov_sts")),
                Is.EqualTo(Requests - 1));
            Assert.That(Delta(before, after, Allowed, At("/sts-cached", "sts")), Is.EqualTo(Requests));
            Assert.That(Delta(before, after, Idp, Outcome("sts", _sts.BaseUrl + "/token", "ok")), Is.EqualTo(1));
        });
    }

    // ---- JWT rejections ------------------------------------------------------------

    [Test]
    public async Task Jwt_rejections_not_covered_elsewhere_are_counted_by_reason()
    {
        PrometheusText before = await ScrapeAsync();

        string Signed(string sub, string? iss = null) =>
            TokenFactory.Sign(Key, TokenFactory.Claims(sub, iss is null ? null : new JsonObject { ["iss"] = iss }));

        Assert.That((await GetAsync("/alg", TokenFactory.Unsigned())).Status, Is.EqualTo(401));
        Assert.That((await GetAsync("/alg", Signed("alg-ok"))).Status, Is.EqualTo(200));
        Assert.That((await GetAsync("/revoked", Signed("revoked-user"))).Status, Is.EqualTo(401));
        Assert.That((await GetAsync("/revoked", Signed("kept-user"))).Status, Is.EqualTo(200));
        Assert.That((await GetAsync("/prov", Signed("p", "https://other.test"))).Status, Is.EqualTo(401));
        Assert.That((await GetAsync("/prov", Signed("p"))).Status, Is.EqualTo(401), "no iss");
        Assert.That((await GetAsync("/prov", Signed("p", Issuer))).Status, Is.EqualTo(200));
        Assert.That((await GetAsync("/gone", Signed("g"))).Status, Is.EqualTo(500));

        PrometheusText after = await ScrapeAsync();
        Assert.Multiple(() =>
        {
            Assert.That(Delta(before, after, Rejected, At("/alg", "jwt", "alg_not_allowed")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Allowed, At("/alg", "jwt")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/revoked", "jwt", "revoked")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Allowed, At("/revoked", "jwt")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/prov", "jwt", "unknown_issuer")), Is.EqualTo(2));
            Assert.That(Delta(before, after, Allowed, At("/prov", "jwt")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/gone", "jwt", "error")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Idp, Outcome("jwt", "/_gone", "http_error")), Is.EqualTo(1),
                "the location's own 404 is an answer of status 404 (was: unusable)");
            Assert.That(Delta(before, after, Idp, Outcome("jwt", "/_gone", "unusable")), Is.EqualTo(0));
            foreach (string location in new[] { "/alg", "/revoked", "/prov", "/gone" })
            {
                Assert.That(AllRejected(after, location, "jwt") - AllRejected(before, location, "jwt"),
                    Is.EqualTo(location == "/prov" ? 2 : 1), location);
            }
        });
    }

    /// <summary>
    /// Tokens of one length make entries of one size: once the zone is
    /// full, each new token evicts exactly one entry and the number of
    /// entries stays where it is.
    /// </summary>
    [Test]
    public async Task A_full_verify_cache_evicts_exactly_one_entry_per_new_token()
    {
        PrometheusText start = await ScrapeAsync();
        (string, string) zone = ("zone", "cov_tiny");
        int sent = 0;

        string Next() => TokenFactory.Sign(Key, TokenFactory.Claims($"tiny-{sent++:D6}"));

        // fill the zone until its first eviction (32k hold far fewer than 2000)
        PrometheusText full = start;
        for (int batch = 0; batch < 100 && Delta(start, full, "nginx_oauth_cache_evictions_total", zone) == 0; batch++)
        {
            for (int i = 0; i < 20; i++)
            {
                Assert.That((await GetAsync("/tiny", Next())).Status, Is.EqualTo(200));
            }

            full = await ScrapeAsync();
        }

        Assert.That(Delta(start, full, "nginx_oauth_cache_evictions_total", zone), Is.GreaterThan(0), "the zone is full");
        const int More = 20;
        for (int i = 0; i < More; i++)
        {
            Assert.That((await GetAsync("/tiny", Next())).Status, Is.EqualTo(200));
        }

        PrometheusText after = await ScrapeAsync();
        Assert.Multiple(() =>
        {
            Assert.That(Delta(full, after, "nginx_oauth_cache_evictions_total", zone), Is.EqualTo(More));
            Assert.That(Delta(full, after, "nginx_oauth_cache_misses_total", zone), Is.EqualTo(More));
            Assert.That(Delta(full, after, "nginx_oauth_cache_hits_total", zone), Is.EqualTo(0));
            Assert.That(after.Value("nginx_oauth_cache_entries", zone), Is.EqualTo(full.Value("nginx_oauth_cache_entries", zone)));
            Assert.That(after.Value("nginx_oauth_cache_entries", zone)
                        + Delta(start, after, "nginx_oauth_cache_evictions_total", zone), Is.EqualTo(sent));
        });
    }

    // ---- Redis errors ----------------------------------------------------------------

    /// <summary>
    /// A server that never replies (timeout), replies -ERR (refused) or
    /// bytes that are not RESP (garbage): the leader's GET fails (a lookup
    /// error, the request asks the IdP) and so does its SET afterwards
    /// (written in the background: polled).
    /// </summary>
    [TestCase("timeout")]
    [TestCase("refused")]
    [TestCase("garbage")]
    public async Task Redis_errors_are_counted_by_command_and_kind(string kind)
    {
        _introspect.Mode = Fault.WithStatus(200, ActiveBody);
        (string, string) redis = ("redis", "r_" + kind);
        const string Errors = "nginx_oauth_redis_errors_total";
        PrometheusText before = await ScrapeAsync();

        Assert.That((await GetAsync("/redis-" + kind, NewToken("redis"))).Status, Is.EqualTo(200));

        PrometheusText after = await Poll.UntilAsync(ScrapeAsync,
            t => Delta(before, t, "nginx_oauth_redis_stores_total", redis, ("outcome", "error")) >= 1, "the SET to fail");
        Assert.Multiple(() =>
        {
            Assert.That(Delta(before, after, "nginx_oauth_redis_lookups_total", redis, ("outcome", "error")), Is.EqualTo(1));
            Assert.That(Delta(before, after, "nginx_oauth_redis_lookups_total", redis, ("outcome", "miss")), Is.EqualTo(0));
            Assert.That(Delta(before, after, "nginx_oauth_redis_stores_total", redis, ("outcome", "error")), Is.EqualTo(1));
            Assert.That(Delta(before, after, "nginx_oauth_redis_stores_total", redis, ("outcome", "ok")), Is.EqualTo(0));
            foreach (string command in new[] { "GET", "SET" })
            {
                foreach (string error in new[] { "timeout", "unreachable", "refused", "garbage" })
                {
                    Assert.That(Delta(before, after, Errors, redis, ("command", command), ("error", error)),
                        Is.EqualTo(error == kind ? 1 : 0), command + " " + error);
                }
            }

            Assert.That(Delta(before, after, "nginx_oauth_redis_command_duration_seconds_count", redis), Is.EqualTo(2));
            Assert.That(Delta(before, after, "nginx_oauth_cache_misses_total", ("zone", "cov_r_" + kind)), Is.EqualTo(1));
            Assert.That(Delta(before, after, Allowed, At("/redis-" + kind, "oauth2_token")), Is.EqualTo(1));
        });
    }

    /// <summary>A TCP server that answers every read with one fixed reply, or never (null).</summary>
    private sealed class FakeRedis : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();

        private FakeRedis()
        {
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public static FakeRedis Start(string? reply)
        {
            var redis = new FakeRedis();
            redis._listener.Start();
            _ = Task.Run(() => redis.AcceptAsync(reply is null ? null : Encoding.ASCII.GetBytes(reply)));
            return redis;
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
        }

        private async Task AcceptAsync(byte[]? reply)
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    Socket socket = await _listener.AcceptSocketAsync(_stop.Token);
                    _ = Task.Run(() => ServeAsync(socket, reply));
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }
            }
        }

        private async Task ServeAsync(Socket socket, byte[]? reply)
        {
            using (socket)
            {
                byte[] buffer = new byte[4096];
                try
                {
                    while (await socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token) > 0)
                    {
                        if (reply is not null)
                        {
                            await socket.SendAsync(reply, SocketFlags.None, _stop.Token);
                        }
                    }
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                }
            }
        }
    }

    /// <summary>
    /// With auth_jwt_key_cache 0 each request fetches its key set by a
    /// subrequest of its own: each such call is an IdP call too.
    /// </summary>
    [Test]
    public async Task Key_requests_without_a_key_cache_are_counted_per_request()
    {
        PrometheusText before = await ScrapeAsync();
        const int Requests = 2;
        for (int i = 0; i < Requests; i++)
        {
            Assert.That((await GetAsync("/nocache", TokenFactory.Sign(Key, TokenFactory.Claims("nocache")))).Status,
                Is.EqualTo(200));
        }

        PrometheusText after = await ScrapeAsync();
        Assert.That(Delta(before, after, Idp, Outcome("jwt", "/_jwks", "ok")), Is.EqualTo(Requests));
        Assert.That(Delta(before, after, Allowed, At("/nocache", "jwt")), Is.EqualTo(Requests));
    }
}
