using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// The shared key set cache of auth_jwt_key_request: one fetch per key set
/// and refresh interval for the whole nginx (2 workers), refetch on an
/// unknown kid (rate limited), stale keys while the key server fails,
/// entries that survive reload, auth_jwt_key_cache.  Every test has its
/// own key path, so its counts are its own.
/// </summary>
[TestFixture]
public sealed class KeyCacheTests : NginxFixture
{
    private static readonly SigningKey KeyA = AlgVariant.Get("RS256").Key(0);
    private static readonly SigningKey KeyB = AlgVariant.Get("ES256").Key(0);

    private FakeHttpServer _keys = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _keys = await FakeHttpServer.StartAsync();
        foreach (string path in new[] { "/interval", "/rotation", "/flood", "/down", "/reload", "/plus" })
        {
            _keys.Set(path, FakeResponse.Json(TokenFactory.Jwks(KeyA)));
        }

        _keys.Set("/interval", WithMaxAge(TokenFactory.Jwks(KeyA), 1));
        _keys.Set("/plus", WithMaxAge(TokenFactory.Jwks(KeyA), 3600));

        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "keys";
                location /_k/ { internal; auth_jwt off; proxy_pass {{_keys.BaseUrl}}/; }

                location /interval {
                    auth_jwt_key_request /_k/interval;
                    auth_jwt_key_refresh min=1s max=1s miss=1s;
                    {{echo}}
                }
                location /rotation {
                    auth_jwt_key_request /_k/rotation;
                    auth_jwt_key_refresh min=1h miss=1s;
                    {{echo}}
                }
                location /flood {
                    auth_jwt_key_request /_k/flood;
                    auth_jwt_key_refresh min=1h miss=1h;
                    {{echo}}
                }
                location /down {
                    auth_jwt_key_request /_k/down;
                    auth_jwt_key_refresh min=1s max=1s miss=1s stale=1h;
                    {{echo}}
                }
                location /reload {
                    auth_jwt_key_request /_k/reload;
                    auth_jwt_key_refresh min=1h;
                    {{echo}}
                }
                location /plus {
                    auth_jwt_key_request /_k/plus;
                    auth_jwt_key_cache 1s;
                    auth_jwt_key_refresh miss=1s;
                    {{echo}}
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _keys.DisposeAsync();

    private static FakeResponse WithMaxAge(string body, int seconds) =>
        new(200, body, Headers: new Dictionary<string, string> { ["Cache-Control"] = $"public, max-age={seconds}" });

    private static string Token(SigningKey key, JsonObject? header = null) =>
        TokenFactory.Sign(key, TokenFactory.Claims("alice"), header);

    private async Task<int[]> Burst(string path, string token, int n) =>
        (await Task.WhenAll(Enumerable.Range(0, n).Select(_ => Nginx.GetAsync(path, token))))
            .Select(r => r.Status).ToArray();

    [Test]
    public async Task Concurrent_requests_in_both_workers_make_one_fetch_then_one_per_interval()
    {
        int[] statuses = await Burst("/interval", Token(KeyA), 20);

        Assert.That(statuses, Is.All.EqualTo(200));
        Assert.That(_keys.Count("/interval"), Is.EqualTo(1), "a cold cache is filled by one fetch");

        // max-age=1: a later request finds the set due and refreshes it in the background
        await Poll.UntilAsync(async () =>
        {
            Assert.That((await Nginx.GetAsync("/interval", Token(KeyA))).Status, Is.EqualTo(200));
            return _keys.Count("/interval");
        }, n => n >= 2, "a refresh after max-age");
    }

    [Test]
    public async Task Rotated_keys_are_picked_up_on_a_kid_miss()
    {
        Assert.That((await Nginx.GetAsync("/rotation", Token(KeyA))).Status, Is.EqualTo(200));
        Assert.That(_keys.Count("/rotation"), Is.EqualTo(1));

        _keys.Set("/rotation", FakeResponse.Json(TokenFactory.Jwks(KeyA, KeyB)));

        // min=1h: only the unknown kid makes it fetch again (after miss=1s)
        await Poll.UntilAsync(() => Nginx.GetAsync("/rotation", Token(KeyB)), r => r.Status == 200,
            "the rotated key accepted");

        Assert.That(_keys.Count("/rotation"), Is.EqualTo(2));
        Assert.That((await Nginx.GetAsync("/rotation", Token(KeyA))).Status, Is.EqualTo(200));
        Assert.That(_keys.Count("/rotation"), Is.EqualTo(2));
    }

    [Test]
    public async Task A_flood_of_random_kids_never_exceeds_the_rate_limit()
    {
        Assert.That((await Nginx.GetAsync("/flood", Token(KeyA))).Status, Is.EqualTo(200));

        IEnumerable<Task<HttpReply>> flood = Enumerable.Range(0, 60).Select(_ =>
            Nginx.GetAsync("/flood", Token(KeyA, new JsonObject { ["kid"] = Guid.NewGuid().ToString("N") })));
        HttpReply[] replies = await Task.WhenAll(flood);

        Assert.That(replies.Select(r => r.Status), Is.All.EqualTo(401));
        Assert.That(_keys.Count("/flood"), Is.EqualTo(1), "miss=1h: no fetch after the first");
        Assert.That((await Nginx.GetAsync("/flood", Token(KeyA))).Status, Is.EqualTo(200));
    }

    [Test]
    public async Task Stale_keys_are_used_while_the_key_server_is_down()
    {
        Assert.That((await Nginx.GetAsync("/down", Token(KeyA))).Status, Is.EqualTo(200));

        _keys.Set("/down", FakeResponse.Error(503));
        int before = _keys.Count("/down");

        await Poll.UntilAsync(async () =>
        {
            Assert.That((await Nginx.GetAsync("/down", Token(KeyA))).Status, Is.EqualTo(200));
            return _keys.Count("/down");
        }, n => n >= before + 2, "refreshes tried while the server fails");

        Nginx.WaitForLogLine(TestLogMark, @"\[warn\].*auth_jwt: key set .*/_k/down.* not refreshed: using the one fetched");

        _keys.Set("/down", FakeResponse.Json(TokenFactory.Jwks(KeyA)));
    }

    [Test]
    public async Task Reload_keeps_the_cached_key_sets()
    {
        Assert.That((await Nginx.GetAsync("/reload", Token(KeyA))).Status, Is.EqualTo(200));
        Assert.That(_keys.Count("/reload"), Is.EqualTo(1));

        Nginx.Reload();

        Assert.That(await Burst("/reload", Token(KeyA), 6), Is.All.EqualTo(200));
        Assert.That(_keys.Count("/reload"), Is.EqualTo(1));
    }

    [Test]
    public async Task Auth_jwt_key_cache_sets_the_interval_whatever_the_answer_says()
    {
        Assert.That((await Nginx.GetAsync("/plus", Token(KeyA))).Status, Is.EqualTo(200));

        // max-age=3600 from the server, auth_jwt_key_cache 1s: refreshed anyway
        await Poll.UntilAsync(async () =>
        {
            Assert.That((await Nginx.GetAsync("/plus", Token(KeyA))).Status, Is.EqualTo(200));
            return _keys.Count("/plus");
        }, n => n >= 2, "a refresh after auth_jwt_key_cache");
    }
}
