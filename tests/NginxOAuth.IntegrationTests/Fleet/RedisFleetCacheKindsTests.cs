using System;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Sts;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Fleet;

/// <summary>
/// The other caches with a second level: the STS target-token cache
/// (STSCache shm "...&amp;redis=name") and the verified-token cache
/// (auth_jwt_verify_cache ... redis=name), each shared by two gateways with
/// separate masters through one real redis-server, sealed, and a miss for
/// a gateway with another key.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisFleetCacheKindsTests
{
    private const string Secret = "fleet-secret-0123456789abcdef";
    private static readonly SigningKey Key = AlgVariant.Get("ES256").Key(5);

    private RedisServer _redis = null!;
    private ScriptedSts _sts = null!;

    [OneTimeSetUp]
    public async Task StartServers()
    {
        _redis = RedisServer.Start();
        _sts = await ScriptedSts.StartAsync();
    }

    [OneTimeTearDown]
    public async Task StopServers()
    {
        _redis.Dispose();
        await _sts.DisposeAsync();
    }

    private NginxInstance Gateway(string name, string secret = Secret)
    {
        var nginx = new NginxInstance(name);
        string key = nginx.WriteFile("redis.key", secret);
        string jwks = nginx.WriteFile("keys.jwks", TokenFactory.Jwks(Key));
        string debug = Path.Combine(nginx.Directory, "debug.log");
        string echo = nginx.Echo("t=[$t] sub=$jwt_claim_sub");
        nginx.Start($$"""
            oauth_redis shared 127.0.0.1:{{_redis.Port}} key_file={{key}} prefix=kinds: db=1;

            server {
                listen 127.0.0.1:{{nginx.Port}};
                error_log {{debug}} debug;

                location = /sts {
                    STSCache shm "name=fleetsts&redis=shared";
                    STSExchange otx {{_sts.BaseUrl}}/token "client_id=gw";
                    STSVariables $http_x_source $t;
                    {{echo}}
                }
                location = /jwt {
                    auth_jwt "fleet";
                    auth_jwt_key_file {{jwks}};
                    auth_jwt_verify_cache zone=vc:1m max_ttl=300s redis=shared;
                    {{echo}}
                }
            }
            """);
        return nginx;
    }

    private static string DebugLog(NginxInstance nginx) => File.ReadAllText(Path.Combine(nginx.Directory, "debug.log"));

    private async Task<string> OneEntry(string zone) =>
        await Poll.UntilAsync(() => _redis.Keys(db: 1).SingleOrDefault(k => k.StartsWith("kinds:nox:" + zone + ":", StringComparison.Ordinal)) ?? "",
            k => k.Length > 0, $"the entry of zone {zone} in Redis");

    [Test]
    public async Task The_STS_cache_is_shared_by_the_fleet()
    {
        _redis.FlushAll();
        using NginxInstance a = Gateway("kinds-a");
        using NginxInstance b = Gateway("kinds-b");
        string source = "src-" + Guid.NewGuid().ToString("N")[..10];

        HttpReply first = await a.GetAsync("/sts", configure: m => m.Headers.Add("X-Source", source));
        Assert.That(first.Status, Is.EqualTo(200), first.Body);
        Assert.That(first.Body, Does.Contain("t=[tgt." + source + ".1]"));
        string key = await OneEntry("fleetsts");

        HttpReply second = await b.GetAsync("/sts", configure: m => m.Headers.Add("X-Source", source));
        Assert.That(second.Body, Does.Contain("t=[tgt." + source + ".1]"), "gateway b took a's target token from Redis");
        Assert.That(_sts.Calls(source), Is.EqualTo(1));

        string value = Encoding.Latin1.GetString(_redis.Get(key, db: 1)!);
        Assert.That(value, Does.Not.Contain(source).And.Not.Contain("tgt."));

        using NginxInstance c = Gateway("kinds-c", secret: "another-secret-fedcba9876543210");
        HttpReply third = await c.GetAsync("/sts", configure: m => m.Headers.Add("X-Source", source));
        Assert.That(third.Status, Is.EqualTo(200), third.Body);
        Assert.That(third.Body, Does.Contain("t=[tgt." + source + ".2]"), "another key: a miss, the STS is asked");
    }

    [Test]
    public async Task The_verified_token_cache_is_shared_by_the_fleet()
    {
        _redis.FlushAll();
        using NginxInstance a = Gateway("kinds-a");
        using NginxInstance b = Gateway("kinds-b");
        string sub = "fleet-user-" + Guid.NewGuid().ToString("N")[..10];
        string token = TokenFactory.Sign(Key, TokenFactory.Claims(sub));

        HttpReply first = await a.GetAsync("/jwt", token);
        Assert.That(first.Status, Is.EqualTo(200), first.Body);
        Assert.That(first.Body, Does.Contain("sub=" + sub));
        string key = await OneEntry("vc");
        byte[] stored = _redis.Get(key, db: 1)!;
        string text = Encoding.Latin1.GetString(stored);
        Assert.That(text, Does.Not.Contain(sub).And.Not.Contain("ES256").And.Not.Contain("exp"));

        HttpReply second = await b.GetAsync("/jwt", token);
        Assert.That(second.Status, Is.EqualTo(200), second.Body);
        Assert.That(second.Body, Does.Contain("sub=" + sub));
        Assert.That(DebugLog(b), Does.Contain("oauth_redis: hit \"" + key + "\""), "b took the verified token from Redis");
        Assert.That(_redis.Get(key, db: 1), Is.EqualTo(stored), "b did not verify and store it again");

        // a token that does not verify is never taken from Redis: a forged one
        // has another digest; and a bad signature stays a 401 on both
        string forged = token[..^4] + (token[^4] == 'A' ? "BBBB" : "AAAA");
        Assert.That((await b.GetAsync("/jwt", forged)).Status, Is.EqualTo(401));
    }
}
