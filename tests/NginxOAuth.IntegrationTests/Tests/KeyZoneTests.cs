using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// auth_jwt_key_zone: the auth_jwt_keys zone at its minimum size (32k, 8
/// pages).  A key set over half the zone is never cached nor used: the
/// request fails closed (500 and an [error] line naming the directive), or
/// the last good set is used within stale=; the sets that fit stay cached.
/// </summary>
[TestFixture]
public sealed class KeyZoneTests : NginxFixture
{
    private static readonly SigningKey KeyA = AlgVariant.Get("RS256").Key(0);

    private FakeHttpServer _keys = null!;

    // valid JSON, 20 KiB of it whitespace: over half of a 32k zone
    private static string Oversized() => "{\"keys\":[" + KeyA.Jwk().ToJsonString() + "]" + new string(' ', 20 * 1024) + "}";

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _keys = await FakeHttpServer.StartAsync();
        _keys.Set("/small", FakeResponse.Json(TokenFactory.Jwks(KeyA)));
        _keys.Set("/big", FakeResponse.Json(Oversized()));
        _keys.Set("/grow", FakeResponse.Json(TokenFactory.Jwks(KeyA)));

        nginx.Start(Config(nginx, "32k"));
    }

    private string Config(NginxInstance nginx, string size)
    {
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        return $$"""
            auth_jwt_key_zone {{size}};
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "keys";
                location /_k/ {
                    internal;
                    auth_jwt off;
                    subrequest_output_buffer_size 64k;
                    proxy_pass {{_keys.BaseUrl}}/;
                }

                location /small {
                    auth_jwt_key_request /_k/small;
                    auth_jwt_key_refresh min=1h;
                    {{echo}}
                }
                location /big {
                    auth_jwt_key_request /_k/big;
                    auth_jwt_key_refresh min=1h miss=1h;
                    {{echo}}
                }
                location /grow {
                    auth_jwt_key_request /_k/grow;
                    auth_jwt_key_refresh min=1s max=1s miss=1s stale=1h;
                    {{echo}}
                }
            }
            """;
    }

    protected override async Task OnStopping() => await _keys.DisposeAsync();

    private static string Token() => TokenFactory.Sign(KeyA, TokenFactory.Claims("alice"));

    [Test]
    public async Task A_key_set_that_fits_the_minimum_zone_is_cached()
    {
        HttpReply reply = await Nginx.GetAsync("/small", Token());
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(reply.Body, Is.EqualTo("sub=alice"));
        int fetches = _keys.Count("/small");

        for (int i = 0; i < 5; i++)
        {
            Assert.That((await Nginx.GetAsync("/small", Token())).Status, Is.EqualTo(200));
        }

        Assert.That(_keys.Count("/small"), Is.EqualTo(fetches), "served from the zone");
    }

    [Test]
    public async Task A_key_set_over_half_the_zone_fails_closed_and_says_so()
    {
        Assert.That((await Nginx.GetAsync("/small", Token())).Status, Is.EqualTo(200));
        int small = _keys.Count("/small");

        HttpReply reply = await Nginx.GetAsync("/big", Token());

        Assert.That(reply.Status, Is.EqualTo(500), "a valid token, but its key set is not usable: never 200");
        Assert.That(_keys.Count("/big"), Is.GreaterThanOrEqualTo(1), "it was fetched");
        Nginx.WaitForLogLine(TestLogMark,
            @"\[error\].*auth_jwt: key set .*/_k/big.* of \d+ bytes does not fit the key zone ""auth_jwt_keys"" of 32768 bytes \(an entry may take 16384\).*raise ""auth_jwt_key_zone""");
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*no usable key set");

        // it evicted nothing: the small set is still cached
        Assert.That((await Nginx.GetAsync("/small", Token())).Status, Is.EqualTo(200));
        Assert.That(_keys.Count("/small"), Is.EqualTo(small));

        // nor later, and the IdP is not asked again before miss= (1h)
        int fetches = _keys.Count("/big");
        int[] statuses = (await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => Nginx.GetAsync("/big", Token()))))
            .Select(r => r.Status).ToArray();
        Assert.That(statuses, Is.All.EqualTo(500));
        Assert.That(_keys.Count("/big"), Is.EqualTo(fetches), "an oversized set is not fetched per request");
    }

    [Test]
    public async Task A_key_set_that_outgrows_the_zone_leaves_the_last_good_one_in_use()
    {
        Assert.That((await Nginx.GetAsync("/grow", Token())).Status, Is.EqualTo(200));

        _keys.Set("/grow", FakeResponse.Json(Oversized()));
        int before = _keys.Count("/grow");

        await Poll.UntilAsync(async () =>
        {
            Assert.That((await Nginx.GetAsync("/grow", Token())).Status, Is.EqualTo(200));
            return _keys.Count("/grow");
        }, n => n >= before + 1, "a refresh that brings the oversized set");

        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*key set .*/_k/grow.* does not fit the key zone");
        Nginx.WaitForLogLine(TestLogMark, @"\[warn\].*key set .*/_k/grow.* not refreshed: using the one fetched");

        _keys.Set("/grow", FakeResponse.Json(TokenFactory.Jwks(KeyA)));
    }

    [Test]
    public async Task Raising_the_zone_size_on_reload_makes_a_new_empty_zone_that_holds_the_large_set()
    {
        Assert.That((await Nginx.GetAsync("/small", Token())).Status, Is.EqualTo(200));
        int small = _keys.Count("/small");
        Assert.That((await Nginx.GetAsync("/big", Token())).Status, Is.EqualTo(500));

        try
        {
            Nginx.Reload(Config(Nginx, "128k"));

            Assert.That((await Nginx.GetAsync("/small", Token())).Status, Is.EqualTo(200));
            Assert.That(_keys.Count("/small"), Is.EqualTo(small + 1), "another size: a new, empty zone");

            // half of 128k holds the 20 KiB set: fetched at once (the new zone has no
            // fetch marker), cached and used
            HttpReply big = await Nginx.GetAsync("/big", Token());
            Assert.That(big.Status, Is.EqualTo(200), big.Body);
            int fetches = _keys.Count("/big");
            Assert.That((await Nginx.GetAsync("/big", Token())).Status, Is.EqualTo(200));
            Assert.That(_keys.Count("/big"), Is.EqualTo(fetches), "served from the zone");
        }
        finally
        {
            Nginx.Reload(Config(Nginx, "32k"));
        }
    }
}
