using System.Collections.Generic;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Fleet;

/// <summary>
/// oauth_redis and redis= mistakes are refused by nginx -t with the file and
/// line of the directive at fault; a valid fleet configuration passes,
/// with redis= before or after the oauth_redis it names.
/// </summary>
[TestFixture]
[Parallelizable(ParallelScope.Children)]
public sealed class RedisConfigErrorTests
{
    public sealed record Case(string Http, string Location, string Line, string Contains);

    private const string Good = "oauth_redis r 127.0.0.1:6390 key_file=redis.key;";

    public static IEnumerable<TestCaseData> Cases()
    {
        var cases = new (string Name, Case Case)[]
        {
            ("no key_file", new("oauth_redis r 127.0.0.1:6390;", "", "oauth_redis r", "key_file= is required")),
            ("a missing key_file", new("oauth_redis r 127.0.0.1:6390 key_file=missing.key;", "", "oauth_redis r", "cannot open")),
            ("a short key", new("oauth_redis r 127.0.0.1:6390 key_file=short.key;", "", "oauth_redis r", "at least 16 expected")),
            ("an unknown parameter", new("oauth_redis r 127.0.0.1:6390 key_file=redis.key tls=on;", "", "oauth_redis r",
                "invalid parameter \"tls=on\"")),
            ("a bad address", new("oauth_redis r 127.0.0.1:99999 key_file=redis.key;", "", "oauth_redis r", "invalid address")),
            ("a bad db", new("oauth_redis r 127.0.0.1:6390 key_file=redis.key db=x;", "", "oauth_redis r", "invalid parameter \"db=x\"")),
            ("a zero timeout", new("oauth_redis r 127.0.0.1:6390 key_file=redis.key read_timeout=0;", "", "oauth_redis r",
                "invalid parameter \"read_timeout=0\"")),
            ("user without password", new("oauth_redis r 127.0.0.1:6390 key_file=redis.key user=gw;", "", "oauth_redis r",
                "user= needs password_file=")),
            ("an empty password file", new("oauth_redis r 127.0.0.1:6390 key_file=redis.key password_file=empty.txt;", "",
                "oauth_redis r", "is empty")),
            ("a duplicate", new(Good + "\n" + "oauth_redis r 127.0.0.1:6391 key_file=redis.key;", "", "127.0.0.1:6391",
                "duplicate oauth_redis \"r\"")),
            ("an undefined server", new("", "auth_oauth2_token_introspect_cache zone=ic:1m redis=nowhere;", "redis=nowhere",
                "no \"oauth_redis nowhere\" is defined")),
            ("an empty redis=", new(Good, "auth_oauth2_token_introspect_cache zone=ic:1m redis=;", "redis=;",
                "needs the name of an oauth_redis")),
            ("two servers for one zone", new(Good + "\noauth_redis s 127.0.0.1:6391 key_file=redis.key;",
                "auth_oauth2_token_introspect_cache zone=ic:1m redis=r;\nauth_oauth2_token_exchange_cache zone=ic:1m redis=s;",
                "redis=s", "already has another redis=")),
            ("redis= on the key cache", new(Good, "auth_jwt_key_cache zone=keys:1m redis=r;", "auth_jwt_key_cache",
                "\"auth_jwt_key_cache\"")),
        };
        foreach ((string name, Case c) in cases)
        {
            yield return new TestCaseData(c).SetName($"Redis config error is refused by nginx -t: {name}");
        }
    }

    private static NginxInstance Configured(string http, string location, string httpAfter = "")
    {
        var nginx = new NginxInstance("redis-config");
        nginx.WriteFile("keys.jwks", NginxOAuth.IntegrationTests.Tokens.TokenFactory.Jwks(
            NginxOAuth.IntegrationTests.Tokens.AlgVariant.Get("ES256").Key(5)));
        nginx.WriteFile("redis.key", "0123456789abcdef0123\n");
        nginx.WriteFile("short.key", "0123456789\n");
        nginx.WriteFile("empty.txt", "\n");
        nginx.Configure($$"""
            {{http}}
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret s;
            auth_oauth2_token_introspect_endpoint /_i;
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location = /_i { internal; proxy_pass http://127.0.0.1:9/; }
                location /api {
                    auth_oauth2_token_introspect on;
                    {{location.Replace("\n", "\n        ", System.StringComparison.Ordinal)}}
                    {{nginx.Echo("x")}}
                }
            }
            {{httpAfter}}
            """);
        return nginx;
    }

    [TestCaseSource(nameof(Cases))]
    public void Config_error(Case c)
    {
        using NginxInstance nginx = Configured(c.Http, c.Location);
        int line = nginx.LineOf(c.Line);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("[emerg]"));
        Assert.That(result.Output, Does.Contain($"{nginx.ConfigPath}:{line}"), "the message gives the directive's file:line");
        Assert.That(result.Output, Does.Contain(c.Contains));
    }

    [TestCase("before")]
    [TestCase("after")]
    public void A_fleet_configuration_passes(string where)
    {
        string location = """
            auth_oauth2_token_introspect_cache zone=ic:1m max_ttl=60s stale_if_error=30s negative_ttl=5s redis=r;
            auth_jwt "x";
            auth_jwt_key_file keys.jwks;
            auth_jwt_verify_cache zone=vc:1m max_ttl=60s redis=r;
            """;
        string server = "oauth_redis r localhost:6390 key_file=redis.key password_file=redis.key user=gw db=3 prefix=gw: "
                        + "connect_timeout=500ms read_timeout=2s keepalive=4;";
        using NginxInstance nginx = where == "before" ? Configured(server, location) : Configured("", location, server);

        ConfigTestResult result = nginx.TestConfig();
        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
    }
}
