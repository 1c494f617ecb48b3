using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>
/// With error_log at debug, the caches report misses, stores, hits, expiry
/// and eviction, and the module's lines give sizes but never the token.
/// (nginx's own debug lines print request headers, tokens included; only the
/// module's lines are checked.)
/// </summary>
[TestFixture]
public sealed class CacheDebugLogTests : NginxFixture
{
    private FakeIdp _idp = null!;
    private string _debugLog = "";

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeIdp.StartAsync();
        _debugLog = Path.Combine(nginx.Directory, "debug.log");
        nginx.Start($$"""
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret secret-never-logged;

            server {
                listen 127.0.0.1:{{nginx.Port}};
                error_log {{_debugLog}} debug;

                location = /_introspect { internal; proxy_pass {{_idp.BaseUrl}}/introspect; }
                auth_oauth2_token_introspect_endpoint /_introspect;

                location /short {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=dshort:1m max_ttl=4s;
                    {{nginx.Echo("ok")}}
                }
                location /tiny {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=dtiny:32k;
                    {{nginx.Echo("ok")}}
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    private string[] ModuleLines() => File.ReadAllLines(_debugLog)
        .Where(l => l.Contains("auth_oauth2_token:", StringComparison.Ordinal)).ToArray();

    [Test]
    public async Task Cache_miss_store_hit_and_expiry_are_logged_at_debug_without_the_token()
    {
        // max_ttl=4s: the second request is a hit well inside it; then
        // requests until one finds the entry expired
        const string token = "tok-debug-SECRETVALUE";
        Assert.That((await Nginx.GetAsync("/short", token)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/short", token)).Status, Is.EqualTo(200));
        await Poll.UntilAsync(async () =>
        {
            Assert.That((await Nginx.GetAsync("/short", token)).Status, Is.EqualTo(200));
            return ModuleLines().Count(l => l.Contains("cache \"dshort\" entry expired", StringComparison.Ordinal));
        }, n => n > 0, "a request to find the entry expired");

        string[] lines = ModuleLines();
        Assert.That(lines, Has.Some.Contains("[debug]").And.Contains("cache \"dshort\" miss"));
        Assert.That(lines, Has.Some.Contains("cache \"dshort\" stored"));
        Assert.That(lines, Has.Some.Contains("cache \"dshort\" hit"));
        Assert.That(lines, Has.Some.Contains("cache \"dshort\" entry expired"));
        Assert.That(lines, Has.Some.Contains($"bearer token of {token.Length} bytes"));
        Assert.That(lines, Has.None.Contains("SECRETVALUE"), "the module never logs the token");
        Assert.That(lines, Has.None.Contains("secret-never-logged"));
        Assert.That(lines, Has.None.Contains(Convert.ToBase64String("gw:secret-never-logged"u8.ToArray())));
    }

    [Test]
    public async Task Eviction_from_a_full_zone_is_logged_at_debug()
    {
        for (int i = 0; i < 300; i++)
        {
            Assert.That((await Nginx.GetAsync("/tiny", $"tok-dlru-{i}")).Status, Is.EqualTo(200));
        }

        Assert.That(ModuleLines(), Has.Some.Contains("[debug]").And.Contains("cache \"dtiny\" evicted the least recently used entry"));
        Assert.That(File.ReadAllText(_debugLog), Does.Not.Contain("ngx_slab_alloc() failed"));
    }
}
