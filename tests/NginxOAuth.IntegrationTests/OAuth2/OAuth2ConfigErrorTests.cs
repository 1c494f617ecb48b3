using System.Collections.Generic;
using System.IO;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>auth_oauth2_token_* mistakes are refused by nginx -t, naming the directive and its file:line.</summary>
[TestFixture]
[Parallelizable(ParallelScope.Children)]
public sealed class OAuth2ConfigErrorTests
{
    /// <param name="Http">http-level directives.</param>
    /// <param name="Location">directives of the protected location.</param>
    /// <param name="Line">a fragment of the line the message must point at.</param>
    public sealed record Case(string Http, string Location, string Name, string Line, string Contains);

    private const string Credentials = "auth_oauth2_token_client_id gw;\nauth_oauth2_token_client_secret s;";

    public static IEnumerable<TestCaseData> Cases()
    {
        var cases = new Dictionary<string, Case>
        {
            ["introspect on without an endpoint"] = new(Credentials, "auth_oauth2_token_introspect on;",
                "auth_oauth2_token_introspect", "auth_oauth2_token_introspect on;", "without"),
            ["exchange on without a token endpoint"] = new(Credentials, "auth_oauth2_token_exchange on;",
                "auth_oauth2_token_exchange", "auth_oauth2_token_exchange on;", "without"),
            ["client_id without a secret"] = new("auth_oauth2_token_client_id lonely;", "",
                "auth_oauth2_token_client_id", "client_id lonely", "needs"),
            ["client_secret without a client_id"] = new("auth_oauth2_token_client_secret orphan;", "",
                "auth_oauth2_token_client_secret", "client_secret orphan", "needs"),
            ["client_secret_file without a client_id"] = new("auth_oauth2_token_client_secret_file secret.txt;", "",
                "auth_oauth2_token_client_secret_file", "client_secret_file secret.txt", "needs"),
            ["both secret forms"] = new("auth_oauth2_token_client_id gw;\nauth_oauth2_token_client_secret s;\n"
                + "auth_oauth2_token_client_secret_file secret.txt;", "",
                "auth_oauth2_token_client_secret_file", "client_secret_file secret.txt", "cannot be combined"),
            ["unreadable secret file"] = new("auth_oauth2_token_client_id gw;\n"
                + "auth_oauth2_token_client_secret_file missing.txt;", "",
                "auth_oauth2_token_client_secret_file", "missing.txt", "missing.txt"),
            ["duplicate introspection cache"] = new(Credentials,
                "auth_oauth2_token_introspect_cache zone=a:1m;\nauth_oauth2_token_introspect_cache zone=b:1m;",
                "auth_oauth2_token_introspect_cache", "zone=b:1m", "duplicate"),
            ["duplicate exchange cache"] = new(Credentials,
                "auth_oauth2_token_exchange_cache zone=c:1m;\nauth_oauth2_token_exchange_cache zone=d:1m;",
                "auth_oauth2_token_exchange_cache", "zone=d:1m", "duplicate"),
            ["cache zone without a size"] = new(Credentials, "auth_oauth2_token_introspect_cache zone=nosize;",
                "auth_oauth2_token_introspect_cache", "zone=nosize", "zone=name:size"),
            ["cache zone with a bad size"] = new(Credentials, "auth_oauth2_token_introspect_cache zone=z:lots;",
                "auth_oauth2_token_introspect_cache", "zone=z:lots", "zone=name:size"),
            ["cache zone that is too small"] = new(Credentials, "auth_oauth2_token_introspect_cache zone=tiny:4k;",
                "auth_oauth2_token_introspect_cache", "zone=tiny:4k", "too small"),
            ["cache with a bad max_ttl"] = new(Credentials, "auth_oauth2_token_exchange_cache zone=t:1m max_ttl=soon;",
                "auth_oauth2_token_exchange_cache", "max_ttl=soon", "invalid max_ttl"),
            ["cache with an unknown parameter"] = new(Credentials, "auth_oauth2_token_exchange_cache zone=u:1m size=2;",
                "auth_oauth2_token_exchange_cache", "size=2", "invalid parameter"),
            ["require with error=444"] = new(Credentials, "auth_oauth2_token_require $arg_x error=444;",
                "auth_oauth2_token_require", "error=444", "400 to 599"),
            ["require with error=200"] = new(Credentials, "auth_oauth2_token_require $arg_x error=200;",
                "auth_oauth2_token_require", "error=200", "400 to 599"),
            ["require with a literal"] = new(Credentials, "auth_oauth2_token_require yes;",
                "auth_oauth2_token_require", "require yes", "must start with a variable"),
            ["claim_set with a name that is not a variable"] = new("auth_oauth2_token_claim_set x sub;", "",
                "auth_oauth2_token_claim_set", "claim_set x sub", "invalid variable name"),
            ["claim_set in a location"] = new(Credentials, "auth_oauth2_token_claim_set $x sub;",
                "auth_oauth2_token_claim_set", "claim_set $x", "not allowed here"),
            ["private_key_jwt without a key"] = new(Credentials, "auth_oauth2_token_client_auth private_key_jwt aud=https://idp/t;",
                "auth_oauth2_token_client_auth", "private_key_jwt aud=", "key=file"),
            ["client_secret_jwt without aud"] = new(Credentials, "auth_oauth2_token_client_auth client_secret_jwt;",
                "auth_oauth2_token_client_auth", "client_secret_jwt;", "aud="),
            ["unknown client authentication method"] = new(Credentials, "auth_oauth2_token_client_auth magic;",
                "auth_oauth2_token_client_auth", "client_auth magic", "\"magic\""),
            ["private_key_jwt with a key file that does not exist"] = new(Credentials,
                "auth_oauth2_token_client_auth private_key_jwt key=missing.jwk aud=https://idp/t;",
                "auth_oauth2_token_client_auth", "key=missing.jwk", "missing.jwk"),
            ["protected resource document without resource="] = new(Credentials, "auth_oauth2_token_protected_resource scope=a;",
                "auth_oauth2_token_protected_resource", "protected_resource scope=a", "resource="),
        };

        foreach ((string name, Case c) in cases)
        {
            yield return new TestCaseData(c).SetName($"OAuth2 config error is refused by nginx -t: {name}");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Config_error(Case c)
    {
        using var nginx = new NginxInstance("oauth2-config");
        nginx.WriteFile("secret.txt", "s\n");
        nginx.Configure($$"""
            {{c.Http}}
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location /api {
                    {{c.Location.Replace("\n", "\n        ", System.StringComparison.Ordinal)}}
                    {{nginx.Echo("x")}}
                }
            }
            """);
        int line = nginx.LineOf(c.Line);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("[emerg]"));
        Assert.That(result.Output, Does.Contain($"\"{c.Name}\""), "the message names the directive");
        Assert.That(result.Output, Does.Contain($"{nginx.ConfigPath}:{line}"), "the message gives the directive's file:line");
        Assert.That(result.Output, Does.Contain(c.Contains));
    }

    [Test]
    public void Every_directive_in_its_contexts_passes_nginx_t()
    {
        using var nginx = new NginxInstance("oauth2-config");
        nginx.WriteFile("secret.txt", "from-file\r\n");
        nginx.Configure($$"""
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret_file secret.txt;
            auth_oauth2_token_claim_set $oauth2_email email;
            auth_oauth2_token_introspect_endpoint /_i;
            auth_oauth2_token_introspect_cache zone=ci:1m max_ttl=60s;
            auth_oauth2_token_www_authenticate on;

            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_oauth2_token_token_endpoint /_t;
                auth_oauth2_token_exchange_cache zone=cx:1m;
                auth_oauth2_token_audience aud;
                auth_oauth2_token_scope "a b";

                location / {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_require $oauth2_email error=403;
                    auth_oauth2_token_www_authenticate 'Bearer realm="$host"';
                    limit_except GET {
                        auth_oauth2_token_require $arg_w;
                        auth_oauth2_token_www_authenticate off;
                    }
                    {{nginx.Echo("$oauth2_token_active $oauth2_token_new_token_type")}}
                }
                location /nocache {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=ci:1m max_ttl=0;
                    {{nginx.Echo("x")}}
                }
                location = /_i { internal; proxy_pass http://127.0.0.1:1/; }
                location = /_t { internal; proxy_pass http://127.0.0.1:1/; }
            }
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
        Assert.That(File.Exists(Path.Combine(nginx.Directory, "secret.txt")), Is.True);
    }
}
