using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>
/// auth_oauth2_token_introspect_cache / _exchange_cache: shared memory zones
/// used by both workers, kept across reloads, bounded by max_ttl and the
/// token's exp / expires_in, evicting least recently used entries when full.
/// Each test uses its own tokens: the fake IdP counts calls per token.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class CacheTests : NginxFixture
{
    private FakeIdp _idp = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeIdp.StartAsync();
        nginx.Start(Config(nginx));
    }

    private string Config(NginxInstance nginx)
    {
        string echo = nginx.Echo("pid=$pid sub=$oauth2_token_sub new=$oauth2_token_new_token");
        return $$"""
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret s;
            map $oauth2_token_sub $is_admin { ~admin 1; default 0; }

            server {
                listen 127.0.0.1:{{nginx.Port}} reuseport;  # a socket per worker: new connections spread over both

                location = /_introspect { internal; proxy_pass {{_idp.BaseUrl}}/introspect; }
                location = /_token { internal; proxy_pass {{_idp.BaseUrl}}/token; }
                auth_oauth2_token_introspect_endpoint /_introspect;
                auth_oauth2_token_token_endpoint /_token;

                location /cached {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=ic:1m max_ttl=300s;
                    {{echo}}
                }
                location /require {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=ic:1m;
                    auth_oauth2_token_require $is_admin error=403;
                    {{echo}}
                }
                location /short {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=ic:1m max_ttl=4s;
                    {{echo}}
                }
                location /tiny {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=tiny:32k;
                    {{echo}}
                }
                location /off {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=ic:1m max_ttl=0;
                    {{echo}}
                }
                location /xcached {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_audience aud-1;
                    auth_oauth2_token_exchange_cache zone=xc:1m max_ttl=300s;
                    proxy_pass {{_idp.BaseUrl}}/backend;
                }
                location /xother {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_audience aud-2;
                    auth_oauth2_token_exchange_cache zone=xc:1m max_ttl=300s;
                    proxy_pass {{_idp.BaseUrl}}/backend;
                }
                location /xoff {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_audience aud-1;
                    auth_oauth2_token_exchange_cache zone=xc:1m max_ttl=0;
                    proxy_pass {{_idp.BaseUrl}}/backend;
                }
            }
            """;
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    private int Introspections(string token) => _idp.Calls("/introspect", token);

    private int Exchanges(string token) => _idp.Calls("/token", token);

    /// <summary>
    /// Requests <paramref name="path"/> with <paramref name="token"/> (200
    /// expected) until <paramref name="calls"/> counts a second IdP call: the
    /// entry expired. Fails after the poll deadline while it is still served.
    /// </summary>
    private async Task WaitForSecondCallAsync(string path, string token, Func<int> calls)
    {
        int seen = await Poll.UntilAsync(async () =>
        {
            HttpReply reply = await Nginx.GetAsync(path, token);
            Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
            return calls();
        }, n => n != 1, $"the cached entry of {token} to expire");

        Assert.That(seen, Is.EqualTo(2), "one new IdP call once the entry expired");
    }

    [Test]
    public async Task Cache_hit_does_not_ask_the_IdP_again()
    {
        for (int i = 0; i < 5; i++)
        {
            HttpReply reply = await Nginx.GetAsync("/cached", "tok-hit");
            Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
            Assert.That(reply.Body, Does.Contain("sub=user-tok-hit "), "variables come from the cached response");
        }

        Assert.That(Introspections("tok-hit"), Is.EqualTo(1));
    }

    [Test]
    public async Task Cache_hit_runs_require_again()
    {
        HttpReply first = await Nginx.GetAsync("/require", "tok-plain");
        HttpReply second = await Nginx.GetAsync("/require", "tok-plain");
        HttpReply admin1 = await Nginx.GetAsync("/require", "tok-admin-r");
        HttpReply admin2 = await Nginx.GetAsync("/require", "tok-admin-r");

        Assert.That(first.Status, Is.EqualTo(403));
        Assert.That(second.Status, Is.EqualTo(403));
        Assert.That(admin1.Status, Is.EqualTo(200), admin1.ToString());
        Assert.That(admin2.Status, Is.EqualTo(200), admin2.ToString());
        Assert.That(Introspections("tok-plain"), Is.EqualTo(1));
        Assert.That(Introspections("tok-admin-r"), Is.EqualTo(1));
    }

    [Test]
    public async Task Inactive_token_is_not_cached()
    {
        Assert.That((await Nginx.GetAsync("/cached", "inactive-nc")).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/cached", "inactive-nc")).Status, Is.EqualTo(401));

        Assert.That(Introspections("inactive-nc"), Is.EqualTo(2));
    }

    [Test]
    public async Task Entry_expires_after_max_ttl()
    {
        // max_ttl=4s: the hit right after the store is well inside it
        Assert.That((await Nginx.GetAsync("/short", "tok-short")).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/short", "tok-short")).Status, Is.EqualTo(200));
        Assert.That(Introspections("tok-short"), Is.EqualTo(1));

        await WaitForSecondCallAsync("/short", "tok-short", () => Introspections("tok-short"));
    }

    [Test]
    public async Task Entry_expires_at_the_token_exp_before_max_ttl()
    {
        // exp = now + 5 s, max_ttl 300 s: expiry within the poll deadline comes from exp
        Assert.That((await Nginx.GetAsync("/cached", "exp5-e")).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/cached", "exp5-e")).Status, Is.EqualTo(200));
        Assert.That(Introspections("exp5-e"), Is.EqualTo(1));

        await WaitForSecondCallAsync("/cached", "exp5-e", () => Introspections("exp5-e"));
    }

    [Test]
    public async Task Full_zone_evicts_the_least_recently_used_and_keeps_caching()
    {
        const int tokens = 400;
        for (int i = 0; i < tokens; i++)
        {
            HttpReply reply = await Nginx.GetAsync("/tiny", $"tok-lru-{i}");
            Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        }

        // the newest entries are still cached, the oldest were evicted
        Assert.That((await Nginx.GetAsync("/tiny", $"tok-lru-{tokens - 1}")).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/tiny", $"tok-lru-{tokens - 2}")).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/tiny", "tok-lru-0")).Status, Is.EqualTo(200));

        Assert.That(Introspections($"tok-lru-{tokens - 1}"), Is.EqualTo(1), "new entries are cached after the zone filled");
        Assert.That(Introspections($"tok-lru-{tokens - 2}"), Is.EqualTo(1));
        Assert.That(Introspections("tok-lru-0"), Is.EqualTo(2), "the oldest entry was evicted");
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Not.Contain("ngx_slab_alloc() failed"));
    }

    [Test]
    public async Task Both_workers_share_one_zone()
    {
        Assert.That((await Nginx.GetAsync("/cached", "tok-shared")).Status, Is.EqualTo(200));

        var pids = new HashSet<string>();
        HttpReply[] replies = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ =>
            Nginx.GetAsync("/cached", "tok-shared", configure: r => r.Headers.ConnectionClose = true)));
        foreach (HttpReply reply in replies)
        {
            Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
            pids.Add(reply.Body.Split(' ')[0]);
        }

        Assert.That(Introspections("tok-shared"), Is.EqualTo(1), "one IdP call for 201 requests over both workers");
        Assert.That(pids, Has.Count.EqualTo(2), "both workers answered (reuseport spreads new connections over them)");
    }

    [Test]
    public async Task Entries_survive_a_reload()
    {
        Assert.That((await Nginx.GetAsync("/cached", "tok-reload")).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/xcached", "tok-xreload")).Status, Is.EqualTo(200));

        Nginx.Reload(Config(Nginx));
        Assert.That((await Nginx.GetAsync("/cached", "tok-reload")).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/xcached", "tok-xreload")).Status, Is.EqualTo(200));

        Nginx.Reload(viaCommand: true);
        Assert.That((await Nginx.GetAsync("/cached", "tok-reload")).Status, Is.EqualTo(200));

        Assert.That(Introspections("tok-reload"), Is.EqualTo(1));
        Assert.That(Exchanges("tok-xreload"), Is.EqualTo(1));
    }

    [Test]
    public async Task Max_ttl_0_disables_the_cache()
    {
        Assert.That((await Nginx.GetAsync("/off", "tok-off")).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/off", "tok-off")).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/xoff", "tok-xoff")).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/xoff", "tok-xoff")).Status, Is.EqualTo(200));

        Assert.That(Introspections("tok-off"), Is.EqualTo(2));
        Assert.That(Exchanges("tok-xoff"), Is.EqualTo(2));
    }

    [Test]
    public async Task Exchange_cache_hit_forwards_the_cached_token()
    {
        HttpReply first = await Nginx.GetAsync("/xcached", "tok-xhit");
        HttpReply second = await Nginx.GetAsync("/xcached", "tok-xhit");

        Assert.That(first.Body, Does.StartWith("authorization=Bearer x.tok-xhit.aud-1.;"), first.ToString());
        Assert.That(second.Body, Is.EqualTo(first.Body));
        Assert.That(Exchanges("tok-xhit"), Is.EqualTo(1));
    }

    [Test]
    public async Task Exchange_cache_key_covers_the_audience()
    {
        HttpReply one = await Nginx.GetAsync("/xcached", "tok-xaud");
        HttpReply two = await Nginx.GetAsync("/xother", "tok-xaud");

        Assert.That(one.Body, Does.StartWith("authorization=Bearer x.tok-xaud.aud-1.;"));
        Assert.That(two.Body, Does.StartWith("authorization=Bearer x.tok-xaud.aud-2.;"));
        Assert.That(Exchanges("tok-xaud"), Is.EqualTo(2));
    }

    [Test]
    public async Task Exchange_entry_expires_after_expires_in()
    {
        // expires_in 4 s, max_ttl 300 s: expiry within the poll deadline comes from expires_in
        Assert.That((await Nginx.GetAsync("/xcached", "ttl4-x")).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/xcached", "ttl4-x")).Status, Is.EqualTo(200));
        Assert.That(Exchanges("ttl4-x"), Is.EqualTo(1));

        await WaitForSecondCallAsync("/xcached", "ttl4-x", () => Exchanges("ttl4-x"));
    }
}
