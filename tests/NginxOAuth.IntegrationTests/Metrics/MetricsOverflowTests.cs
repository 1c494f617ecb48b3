using System.Linq;
using System.Text;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Metrics;

/// <summary>
/// A metrics zone too small for every location: the locations beyond its
/// slots count in location="(other)", the overflow counter says how many,
/// and every request is still answered and counted.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class MetricsOverflowTests : NginxFixture
{
    private const int Locations = 40;

    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("keys.jwks", Tokens.TokenFactory.Jwks(Tokens.AlgVariant.Get("ES256").Key(7)));
        string echo = nginx.Echo("ok");
        var locations = new StringBuilder();
        for (int i = 0; i < Locations; i++)
        {
            locations.Append($"    location /l{i} {{ oauth_metrics_label l{i}; auth_jwt \"o\"; {echo} }}\n");
        }

        nginx.Start($$"""
            oauth_metrics_zone 32k;
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt_key_file keys.jwks;
                location = /metrics { oauth_status; }
            {{locations}}
            }
            """);
        return Task.CompletedTask;
    }

    [Test]
    public async Task Locations_beyond_the_slots_count_in_other()
    {
        for (int i = 0; i < Locations; i++)
        {
            Assert.That((await Nginx.GetAsync($"/l{i}")).Status, Is.EqualTo(401));
        }

        HttpReply reply = await Nginx.GetAsync("/metrics");
        Assert.That(reply.Status, Is.EqualTo(200));
        PrometheusText text = PrometheusText.Parse(reply.Body);

        double max = text.Value("nginx_oauth_metrics_slots", ("state", "max"));
        double used = text.Value("nginx_oauth_metrics_slots", ("state", "used"));
        int named = text.Samples.Count(s => s.Name == "nginx_oauth_requests_rejected_total"
                                            && s.Labels["reason"] == "missing" && s.Labels["location"] != "(other)");
        double other = text.Value("nginx_oauth_requests_rejected_total", ("location", "(other)"), ("module", "jwt"),
            ("reason", "missing"));

        Assert.That(max, Is.LessThan(Locations), "the zone is too small for every location");
        Assert.That(used, Is.EqualTo(max), "every slot is taken");
        Assert.That(named, Is.EqualTo(max - 5), "five slots are the (other) slots of each kind (location, cache, endpoint, redis, key set)");
        Assert.That(named + other, Is.EqualTo(Locations), "every rejection is counted somewhere");
        Assert.That(text.Value("nginx_oauth_metrics_overflow_total"), Is.EqualTo(other));
        Assert.That(text.Samples.Where(s => s.Name == "nginx_oauth_requests_rejected_total"
                                            && s.Labels["location"] != "(other)" && s.Labels["reason"] == "missing")
                .All(s => s.Value == 1), Is.True);
    }
}
