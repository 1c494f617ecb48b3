using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>
/// The three example configurations of kjdev/nginx-auth-oauth2-token
/// (nginx-conf/oauth2-*.conf, kept verbatim) run as they are, with only the
/// listen line, the IdP and backend addresses and the secret file path
/// substituted: drop-in compatibility.
/// </summary>
[TestFixture]
[Parallelizable(ParallelScope.Children)]
public sealed class SeedConfigTests
{
    private static async Task<(NginxInstance Nginx, FakeIdp Idp)> StartAsync(string file)
    {
        FakeIdp idp = await FakeIdp.StartAsync();
        var nginx = new NginxInstance("oauth2-seed");
        try
        {
            string secret = nginx.WriteFile("client_secret", "seed-secret\n");
            string text = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "nginx-conf", file));
            string http = Inner(text)
                .Replace("listen 443 ssl;", $"listen 127.0.0.1:{nginx.Port};", StringComparison.Ordinal)
                .Replace("https://idp.example.com", idp.BaseUrl, StringComparison.Ordinal)
                .Replace("http://backend", idp.BaseUrl, StringComparison.Ordinal)
                .Replace("/etc/nginx/secrets/client_secret", secret, StringComparison.Ordinal);
            nginx.Start(http);
            return (nginx, idp);
        }
        catch
        {
            nginx.Abandon();
            await idp.DisposeAsync();
            throw;
        }
    }

    /// <summary>The inside of the file's http { } block.</summary>
    private static string Inner(string text)
    {
        string[] lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        int open = Array.FindIndex(lines, l => l.TrimEnd() == "http {");
        int close = Array.FindLastIndex(lines, l => l.TrimEnd() == "}");
        Assert.That(open, Is.GreaterThanOrEqualTo(0).And.LessThan(close), "an http { } block");
        return string.Join('\n', lines[(open + 1)..close]);
    }

    private static string Basic => "Basic " + Convert.ToBase64String("my-gateway:seed-secret"u8.ToArray());

    [Test]
    public async Task Introspect_only_example_runs_unchanged()
    {
        (NginxInstance nginx, FakeIdp idp) = await StartAsync("oauth2-introspect.conf");
        await using (idp)
        using (nginx)
        {
            HttpReply ok = await nginx.GetAsync("/api/items", "tok-seed1");
            HttpReply inactive = await nginx.GetAsync("/api/items", "inactive-seed1");

            Assert.That(ok.Status, Is.EqualTo(200), ok.ToString());
            Assert.That(ok.Body, Is.EqualTo("authorization=Bearer tok-seed1;sub=user-tok-seed1"));
            Assert.That(inactive.Status, Is.EqualTo(401));
            Assert.That(idp.Requests("/introspect").First().Header("Authorization"), Is.EqualTo(Basic),
                "the secret file's trailing newline is stripped");
        }
    }

    [Test]
    public async Task Exchange_only_example_runs_unchanged()
    {
        (NginxInstance nginx, FakeIdp idp) = await StartAsync("oauth2-exchange.conf");
        await using (idp)
        using (nginx)
        {
            HttpReply ok = await nginx.GetAsync("/api/items", "tok-seed2");
            HttpReply none = await nginx.GetAsync("/api/items");

            Assert.That(ok.Status, Is.EqualTo(200), ok.ToString());
            Assert.That(ok.Body, Is.EqualTo("authorization=Bearer x.tok-seed2.backend-service.api:read;sub="));
            Assert.That(none.Status, Is.EqualTo(401));
            Assert.That(idp.Requests("/token").Single().Header("Authorization"), Is.EqualTo(Basic));
        }
    }

    [Test]
    public async Task Introspect_and_exchange_example_runs_unchanged_with_both_caches()
    {
        (NginxInstance nginx, FakeIdp idp) = await StartAsync("oauth2-both.conf");
        await using (idp)
        using (nginx)
        {
            for (int i = 0; i < 3; i++)
            {
                HttpReply ok = await nginx.GetAsync("/api/items", "tok-seed3");
                Assert.That(ok.Status, Is.EqualTo(200), ok.ToString());
                Assert.That(ok.Body, Is.EqualTo("authorization=Bearer x.tok-seed3.backend-service.api:read;sub=user-tok-seed3"));
            }

            HttpReply inactive = await nginx.GetAsync("/api/items", "inactive-seed3");

            Assert.That(inactive.Status, Is.EqualTo(401));
            Assert.That(idp.Calls("/introspect", "tok-seed3"), Is.EqualTo(1), "introspection cache");
            Assert.That(idp.Calls("/token", "tok-seed3"), Is.EqualTo(1), "exchange cache");
            Assert.That(idp.Calls("/token", "inactive-seed3"), Is.Zero);
        }
    }
}
