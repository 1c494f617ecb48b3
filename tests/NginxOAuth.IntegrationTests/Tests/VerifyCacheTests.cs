using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// auth_jwt_verify_cache: a hit skips the signature; entries are keyed by
/// the key material and the location's fixed checks (leeway, revocation
/// lists, rules with fixed values), so rotated keys or other checks never
/// match old entries; an entry ends when its token expires; rules with
/// variables and auth_jwt_require run again on every hit; the zone is shared by both workers, survives reload and evicts
/// least recently used entries. Hits and misses are read from a debug log.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed partial class VerifyCacheTests : NginxFixture
{
    private static readonly SigningKey Key = AlgVariant.Get("RS256").Key(3);
    private static readonly SigningKey OldKey = AlgVariant.Get("ES256").Key(3);
    private static readonly SigningKey NewKey = AlgVariant.Get("ES256").Key(4);

    private FakeHttpServer _keys = null!;
    private string _debugLog = "";

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _keys = await FakeHttpServer.StartAsync();
        _keys.Set("/jwks", FakeResponse.Json(TokenFactory.Jwks(OldKey)));
        _debugLog = Path.Combine(nginx.Directory, "debug.log");
        nginx.WriteFile("keys.jwks", TokenFactory.Jwks(Key));
        nginx.WriteFile("rotate.jwks", TokenFactory.Jwks(OldKey));
        nginx.WriteFile("subs.json", """{"revoked-sub": {"locked_at": "2024"}}""");
        nginx.Start(Config(nginx));
    }

    private string Config(NginxInstance nginx)
    {
        string echo = nginx.Echo("pid=$pid sub=$jwt_claim_sub role=$jwt_claim_role");
        return $$"""
            map $jwt_claim_role $is_admin { admin 1; default 0; }

            server {
                listen 127.0.0.1:{{nginx.Port}} reuseport;  # a socket per worker: new connections spread over both
                error_log {{_debugLog}} debug;
                large_client_header_buffers 4 64k;
                auth_jwt "cache";
                auth_jwt_key_file keys.jwks;
                auth_jwt_verify_cache zone=vc:1m max_ttl=300s;

                location /plain { {{echo}} }
                location /lenient { auth_jwt_leeway 30s; {{echo}} }
                location /revoking { auth_jwt_revocation_list_sub subs.json; {{echo}} }
                location /rule { auth_jwt_require_claim sub eq $http_x_user; {{echo}} }
                location /fixed-rule { auth_jwt_require_claim role eq admin; {{echo}} }
                location /admin { auth_jwt_require $is_admin error=403; {{echo}} }
                location /tiny {
                    auth_jwt_verify_cache zone=vtiny:32k;
                    {{echo}}
                }
                location /off {
                    auth_jwt_verify_cache zone=vc:1m max_ttl=0;
                    {{echo}}
                }
                location /rotate {
                    auth_jwt_key_file rotate.jwks;
                    auth_jwt_verify_cache zone=vrot:1m;
                    {{echo}}
                }
                location /fetched {
                    auth_jwt_key_request /_keys/jwks;
                    auth_jwt_key_cache 0; # the body of every request is part of the key
                    auth_jwt_verify_cache zone=vfetch:1m;
                    {{echo}}
                }
                location /_keys/ {
                    internal;
                    auth_jwt off;
                    proxy_pass {{_keys.BaseUrl}}/;
                }
            }
            """;
    }

    protected override async Task OnStopping() => await _keys.DisposeAsync();

    private long DebugMark() => File.Exists(_debugLog) ? new FileInfo(_debugLog).Length : 0;

    /// <summary>The module's cache lines written since <paramref name="mark"/>.</summary>
    private string[] CacheLines(long mark)
    {
        using var stream = new FileStream(_debugLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Seek(mark, SeekOrigin.Begin);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n').Where(l => l.Contains("auth_jwt: cache ", StringComparison.Ordinal))
            .ToArray();
    }

    private int Count(long mark, string zone, string what) =>
        CacheLines(mark).Count(l => l.Contains($"cache \"{zone}\" {what}", StringComparison.Ordinal));

    private static string Token(string sub, JsonObject? extra = null, SigningKey? key = null) =>
        TokenFactory.Sign(key ?? Key, TokenFactory.Claims(sub, extra));

    [Test]
    public async Task Second_request_is_a_hit_with_the_same_variables()
    {
        string token = Token("hit-user", new JsonObject { ["role"] = "dev" });
        long mark = DebugMark();

        HttpReply first = await Nginx.GetAsync("/plain", token);
        HttpReply second = await Nginx.GetAsync("/plain", token);

        Assert.That(first.Status, Is.EqualTo(200), first.ToString());
        Assert.That(second.Status, Is.EqualTo(200), second.ToString());
        Assert.That(second.Body, Does.EndWith("sub=hit-user role=dev"));
        Assert.That(Count(mark, "vc", "stored"), Is.EqualTo(1));
        Assert.That(Count(mark, "vc", "hit"), Is.EqualTo(1));
    }

    [Test]
    public async Task Forged_token_is_not_cached_and_a_tampered_copy_misses()
    {
        string token = Token("forge-user");
        long mark = DebugMark();

        Assert.That((await Nginx.GetAsync("/plain", TokenFactory.Tampered(token))).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/plain", TokenFactory.Tampered(token))).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/plain", TokenFactory.Tampered(token))).Status, Is.EqualTo(401));

        Assert.That(Count(mark, "vc", "stored"), Is.EqualTo(1), "only the valid token is stored");
        Assert.That(Count(mark, "vc", "hit"), Is.EqualTo(0));
    }

    [Test]
    public async Task Entry_ends_when_the_token_expires()
    {
        // stored with a TTL that ends at exp (+ leeway): a hit before, a
        // miss and a rejection after. exp is 5 s away so the hit right after
        // the store is well inside it; then requests until the token expires
        var claims = TokenFactory.Claims("short-user");
        claims["exp"] = TokenFactory.Now + 5;
        string token = TokenFactory.Sign(Key, claims);
        long mark = DebugMark();

        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(200));
        Assert.That(Count(mark, "vc", "hit"), Is.EqualTo(1));

        (int status, int hits) = await Poll.UntilAsync<(int Status, int Hits)>(async () =>
        {
            long before = DebugMark();
            int code = (await Nginx.GetAsync("/plain", token)).Status;
            return (code, Count(before, "vc", "hit"));
        }, r => r.Status != 200, "the token to expire");
        Assert.That(status, Is.EqualTo(401));
        Assert.That(hits, Is.EqualTo(0), "the entry ended with the token");
    }

    [Test]
    public async Task Entry_stored_with_a_leeway_is_not_used_by_a_location_without_it()
    {
        // expired 5 s ago: valid with 30 s leeway (and stored for ~25 s),
        // expired for a location without leeway that shares the zone and keys
        var claims = TokenFactory.Claims("late-user");
        claims["exp"] = TokenFactory.Now - 5;
        string token = TokenFactory.Sign(Key, claims);
        long mark = DebugMark();

        Assert.That((await Nginx.GetAsync("/lenient", token)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/lenient", token)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(401));

        Assert.That(Count(mark, "vc", "stored"), Is.EqualTo(1));
        Assert.That(Count(mark, "vc", "hit"), Is.EqualTo(1), "only the lenient location hits");
    }

    [Test]
    public async Task Entry_stored_without_a_revocation_list_is_not_used_by_a_location_with_one()
    {
        string token = Token("revoked-sub");
        long mark = DebugMark();

        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/revoking", token)).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/revoking", token)).Status, Is.EqualTo(401));

        Assert.That(Count(mark, "vc", "hit"), Is.EqualTo(0));
    }

    [Test]
    public async Task Entry_stored_without_a_fixed_rule_is_not_used_by_a_location_with_it()
    {
        string dev = Token("fixed-dev", new JsonObject { ["role"] = "dev" });
        string admin = Token("fixed-admin", new JsonObject { ["role"] = "admin" });
        long mark = DebugMark();

        Assert.That((await Nginx.GetAsync("/plain", dev)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/fixed-rule", dev)).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/fixed-rule", admin)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/fixed-rule", admin)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/fixed-rule", dev)).Status, Is.EqualTo(401));

        Assert.That(Count(mark, "vc", "hit"), Is.EqualTo(1), "only the admin token's second request hits");
    }

    [Test]
    public async Task Revocation_list_changed_by_a_reload_applies_to_cached_tokens()
    {
        string token = Token("later-revoked");
        Assert.That((await Nginx.GetAsync("/revoking", token)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/revoking", token)).Status, Is.EqualTo(200));

        Nginx.WriteFile("subs.json", """{"revoked-sub": {"locked_at": "2024"}, "later-revoked": {}}""");
        try
        {
            Nginx.Reload();
            long mark = DebugMark();
            Assert.That((await Nginx.GetAsync("/revoking", token)).Status, Is.EqualTo(401));
            Assert.That(Count(mark, "vc", "hit"), Is.EqualTo(0));
        }
        finally
        {
            Nginx.WriteFile("subs.json", """{"revoked-sub": {"locked_at": "2024"}}""");
            Nginx.Reload();
        }
    }

    [Test]
    public async Task Require_claim_with_a_variable_runs_again_on_a_hit()
    {
        string token = Token("rule-user");
        long mark = DebugMark();

        HttpReply ok = await Nginx.GetAsync("/rule", token,
            configure: r => r.Headers.Add("X-User", "\"rule-user\""));
        HttpReply other = await Nginx.GetAsync("/rule", token,
            configure: r => r.Headers.Add("X-User", "\"someone-else\""));
        HttpReply again = await Nginx.GetAsync("/rule", token,
            configure: r => r.Headers.Add("X-User", "\"rule-user\""));

        Assert.That(ok.Status, Is.EqualTo(200), ok.ToString());
        Assert.That(other.Status, Is.EqualTo(401), other.ToString());
        Assert.That(again.Status, Is.EqualTo(200), again.ToString());
        Assert.That(Count(mark, "vc", "hit"), Is.EqualTo(2));
    }

    [Test]
    public async Task Auth_jwt_require_runs_again_on_a_hit()
    {
        string dev = Token("req-dev", new JsonObject { ["role"] = "dev" });
        string admin = Token("req-admin", new JsonObject { ["role"] = "admin" });
        long mark = DebugMark();

        Assert.That((await Nginx.GetAsync("/plain", dev)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/admin", dev)).Status, Is.EqualTo(403));
        Assert.That((await Nginx.GetAsync("/admin", admin)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/admin", admin)).Status, Is.EqualTo(200));

        Assert.That(Count(mark, "vc", "hit"), Is.EqualTo(2));
    }

    [Test]
    public async Task Token_with_more_than_16_KiB_of_claims_is_verified_but_not_cached()
    {
        string token = Token("big-user", new JsonObject { ["pad"] = new string('x', 17 * 1024) });
        long mark = DebugMark();

        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(200));

        Assert.That(Count(mark, "vc", "stored"), Is.EqualTo(0));
        Assert.That(Count(mark, "vc", "hit"), Is.EqualTo(0));
        Assert.That(File.ReadAllText(_debugLog), Does.Contain("auth_jwt: not caching a token of"));
    }

    [Test]
    public async Task Max_ttl_zero_neither_reads_nor_stores()
    {
        string token = Token("off-user");
        long mark = DebugMark();

        Assert.That((await Nginx.GetAsync("/off", token)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/off", token)).Status, Is.EqualTo(200));

        Assert.That(CacheLines(mark), Is.Empty);
    }

    [Test]
    public async Task Changed_key_request_body_misses_and_old_tokens_are_rejected()
    {
        string oldToken = Token("jwks-user", key: OldKey);
        string newToken = Token("jwks-user", key: NewKey);
        long mark = DebugMark();
        try
        {
            Assert.That((await Nginx.GetAsync("/fetched", oldToken)).Status, Is.EqualTo(200));
            Assert.That((await Nginx.GetAsync("/fetched", oldToken)).Status, Is.EqualTo(200));
            Assert.That(Count(mark, "vfetch", "hit"), Is.EqualTo(1));

            _keys.Set("/jwks", FakeResponse.Json(TokenFactory.Jwks(NewKey)));

            Assert.That((await Nginx.GetAsync("/fetched", oldToken)).Status, Is.EqualTo(401));
            Assert.That((await Nginx.GetAsync("/fetched", newToken)).Status, Is.EqualTo(200));
            Assert.That(Count(mark, "vfetch", "hit"), Is.EqualTo(1), "no hit after the key set changed");
        }
        finally
        {
            _keys.Set("/jwks", FakeResponse.Json(TokenFactory.Jwks(OldKey)));
        }
    }

    [Test]
    public async Task Full_zone_evicts_the_least_recently_used_and_keeps_caching()
    {
        const int tokens = 300;
        long mark = DebugMark();
        var all = Enumerable.Range(0, tokens).Select(i => Token($"lru-{i}")).ToArray();
        foreach (string token in all)
        {
            Assert.That((await Nginx.GetAsync("/tiny", token)).Status, Is.EqualTo(200));
        }

        long after = DebugMark();
        Assert.That((await Nginx.GetAsync("/tiny", all[^1])).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/tiny", all[0])).Status, Is.EqualTo(200));

        Assert.That(Count(mark, "vtiny", "evicted the least recently used entry"), Is.GreaterThan(0));
        Assert.That(Count(after, "vtiny", "hit"), Is.EqualTo(1), "the newest entry is still cached");
        Assert.That(Count(after, "vtiny", "stored"), Is.EqualTo(1), "the oldest was evicted and is stored again");
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Not.Contain("ngx_slab_alloc() failed"));
    }

    [Test]
    public async Task Both_workers_share_one_zone()
    {
        string token = Token("shared-user");
        long mark = DebugMark();
        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(200));

        var pids = new HashSet<string>();
        HttpReply[] replies = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ =>
            Nginx.GetAsync("/plain", token, configure: r => r.Headers.ConnectionClose = true)));
        foreach (HttpReply reply in replies)
        {
            Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
            pids.Add(reply.Body.Split(' ')[0]);
        }

        Assert.That(Count(mark, "vc", "stored"), Is.EqualTo(1), "one verification for 101 requests over both workers");
        Assert.That(Count(mark, "vc", "hit"), Is.EqualTo(100));
        Assert.That(pids, Has.Count.EqualTo(2), "both workers answered (reuseport spreads new connections over them)");
        Assert.That(HitPids(mark, "vc"), Has.Count.EqualTo(2), "hits in both workers");
    }

    [Test]
    public async Task Entries_survive_reload()
    {
        string token = Token("reload-user");
        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(200));

        Nginx.Reload();
        long mark = DebugMark();
        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(200));

        Assert.That(Count(mark, "vc", "hit"), Is.EqualTo(1));
        Assert.That(Count(mark, "vc", "stored"), Is.EqualTo(0));
    }

    [Test]
    public async Task Changed_key_file_after_reload_rejects_tokens_of_the_old_key()
    {
        string oldToken = Token("rotate-user", key: OldKey);
        string newToken = Token("rotate-user", key: NewKey);
        Assert.That((await Nginx.GetAsync("/rotate", oldToken)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/rotate", oldToken)).Status, Is.EqualTo(200));

        Nginx.WriteFile("rotate.jwks", TokenFactory.Jwks(NewKey));
        try
        {
            Nginx.Reload();
            long mark = DebugMark();

            Assert.That((await Nginx.GetAsync("/rotate", oldToken)).Status, Is.EqualTo(401));
            Assert.That((await Nginx.GetAsync("/rotate", newToken)).Status, Is.EqualTo(200));
            Assert.That(Count(mark, "vrot", "hit"), Is.EqualTo(0));
        }
        finally
        {
            Nginx.WriteFile("rotate.jwks", TokenFactory.Jwks(OldKey));
            Nginx.Reload();
        }
    }

    private HashSet<string> HitPids(long mark, string zone) =>
        CacheLines(mark).Where(l => l.Contains($"cache \"{zone}\" hit", StringComparison.Ordinal))
            .Select(l => PidPattern().Match(l).Groups[1].Value).ToHashSet();

    [GeneratedRegex(@"\[debug\] (\d+)#")]
    private static partial Regex PidPattern();
}
