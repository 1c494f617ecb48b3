using System;
using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Metrics;

/// <summary>
/// oauth_status shows the JWT key sets of auth_jwt_key_request (issue 13):
/// fetches by outcome and kid-miss refetches (counters), and, read from
/// the auth_jwt_keys zone at scrape time, the number of keys, the time of
/// the last fetch, the time the next refresh is due and whether the set is
/// past it (stale). Times are compared with each other and with a wide
/// window around the test's own clock, never with a tight one.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class KeySetMetricsTests : NginxFixture
{
    private static readonly SigningKey Key1 = AlgVariant.Get("RS256").Key(5);
    private static readonly SigningKey Key2 = AlgVariant.Get("RS256").Key(7);
    private static readonly SigningKey Stranger = AlgVariant.Get("RS256").Key(6);

    private long _started;
    private FakeHttpServer _idp = null!;

    private string Issuer => _idp.BaseUrl + "/realms/metrics";

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _started = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        _idp = await FakeHttpServer.StartAsync();
        _idp.Set("/realms/metrics/.well-known/openid-configuration", FakeResponse.Json(new JsonObject
        {
            ["issuer"] = Issuer,
            ["jwks_uri"] = Issuer + "/certs",
        }.ToJsonString()));
        _idp.Set("/realms/metrics/certs", FakeResponse.Json(TokenFactory.Jwks(Key1, Key2, Stranger)));
        nginx.AllowLogLines("key request");
        nginx.WriteFile("two.jwks", TokenFactory.Jwks(Key1, Key2));
        nginx.WriteFile("one.jwks", TokenFactory.Jwks(Key1));
        string echo = nginx.Echo("ok");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /metrics { oauth_status; }

                location = /_two { internal; alias {{nginx.Directory}}/two.jwks; }
                location = /_one { internal; alias {{nginx.Directory}}/one.jwks; }
                location = /_gone { internal; return 404; }
                location = /_each { internal; alias {{nginx.Directory}}/two.jwks; }
                location = /_each_gone { internal; return 404; }

                location /two {
                    auth_jwt "ks";
                    auth_jwt_key_request /_two;
                    auth_jwt_key_cache 600s;
                    auth_jwt_key_refresh miss=1s;
                    {{echo}}
                }
                location /due {
                    auth_jwt "ks";
                    auth_jwt_key_request /_one;
                    auth_jwt_key_cache 1s;
                    auth_jwt_key_refresh miss=1h;
                    {{echo}}
                }
                location /disc {
                    auth_jwt "ks";
                    auth_jwt_discovery {{Issuer}};
                    {{echo}}
                }
                location /gone {
                    auth_jwt "ks";
                    auth_jwt_key_request /_gone;
                    {{echo}}
                }
                location /each {
                    auth_jwt "ks";
                    auth_jwt_key_request /_each;
                    auth_jwt_key_cache 0;
                    {{echo}}
                }
                location /each-gone {
                    auth_jwt "ks";
                    auth_jwt_key_request /_each_gone;
                    auth_jwt_key_cache 0;
                    {{echo}}
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    private async Task<PrometheusText> ScrapeAsync()
    {
        HttpReply reply = await Nginx.GetAsync("/metrics");
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        return PrometheusText.Parse(reply.Body);
    }

    private static double V(PrometheusText t, string name, string keyset, string? outcome = null) =>
        outcome is null
            ? t.Value(name, ("keyset", keyset))
            : t.Value(name, ("keyset", keyset), ("outcome", outcome));

    private static string Token(SigningKey key) => TokenFactory.Sign(key, TokenFactory.Claims("ks-user"));

    [Test]
    public async Task A_fetched_set_shows_its_keys_times_and_one_fetch_and_a_kid_miss_refetch_is_counted()
    {
        Assert.That((await Nginx.GetAsync("/two", Token(Key1))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/two", Token(Key2))).Status, Is.EqualTo(200));

        PrometheusText t = await ScrapeAsync();
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        Assert.Multiple(() =>
        {
            Assert.That(t.TypeOf["nginx_oauth_keyset_keys"], Is.EqualTo("gauge"));
            Assert.That(t.TypeOf["nginx_oauth_keyset_fetches_total"], Is.EqualTo("counter"));
            Assert.That(V(t, "nginx_oauth_keyset_keys", "/_two"), Is.EqualTo(2));
            Assert.That(V(t, "nginx_oauth_keyset_fetches_total", "/_two", "ok"), Is.EqualTo(1),
                "one fetch for both tokens");
            Assert.That(V(t, "nginx_oauth_keyset_fetches_total", "/_two", "error"), Is.EqualTo(0));
            Assert.That(V(t, "nginx_oauth_keyset_kid_miss_refetches_total", "/_two"), Is.EqualTo(0));
            Assert.That(V(t, "nginx_oauth_keyset_stale", "/_two"), Is.EqualTo(0));

            double fetched = V(t, "nginx_oauth_keyset_fetched_timestamp_seconds", "/_two");
            double due = V(t, "nginx_oauth_keyset_refresh_due_timestamp_seconds", "/_two");
            Assert.That(fetched, Is.InRange(_started - 300, now + 300), "the fetch time is a Unix time of now");
            Assert.That(due - fetched, Is.InRange(599, 601), "auth_jwt_key_cache 600s");
        });

        // a kid in no set: a refetch once miss= (1 s) allows one; poll for it
        string stranger = Token(Stranger);
        PrometheusText after = await Poll.UntilAsync(async () =>
        {
            Assert.That((await Nginx.GetAsync("/two", stranger)).Status, Is.EqualTo(401));
            return await ScrapeAsync();
        }, s => V(s, "nginx_oauth_keyset_kid_miss_refetches_total", "/_two") >= 1, "a kid-miss refetch");

        double refetches = V(after, "nginx_oauth_keyset_kid_miss_refetches_total", "/_two");
        Assert.Multiple(() =>
        {
            Assert.That(V(after, "nginx_oauth_keyset_fetches_total", "/_two", "ok"), Is.EqualTo(1 + refetches),
                "each refetch is one fetch");
            Assert.That(V(after, "nginx_oauth_keyset_keys", "/_two"), Is.EqualTo(2));
            Assert.That(V(after, "nginx_oauth_keyset_fetched_timestamp_seconds", "/_two"),
                Is.GreaterThanOrEqualTo(V(t, "nginx_oauth_keyset_fetched_timestamp_seconds", "/_two")));
        });
    }

    [Test]
    public async Task A_set_past_its_refresh_time_is_shown_stale()
    {
        Assert.That((await Nginx.GetAsync("/due", Token(Key1))).Status, Is.EqualTo(200));

        // auth_jwt_key_cache 1s: no request refreshes it (and miss=1h holds
        // off any refresh), so it turns stale and stays so
        PrometheusText t = await Poll.UntilAsync(ScrapeAsync,
            s => V(s, "nginx_oauth_keyset_stale", "/_one") == 1, "the set to be past its refresh time");

        Assert.Multiple(() =>
        {
            Assert.That(V(t, "nginx_oauth_keyset_keys", "/_one"), Is.EqualTo(1));
            Assert.That(V(t, "nginx_oauth_keyset_fetches_total", "/_one", "ok"), Is.EqualTo(1));
            Assert.That(V(t, "nginx_oauth_keyset_refresh_due_timestamp_seconds", "/_one")
                        - V(t, "nginx_oauth_keyset_fetched_timestamp_seconds", "/_one"), Is.InRange(0, 2));
        });

        // still served: the token verifies with the stale set
        Assert.That((await Nginx.GetAsync("/due", Token(Key1))).Status, Is.EqualTo(200));
    }

    [Test]
    public async Task A_failed_fetch_is_counted_and_no_set_is_shown()
    {
        Assert.That((await Nginx.GetAsync("/gone", Token(Key1))).Status, Is.Not.EqualTo(200));

        PrometheusText t = await ScrapeAsync();
        Assert.Multiple(() =>
        {
            Assert.That(V(t, "nginx_oauth_keyset_fetches_total", "/_gone", "error"), Is.EqualTo(1));
            Assert.That(V(t, "nginx_oauth_keyset_fetches_total", "/_gone", "ok"), Is.EqualTo(0));
            Assert.That(t.Samples.Any(s => s.Name == "nginx_oauth_keyset_keys" && s.Has(("keyset", "/_gone"))),
                Is.False, "no cached set, no gauges");
        });
    }

    [Test]
    public async Task Discovery_shows_the_metadata_under_its_issuer_and_the_key_set_it_names()
    {
        string token = TokenFactory.Sign(Key2, TokenFactory.Claims("ks-user", new JsonObject { ["iss"] = Issuer }));
        Assert.That((await Nginx.GetAsync("/disc", token)).Status, Is.EqualTo(200));

        PrometheusText t = await ScrapeAsync();
        PromSample[] keys = t.Samples.Where(s => s.Name == "nginx_oauth_keyset_keys").ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(V(t, "nginx_oauth_keyset_fetches_total", Issuer, "ok"), Is.EqualTo(1), "the metadata");
            Assert.That(V(t, "nginx_oauth_keyset_keys", Issuer), Is.EqualTo(0), "a metadata document has no keys");
            Assert.That(V(t, "nginx_oauth_keyset_keys", Issuer + "/certs"), Is.EqualTo(3),
                "the discovered set, labelled by its jwks_uri");
            Assert.That(V(t, "nginx_oauth_keyset_fetches_total", Issuer + "/certs", "ok"), Is.EqualTo(1));
            Assert.That(keys.Count(s => s.Value == 3), Is.EqualTo(1));
            Assert.That(t.Samples.Any(s => s.Name.StartsWith("nginx_oauth_keyset", StringComparison.Ordinal)
                                             && s.Labels["keyset"].Contains(".oauth-jwt", StringComparison.Ordinal)), Is.False,
                "no internal route in a label");
        });
        Assert.That(_idp.Requests("/realms/metrics/certs").Count, Is.EqualTo(1));
    }

    [Test]
    public async Task Without_the_key_cache_every_key_request_is_counted_as_a_fetch_and_an_IdP_call()
    {
        // auth_jwt_key_cache 0: one subrequest per request, no shared set
        for (int i = 0; i < 2; i++)
        {
            Assert.That((await Nginx.GetAsync("/each", Token(Key1))).Status, Is.EqualTo(200));
        }

        Assert.That((await Nginx.GetAsync("/each-gone", Token(Key1))).Status, Is.EqualTo(500));

        PrometheusText t = await ScrapeAsync();
        (string, string)[] each = [("module", "jwt"), ("endpoint", "/_each")];
        (string, string)[] gone = [("module", "jwt"), ("endpoint", "/_each_gone")];
        Assert.Multiple(() =>
        {
            Assert.That(V(t, "nginx_oauth_keyset_fetches_total", "/_each", "ok"), Is.EqualTo(2),
                "one fetch per request");
            Assert.That(V(t, "nginx_oauth_keyset_fetches_total", "/_each", "error"), Is.EqualTo(0));
            Assert.That(V(t, "nginx_oauth_keyset_fetches_total", "/_each_gone", "error"), Is.EqualTo(1));
            Assert.That(V(t, "nginx_oauth_keyset_fetches_total", "/_each_gone", "ok"), Is.EqualTo(0));
            Assert.That(t.Value("nginx_oauth_idp_requests_total", [.. each, ("outcome", "ok")]), Is.EqualTo(2));
            Assert.That(t.Value("nginx_oauth_idp_request_duration_seconds_count", each), Is.EqualTo(2));
            Assert.That(t.Value("nginx_oauth_idp_request_duration_seconds_count", gone), Is.EqualTo(1),
                "the failed one too");
            Assert.That(t.Samples.Any(s => s.Name == "nginx_oauth_keyset_keys" && s.Has(("keyset", "/_each"))),
                Is.False, "no shared set, no gauges");
        });
    }
}
