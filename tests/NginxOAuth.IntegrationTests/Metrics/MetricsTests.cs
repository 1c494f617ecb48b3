using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using NginxOAuth.IntegrationTests.Sts;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Metrics;

/// <summary>
/// oauth_status: after a known sequence of requests served by both workers,
/// the scrape holds exact counts of decisions by reason, cache hits and
/// misses, IdP calls by outcome and their latency histogram; the text
/// parses as Prometheus 0.0.4; the counters survive a reload;
/// $oauth_result and $oauth_reason reach the access log. Each test uses
/// its own locations and zones and compares scrapes before and after.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class MetricsTests : NginxFixture
{
    private static readonly SigningKey Key = AlgVariant.Get("RS256").Key(5);
    private static readonly SigningKey Stranger = AlgVariant.Get("RS256").Key(6);

    private readonly StsKey _mint = StsKey.Create("ES256", "metrics-mint");
    private FakeIdp _idp = null!;
    private string _accessLog = "";
    private int _closed;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeIdp.StartAsync();
        _accessLog = Path.Combine(nginx.Directory, "oauth-access.log");
        nginx.WriteFile("keys.jwks", TokenFactory.Jwks(Key));
        nginx.Start(Config(nginx));
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    private string Config(NginxInstance nginx)
    {
        int closed = _closed = NginxInstance.NewPort(); // nothing listens there
        string echo = nginx.Echo("pid=$pid");
        return $$"""
            log_format oauth '$uri $status result=$oauth_result reason=$oauth_reason';

            server {
                listen 127.0.0.1:{{nginx.Port}};
                server_name metrics.test;
                access_log {{_accessLog}} oauth;

                location = /metrics { oauth_status; }
                location = /metrics-explicit { oauth_status format=prometheus; }

                auth_jwt_key_file keys.jwks;

                location /jwt {
                    auth_jwt "metrics";
                    auth_jwt_verify_cache zone=metrics_vc:1m;
                    auth_jwt_require_claim role eq admin;
                    {{echo}}
                }
                location /jwt-require {
                    auth_jwt "metrics";
                    auth_jwt_require $arg_ok error=403;
                    {{echo}}
                }
                location /labelled {
                    oauth_metrics_label 'team "a" api';
                    auth_jwt "metrics";
                    {{echo}}
                }
                location /logged {
                    auth_jwt "metrics";
                    {{echo}}
                }
                location /redirected {
                    auth_jwt "metrics";
                    error_page 401 = @login;
                    {{echo}}
                }
                location @login {
                    return 200 "please log in";
                }
                location /reloaded {
                    auth_jwt "metrics";
                    {{echo}}
                }

                location = /_introspect {
                    internal;
                    proxy_read_timeout 60s;
                    proxy_pass {{_idp.BaseUrl}}/introspect;
                }
                location = /_down {
                    internal;
                    proxy_pass http://127.0.0.1:{{closed}}/introspect;
                }
                location /intro {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_endpoint /_introspect;
                    auth_oauth2_token_introspect_cache zone=metrics_ic:1m max_ttl=300s;
                    {{echo}}
                }
                location /down {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_endpoint /_down;
                    {{echo}}
                }
                location = /_small {
                    internal;
                    subrequest_output_buffer_size 4k;
                    proxy_pass {{_idp.BaseUrl}}/introspect;
                }
                location /small {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_endpoint /_small;
                    {{echo}}
                }
                location = /_jwks {
                    internal;
                    alias {{nginx.Directory}}/keys.jwks;
                }
                location /fetched {
                    auth_jwt "metrics";
                    auth_jwt_key_request /_jwks;
                    {{echo}}
                }
                location /tiny {
                    auth_jwt "metrics";
                    auth_jwt_verify_cache zone=metrics_tiny:32k;
                    {{echo}}
                }

                location /sts-mint {
                    STSExchange jwt '{{_mint.PrivateJwk}}' "iss=https://gw.test&aud=api";
                    STSVariables $http_x_claims $t;
                    {{echo}}
                }
                location /sts-behind-jwt {
                    auth_jwt "metrics";
                    STSExchange jwt '{{_mint.PrivateJwk}}' "iss=https://gw.test&aud=api";
                    STSVariables $jwt_claims $t;
                    {{echo}}
                }
                location /sts-otx {
                    STSExchange otx {{_idp.BaseUrl}}/token "client_id=gw&audience=api&http_timeout=30";
                    STSVariables $http_x_source $t;
                    {{echo}}
                }
                location /sts-down {
                    STSExchange otx http://127.0.0.1:{{closed}}/token "client_id=gw&http_timeout=3";
                    STSVariables $http_x_source $t;
                    {{echo}}
                }
            }
            """;
    }

    private async Task<PrometheusText> ScrapeAsync()
    {
        HttpReply reply = await Nginx.GetAsync("/metrics");
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Header("Content-Type"), Is.EqualTo(new[] { "text/plain; version=0.0.4" }));
        return PrometheusText.Parse(reply.Body);
    }

    /// <summary>GET on a new connection (so that both workers take requests), returning status and the echoed pid.</summary>
    private async Task<(int Status, string Pid)> OnNewConnectionAsync(string path, string? token)
    {
        HttpReply reply = await Nginx.GetAsync(path, token, configure: m => m.Headers.ConnectionClose = true);
        string pid = reply.Body.StartsWith("pid=", StringComparison.Ordinal) ? reply.Body[4..] : "";
        return (reply.Status, pid);
    }

    private static (string, string)[] At(string location, string module) =>
        [("server", "metrics.test"), ("location", location), ("module", module)];

    private static (string, string)[] At(string location, string module, string reason) =>
        [("server", "metrics.test"), ("location", location), ("module", module), ("reason", reason)];

    private static double Delta(PrometheusText before, PrometheusText after, string name,
        params (string, string)[] labels) =>
        after.Value(name, labels) - before.Value(name, labels);

    private static string Token(string sub, JsonObject? extra = null, SigningKey? key = null) =>
        TokenFactory.Sign(key ?? Key, TokenFactory.Claims(sub, extra));

    [Test]
    public async Task Jwt_decisions_and_verify_cache_are_counted_exactly_over_both_workers()
    {
        PrometheusText before = await ScrapeAsync();

        var expired = TokenFactory.Claims("old", new JsonObject { ["role"] = "admin" });
        expired["exp"] = TokenFactory.Now - 3600;
        string valid = Token("metrics-admin", new JsonObject { ["role"] = "admin" });

        Assert.That((await OnNewConnectionAsync("/jwt", null)).Status, Is.EqualTo(401));
        Assert.That((await OnNewConnectionAsync("/jwt", "not-a-jwt")).Status, Is.EqualTo(401));
        Assert.That((await OnNewConnectionAsync("/jwt", TokenFactory.Sign(Key, expired))).Status, Is.EqualTo(401));
        Assert.That((await OnNewConnectionAsync("/jwt", TokenFactory.Tampered(valid))).Status, Is.EqualTo(401));
        Assert.That((await OnNewConnectionAsync("/jwt",
            Token("x", new JsonObject { ["role"] = "admin" }, Stranger))).Status, Is.EqualTo(401));
        Assert.That((await OnNewConnectionAsync("/jwt", Token("dev", new JsonObject { ["role"] = "dev" }))).Status,
            Is.EqualTo(401));
        Assert.That((await OnNewConnectionAsync("/jwt-require", Token("r"))).Status, Is.EqualTo(403));
        Assert.That((await OnNewConnectionAsync("/jwt-require?ok=1", Token("r"))).Status, Is.EqualTo(200));

        // valid requests until both workers answered one (each on its own connection)
        var pids = new HashSet<string>();
        int allowed = 0;
        await Poll.UntilAsync(async () =>
        {
            (int status, string pid) = await OnNewConnectionAsync("/jwt", valid);
            Assert.That(status, Is.EqualTo(200));
            allowed++;
            pids.Add(pid);
            return pids.Count;
        }, n => n == 2, "both workers to serve a request");

        PrometheusText after = await ScrapeAsync();

        const string Rejected = "nginx_oauth_requests_rejected_total";
        Assert.Multiple(() =>
        {
            Assert.That(Delta(before, after, "nginx_oauth_requests_allowed_total", At("/jwt", "jwt")),
                Is.EqualTo(allowed));
            Assert.That(Delta(before, after, Rejected, At("/jwt", "jwt", "missing")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/jwt", "jwt", "malformed")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/jwt", "jwt", "expired")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/jwt", "jwt", "bad_signature")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/jwt", "jwt", "no_key")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/jwt", "jwt", "rule_failed")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/jwt", "jwt", "idp_error")), Is.EqualTo(0));
            Assert.That(Delta(before, after, Rejected, At("/jwt-require", "jwt", "rule_failed")), Is.EqualTo(1));
            Assert.That(Delta(before, after, "nginx_oauth_requests_allowed_total", At("/jwt-require", "jwt")),
                Is.EqualTo(1));

            // the verify cache: every token that reached the signature check
            // looked up once (5 rejected, the first valid one) before the
            // valid token's entry was stored; the valid ones after it hit
            Assert.That(Delta(before, after, "nginx_oauth_cache_hits_total", ("zone", "metrics_vc")),
                Is.EqualTo(allowed - 1));
            Assert.That(Delta(before, after, "nginx_oauth_cache_misses_total", ("zone", "metrics_vc")),
                Is.EqualTo(6));
            Assert.That(after.Value("nginx_oauth_cache_entries", ("zone", "metrics_vc")), Is.GreaterThanOrEqualTo(1));
        });
    }

    [Test]
    public async Task Introspection_calls_are_counted_by_outcome_with_a_histogram_of_the_same_count()
    {
        PrometheusText before = await ScrapeAsync();
        int idpBefore = _idp.Requests("/introspect").Count;

        Assert.That((await OnNewConnectionAsync("/intro", "metrics-good")).Status, Is.EqualTo(200));
        Assert.That((await OnNewConnectionAsync("/intro", "metrics-good")).Status, Is.EqualTo(200));
        Assert.That((await OnNewConnectionAsync("/intro", "inactive-metrics")).Status, Is.EqualTo(401));
        Assert.That((await OnNewConnectionAsync("/intro", "err-metrics")).Status, Is.EqualTo(502));
        Assert.That((await OnNewConnectionAsync("/intro", null)).Status, Is.EqualTo(401));
        Assert.That((await OnNewConnectionAsync("/down", "metrics-good")).Status, Is.EqualTo(503));
        Assert.That((await OnNewConnectionAsync("/small", "huge-metrics")).Status, Is.EqualTo(502));

        PrometheusText after = await ScrapeAsync();
        int idpCalls = _idp.Requests("/introspect").Count - idpBefore;
        Assert.That(idpCalls, Is.EqualTo(4), "good (once: then cached), inactive, err, huge");

        const string Rejected = "nginx_oauth_requests_rejected_total";
        const string Idp = "nginx_oauth_idp_requests_total";
        const string Hist = "nginx_oauth_idp_request_duration_seconds";
        (string, string)[] intro = [("module", "oauth2_token"), ("endpoint", "/_introspect")];
        (string, string)[] down = [("module", "oauth2_token"), ("endpoint", "/_down")];
        (string, string)[] small = [("module", "oauth2_token"), ("endpoint", "/_small")];
        Assert.Multiple(() =>
        {
            Assert.That(Delta(before, after, "nginx_oauth_requests_allowed_total", At("/intro", "oauth2_token")),
                Is.EqualTo(2));
            Assert.That(Delta(before, after, Rejected, At("/intro", "oauth2_token", "inactive")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/intro", "oauth2_token", "idp_error")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/intro", "oauth2_token", "missing")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/down", "oauth2_token", "idp_error")), Is.EqualTo(1));

            Assert.That(Delta(before, after, Idp, [.. intro, ("outcome", "ok")]), Is.EqualTo(2));
            Assert.That(Delta(before, after, Idp, [.. intro, ("outcome", "http_error")]), Is.EqualTo(1));
            Assert.That(Delta(before, after, Idp, [.. intro, ("outcome", "unreachable")]), Is.EqualTo(0));
            Assert.That(Delta(before, after, Idp, [.. down, ("outcome", "unreachable")]), Is.EqualTo(1));
            Assert.That(Delta(before, after, Hist + "_count", intro), Is.EqualTo(3));
            Assert.That(Delta(before, after, Hist + "_bucket", [.. intro, ("le", "+Inf")]), Is.EqualTo(3));
            Assert.That(Delta(before, after, Hist + "_count", down), Is.EqualTo(1));
            Assert.That(Delta(before, after, Idp, [.. small, ("outcome", "unusable")]), Is.EqualTo(1),
                "larger than subrequest_output_buffer_size");
            Assert.That(Delta(before, after, Rejected, At("/small", "oauth2_token", "idp_error")), Is.EqualTo(1));
            Assert.That(after.Value(Hist + "_sum", intro), Is.GreaterThanOrEqualTo(0));

            Assert.That(Delta(before, after, "nginx_oauth_cache_misses_total", ("zone", "metrics_ic")),
                Is.EqualTo(3));
            Assert.That(Delta(before, after, "nginx_oauth_cache_hits_total", ("zone", "metrics_ic")),
                Is.EqualTo(1));
        });
    }

    [Test]
    public async Task A_key_set_fetch_is_counted_once_and_later_requests_use_the_shared_set()
    {
        PrometheusText before = await ScrapeAsync();

        for (int i = 0; i < 3; i++)
        {
            Assert.That((await Nginx.GetAsync("/fetched", Token($"fetched-{i}"))).Status, Is.EqualTo(200));
        }

        PrometheusText after = await ScrapeAsync();
        (string, string)[] jwks = [("module", "jwt"), ("endpoint", "/_jwks")];
        Assert.That(Delta(before, after, "nginx_oauth_idp_requests_total", [.. jwks, ("outcome", "ok")]),
            Is.EqualTo(1));
        Assert.That(Delta(before, after, "nginx_oauth_idp_request_duration_seconds_count", jwks), Is.EqualTo(1));
        Assert.That(Delta(before, after, "nginx_oauth_requests_allowed_total", At("/fetched", "jwt")), Is.EqualTo(3));
    }

    [Test]
    public async Task A_full_cache_zone_counts_evictions_and_its_entries()
    {
        PrometheusText before = await ScrapeAsync();
        const int Tokens = 200;

        for (int i = 0; i < Tokens; i++)
        {
            Assert.That((await Nginx.GetAsync("/tiny", Token($"tiny-{i}"))).Status, Is.EqualTo(200));
        }

        PrometheusText after = await ScrapeAsync();
        (string, string) zone = ("zone", "metrics_tiny");
        double evicted = Delta(before, after, "nginx_oauth_cache_evictions_total", zone);
        double entries = Delta(before, after, "nginx_oauth_cache_entries", zone);

        Assert.That(Delta(before, after, "nginx_oauth_cache_misses_total", zone), Is.EqualTo(Tokens));
        Assert.That(Delta(before, after, "nginx_oauth_cache_hits_total", zone), Is.EqualTo(0));
        Assert.That(evicted, Is.GreaterThan(0), "32k cannot hold 200 tokens");
        Assert.That(entries + evicted, Is.EqualTo(Tokens), "every stored token is in the zone or was evicted");
    }

    [Test]
    public async Task Sts_decisions_and_calls_are_counted_apart_from_the_jwt_check_before_them()
    {
        PrometheusText before = await ScrapeAsync();
        Action<HttpRequestMessage> claims = m => m.Headers.Add("X-Claims", "{\"sub\":\"metrics\"}");
        Action<HttpRequestMessage> source = m => m.Headers.Add("X-Source", "metrics-sts-source");

        Assert.That((await Nginx.GetAsync("/sts-mint", configure: claims)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/sts-mint")).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/sts-behind-jwt", Token("both"))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/sts-behind-jwt", "not-a-jwt")).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/sts-otx", configure: source)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/sts-down", configure: source)).Status, Is.EqualTo(503));

        PrometheusText after = await ScrapeAsync();

        const string Allowed = "nginx_oauth_requests_allowed_total";
        const string Rejected = "nginx_oauth_requests_rejected_total";
        const string Idp = "nginx_oauth_idp_requests_total";
        string down = $"http://127.0.0.1:{_closed}/token";
        Assert.Multiple(() =>
        {
            Assert.That(Delta(before, after, Allowed, At("/sts-mint", "sts")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/sts-mint", "sts", "missing")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Allowed, At("/sts-behind-jwt", "jwt")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Allowed, At("/sts-behind-jwt", "sts")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/sts-behind-jwt", "jwt", "malformed")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Allowed, At("/sts-otx", "sts")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Rejected, At("/sts-down", "sts", "idp_error")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Idp, ("module", "sts"), ("endpoint", _idp.BaseUrl + "/token"),
                ("outcome", "ok")), Is.EqualTo(1));
            Assert.That(Delta(before, after, Idp, ("module", "sts"), ("endpoint", down), ("outcome", "unreachable")),
                Is.EqualTo(1));
            Assert.That(Delta(before, after, "nginx_oauth_idp_request_duration_seconds_count", ("module", "sts"),
                ("endpoint", down)), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task Scrape_parses_as_Prometheus_text_with_cumulative_buckets_and_escaped_labels()
    {
        Assert.That((await Nginx.GetAsync("/labelled", Token("l"))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/intro", "metrics-parse")).Status, Is.EqualTo(200));

        HttpReply explicitFormat = await Nginx.GetAsync("/metrics-explicit");
        Assert.That(explicitFormat.Status, Is.EqualTo(200));
        PrometheusText.Parse(explicitFormat.Body);

        HttpReply raw = await Nginx.GetAsync("/metrics");
        PrometheusText text = PrometheusText.Parse(raw.Body);

        Assert.That(raw.Body, Does.Contain("location=\"team \\\"a\\\" api\""), "quotes in a label value are escaped");
        Assert.That(text.Value("nginx_oauth_requests_allowed_total",
            ("location", "team \"a\" api"), ("module", "jwt")), Is.GreaterThanOrEqualTo(1));

        Assert.That(text.TypeOf["nginx_oauth_requests_allowed_total"], Is.EqualTo("counter"));
        Assert.That(text.TypeOf["nginx_oauth_cache_entries"], Is.EqualTo("gauge"));
        Assert.That(text.TypeOf["nginx_oauth_idp_request_duration_seconds"], Is.EqualTo("histogram"));

        foreach (var series in text.Samples.Where(s => s.Name == "nginx_oauth_idp_request_duration_seconds_bucket")
                     .GroupBy(s => s.Labels["module"] + " " + s.Labels["endpoint"]))
        {
            double[] values = series.Select(s => s.Value).ToArray();
            Assert.That(values, Is.Ordered, "buckets are cumulative");
            Assert.That(series.Last().Labels["le"], Is.EqualTo("+Inf"));
            Assert.That(values[^1], Is.EqualTo(text.Value("nginx_oauth_idp_request_duration_seconds_count",
                ("module", series.First().Labels["module"]), ("endpoint", series.First().Labels["endpoint"]))));
        }

        HttpReply post = await Nginx.SendAsync(HttpMethod.Post, "/metrics");
        Assert.That(post.Status, Is.EqualTo(405));
    }

    [Test]
    public async Task Counters_survive_a_reload_and_keep_counting_in_the_same_series()
    {
        string token = Token("reload");
        for (int i = 0; i < 3; i++)
        {
            Assert.That((await Nginx.GetAsync("/reloaded", token)).Status, Is.EqualTo(200));
        }

        Assert.That((await Nginx.GetAsync("/reloaded")).Status, Is.EqualTo(401));
        PrometheusText before = await ScrapeAsync();
        double allowed = before.Value("nginx_oauth_requests_allowed_total", At("/reloaded", "jwt"));
        double missing = before.Value("nginx_oauth_requests_rejected_total", At("/reloaded", "jwt", "missing"));
        Assert.That(allowed, Is.GreaterThanOrEqualTo(3));

        Nginx.Reload(); // waits until a new generation of workers serves

        PrometheusText reloaded = await ScrapeAsync();
        Assert.That(reloaded.Value("nginx_oauth_requests_allowed_total", At("/reloaded", "jwt")), Is.EqualTo(allowed));
        Assert.That(reloaded.Value("nginx_oauth_requests_rejected_total", At("/reloaded", "jwt", "missing")),
            Is.EqualTo(missing));

        Assert.That((await Nginx.GetAsync("/reloaded", token)).Status, Is.EqualTo(200));
        PrometheusText after = await ScrapeAsync();
        Assert.That(after.Value("nginx_oauth_requests_allowed_total", At("/reloaded", "jwt")),
            Is.EqualTo(allowed + 1), "the new workers found the location's slot by its name");
        Assert.That(after.Samples.Count(s => s.Name == "nginx_oauth_requests_allowed_total" && s.Has(At("/reloaded", "jwt"))),
            Is.EqualTo(1), "one series, not a second slot");
    }

    [Test]
    public async Task Access_log_carries_the_result_and_the_reason()
    {
        Assert.That((await Nginx.GetAsync("/logged?case=ok", Token("log"))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/logged?case=none")).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/logged?case=forged", TokenFactory.Tampered(Token("log")))).Status,
            Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/metrics")).Status, Is.EqualTo(200));
        HttpReply redirected = await Nginx.GetAsync("/redirected");
        Assert.That(redirected.Body, Is.EqualTo("please log in"));

        // nginx writes the line when the request ends, after the answer
        string[] lines = await Poll.UntilAsync(
            () => File.Exists(_accessLog) ? File.ReadAllLines(_accessLog) : [],
            l => l.Count(x => x.StartsWith("/logged ", StringComparison.Ordinal)) >= 3
                 && l.Any(x => x.StartsWith("/metrics ", StringComparison.Ordinal))
                 && l.Any(x => x.StartsWith("/redirected ", StringComparison.Ordinal)),
            "the access log lines");

        string[] logged = lines.Where(l => l.StartsWith("/logged ", StringComparison.Ordinal)).TakeLast(3).ToArray();
        Assert.That(logged, Is.EqualTo(new[]
        {
            "/logged 200 result=allowed reason=-",
            "/logged 401 result=rejected reason=missing",
            "/logged 401 result=rejected reason=bad_signature",
        }));
        Assert.That(lines.Last(l => l.StartsWith("/metrics ", StringComparison.Ordinal)),
            Is.EqualTo("/metrics 200 result=- reason=-"), "no module ran: empty");
        Assert.That(lines.Last(l => l.StartsWith("/redirected ", StringComparison.Ordinal)),
            Is.EqualTo("/redirected 200 result=rejected reason=missing"), "the decision survives error_page's redirect");
    }
}
