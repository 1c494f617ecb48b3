using System.Collections.Generic;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Metrics;

/// <summary>
/// Mistakes in oauth_metrics_zone, oauth_metrics_label and oauth_status are
/// refused by nginx -t, naming the directive and its file:line.
/// </summary>
[TestFixture]
public sealed class MetricsConfigErrorTests
{
    public sealed record Case(string Name, string Http, string Server, string Location, string Marker, string Contains)
    {
        public override string ToString() => Marker;
    }

    private static IEnumerable<Case> Cases()
    {
        yield return new Case("oauth_metrics_zone", "oauth_metrics_zone lots;", "", "", "oauth_metrics_zone lots;",
            "invalid size");
        yield return new Case("oauth_metrics_zone", "oauth_metrics_zone 4k;", "", "", "oauth_metrics_zone 4k;",
            "too small");
        yield return new Case("oauth_metrics_zone", "oauth_metrics_zone 1m;\noauth_metrics_zone 2m; # second", "", "",
            "oauth_metrics_zone 2m; # second", "is duplicate");
        yield return new Case("oauth_metrics_zone", "", "oauth_metrics_zone 1m;", "", "oauth_metrics_zone 1m;",
            "is not allowed here");
        yield return new Case("oauth_status", "", "", "oauth_status format=json;", "oauth_status format=json;",
            "format=prometheus");
        yield return new Case("oauth_status", "", "oauth_status;", "", "oauth_status;", "is not allowed here");
        yield return new Case("oauth_status", "oauth_metrics_zone off;", "", "oauth_status;", "oauth_status;",
            "\"oauth_metrics_zone\" is off");
        yield return new Case("oauth_metrics_label", "", "", "oauth_metrics_label a;\noauth_metrics_label b; # second",
            "oauth_metrics_label b; # second", "is duplicate");
        yield return new Case("oauth_metrics_label", "", "", "oauth_metrics_label \"\";", "oauth_metrics_label \"\";",
            "1 to 128 bytes");
    }

    [TestCaseSource(nameof(Cases))]
    public void Config_error(Case c)
    {
        using var nginx = new NginxInstance("metrics-config");
        nginx.Configure($$"""
            {{c.Http}}
            server {
                listen 127.0.0.1:{{nginx.Port}};
                {{c.Server}}
                location /status {
                    {{c.Location}}
                }
            }
            """);
        int line = nginx.LineOf(c.Marker);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("[emerg]"));
        Assert.That(result.Output, Does.Contain($"\"{c.Name}\""), "the message names the directive");
        Assert.That(result.Output, Does.Contain($"{nginx.ConfigPath}:{line}"), "the message gives file:line");
        Assert.That(result.Output, Does.Contain(c.Contains));
    }

    [Test]
    public void A_status_location_and_a_zone_size_pass_nginx_t()
    {
        using var nginx = new NginxInstance("metrics-config");
        nginx.Configure($$"""
            oauth_metrics_zone 512k;
            server {
                listen 127.0.0.1:{{nginx.Port}};
                oauth_metrics_label api;
                location = /metrics { oauth_status format=prometheus; }
            }
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("test is successful"));
    }
}
