using System.Collections.Generic;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Hybrid;

/// <summary>auth_jwt_introspect mistakes are refused by nginx -t at the directive's file:line; a whole hybrid location passes.</summary>
[TestFixture]
[Parallelizable(ParallelScope.Children)]
public sealed class HybridConfigTests
{
    public sealed record Case(string Location, string Line, string Contains);

    private const string Jwt = "auth_jwt api;\nauth_jwt_key_file keys.jwks;";
    private const string Introspect = "auth_oauth2_token_introspect on;";

    public static IEnumerable<TestCaseData> Cases()
    {
        var cases = new Dictionary<string, Case>
        {
            ["no introspection in the location"] = new(Jwt + "\nauth_jwt_introspect opaque;",
                "auth_jwt_introspect opaque;", "needs \"auth_oauth2_token_introspect on\""),
            ["no key source in the location"] = new("auth_jwt api;\n" + Introspect + "\nauth_jwt_introspect all;",
                "auth_jwt_introspect all;", "needs a key source"),
            ["auth_jwt_type encrypted"] = new(Jwt + "\nauth_jwt_type encrypted;\n" + Introspect
                + "\nauth_jwt_introspect opaque;", "auth_jwt_introspect opaque;", "signed tokens only"),
            ["different phases"] = new(Jwt + "\nauth_jwt_phase preaccess;\n" + Introspect
                + "\nauth_jwt_introspect opaque;", "auth_jwt_introspect opaque;", "to be the same"),
            ["an unknown value"] = new(Jwt + "\n" + Introspect + "\nauth_jwt_introspect jwt;",
                "auth_jwt_introspect jwt;", "use off, opaque or all"),
            ["a duplicate"] = new(Jwt + "\n" + Introspect + "\nauth_jwt_introspect opaque;\nauth_jwt_introspect all;",
                "auth_jwt_introspect all;", "is duplicate"),
        };

        foreach ((string name, Case c) in cases)
        {
            yield return new TestCaseData(c).SetName($"Hybrid config error is refused by nginx -t: {name}");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Config_error(Case c)
    {
        using var nginx = new NginxInstance("hybrid-config");
        HybridConfig.Configure(nginx, c.Location);
        int line = nginx.LineOf(c.Line);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("[emerg]"));
        Assert.That(result.Output, Does.Contain("\"auth_jwt_introspect\""), "the message names the directive");
        Assert.That(result.Output, Does.Contain($"{nginx.ConfigPath}:{line}"), "the message gives the directive's file:line");
        Assert.That(result.Output, Does.Contain(c.Contains));
    }

    [Test]
    public void A_hybrid_location_in_either_phase_and_inherited_switches_pass_nginx_t()
    {
        using var nginx = new NginxInstance("hybrid-config");
        string echo = nginx.Echo("$oauth_token_path");
        HybridConfig.Configure(nginx, Jwt + "\n" + Introspect + "\nauth_jwt_introspect opaque;", $$"""
            auth_jwt_introspect all;
            location /inherited {
                auth_jwt api;
                auth_jwt_key_file keys.jwks;
                auth_jwt_phase preaccess;
                auth_oauth2_token_introspect on;
                auth_oauth2_token_phase preaccess;
                {{echo}}
            }
            location /jwt-only {
                auth_jwt api;
                auth_jwt_key_file keys.jwks;
                auth_jwt_introspect off;
                {{echo}}
            }
            location /no-jwt { {{echo}} }
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
    }
}
