using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Metrics;

/// <summary>
/// nginx-conf/metrics.conf runs as written, with only the listen lines, the
/// key file, the access log, the IdP and the backend substituted: labels
/// group locations, the status server answers on its own port, the access
/// log carries the decision.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class MetricsReferenceConfigTests : NginxFixture
{
    private static readonly SigningKey Key = AlgVariant.Get("ES256").Key(9);

    private FakeIdp _idp = null!;
    private int _statusPort;
    private string _accessLog = "";

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeIdp.StartAsync();
        _statusPort = NginxInstance.NewPort();
        _accessLog = Path.Combine(nginx.Directory, "api.log");
        string keys = nginx.WriteFile("idp.jwks", TokenFactory.Jwks(Key));
        string text = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "nginx-conf", "metrics.conf"));
        string[] lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        int open = Array.FindIndex(lines, l => l.TrimEnd() == "http {");
        int close = Array.FindLastIndex(lines, l => l.TrimEnd() == "}");
        string http = string.Join('\n', lines[(open + 1)..close])
            .Replace("listen 443 ssl;", $"listen 127.0.0.1:{nginx.Port};", StringComparison.Ordinal)
            .Replace("listen 127.0.0.1:9145;", $"listen 127.0.0.1:{_statusPort};", StringComparison.Ordinal)
            .Replace("/etc/nginx/keys/idp.jwks", keys, StringComparison.Ordinal)
            .Replace("/var/log/nginx/api.log", _accessLog, StringComparison.Ordinal)
            .Replace("https://idp.example.com/oauth2/introspect", _idp.BaseUrl + "/introspect", StringComparison.Ordinal)
            .Replace("proxy_pass http://backend;", $"proxy_pass http://127.0.0.1:{nginx.EchoPort}/;",
                StringComparison.Ordinal);
        nginx.Start(http);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    [Test]
    public async Task Labels_group_locations_and_the_status_port_serves_the_counts()
    {
        string token = TokenFactory.Sign(Key, TokenFactory.Claims("ref"));
        Assert.That((await Nginx.GetAsync("/invoices/1", token)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/payments/1", token)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/orders/1")).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/partners/1", "ref-partner")).Status, Is.EqualTo(200));

        HttpReply scrape = await Nginx.GetAsync("/metrics", port: _statusPort);
        Assert.That(scrape.Status, Is.EqualTo(200), scrape.ToString());
        PrometheusText text = PrometheusText.Parse(scrape.Body);

        (string, string) server = ("server", "api.example.com");
        Assert.Multiple(() =>
        {
            Assert.That(text.Value("nginx_oauth_requests_allowed_total", server, ("location", "billing"),
                ("module", "jwt")), Is.EqualTo(2));
            Assert.That(text.Value("nginx_oauth_requests_rejected_total", server, ("location", "/orders/"),
                ("module", "jwt"), ("reason", "missing")), Is.EqualTo(1));
            Assert.That(text.Value("nginx_oauth_requests_allowed_total", server, ("location", "/partners/"),
                ("module", "oauth2_token")), Is.EqualTo(1));
            Assert.That(text.Value("nginx_oauth_idp_requests_total", ("module", "oauth2_token"),
                ("endpoint", "/_introspect"), ("outcome", "ok")), Is.EqualTo(1));
            Assert.That(text.Value("nginx_oauth_metrics_slots", ("state", "max")), Is.GreaterThan(1000),
                "oauth_metrics_zone 1m");
        });

        Assert.That((await Nginx.GetAsync("/metrics")).Status, Is.EqualTo(404), "not on the public server");

        string[] log = await Poll.UntilAsync(
            () => File.Exists(_accessLog) ? File.ReadAllLines(_accessLog) : [],
            l => l.Length >= 4, "the access log lines");
        Assert.That(log.Count(l => l.EndsWith(" 401 oauth=rejected reason=missing", StringComparison.Ordinal)),
            Is.EqualTo(1));
        Assert.That(log.Count(l => l.EndsWith(" 200 oauth=allowed reason=-", StringComparison.Ordinal)),
            Is.EqualTo(3));
    }
}
