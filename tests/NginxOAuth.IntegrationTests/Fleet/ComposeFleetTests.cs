using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Fleet;

/// <summary>
/// The fleet example as an operator runs it: nginx-conf/fleet/compose.yaml,
/// unchanged, brought up by docker compose (the plugin, or Debian's
/// docker-compose v1) with the images `./build.sh image` builds: two
/// gateways and Redis, host networking, every port on loopback, and this
/// test's fake IdP in place of the stand-in one.  The second gateway makes
/// no IdP call for a token the first introspected, Redis holds no readable
/// token or claim, and `compose down` leaves nothing behind.  Container
/// phase only (NGINX_OAUTH_HOST=container, as `./build.sh test` runs it).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ComposeFleetTests
{
    private const string Prefix = "demo:";

    private static string ComposeFile => Path.Combine(TestEnvironment.RepoRoot, "nginx-conf", "fleet", "compose.yaml");

    [Test]
    public async Task The_compose_fleet_makes_one_IdP_call_per_token_holds_nothing_readable_in_Redis_and_comes_down_cleanly()
    {
        if (TestEnvironment.HostKind != NginxHostKind.Container)
        {
            Assert.Ignore("the compose example runs in the container phase only (./build.sh test): it needs a " +
                "Docker engine, docker compose and the images nginx-oauth:latest and nginx-oauth-redis:latest");
        }

        string[] compose = FindCompose()
            ?? throw new AssertionException("neither `docker compose` nor `docker-compose` works: " +
                "apt-get install docker-compose (./build.sh test installs it for the container phase)");

        await using FakeIdp idp = await FakeIdp.StartAsync();
        string dir = Directory.CreateTempSubdirectory("nginx-oauth-compose-").FullName;
        string keyFile = Path.Combine(dir, "redis-cache.key");
        File.WriteAllText(keyFile, Convert.ToBase64String(RandomBytes(32)) + "\n");

        int gateway1 = FreePorts.Next();
        int gateway2 = FreePorts.Next();
        int redisPort = FreePorts.Next();
        string project = "noxfleet" + Guid.NewGuid().ToString("N")[..10];
        var env = new Dictionary<string, string>
        {
            ["FLEET_GATEWAY1_PORT"] = gateway1.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["FLEET_GATEWAY2_PORT"] = gateway2.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["FLEET_REDIS_PORT"] = redisPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["FLEET_INTROSPECT_URL"] = idp.BaseUrl + "/introspect",
            ["FLEET_KEY_FILE"] = keyFile,
            ["NGINX_OAUTH_IMAGE"] = ContainerHost.Image,
            ["COMPOSE_PROJECT_NAME"] = project,
        };
        string Run(TimeSpan timeout, params string[] args) => RunCompose(compose, env, dir, timeout, args);

        string logs = "";
        try
        {
            // the gateways and what they depend on (Redis), not the stand-in IdP
            Run(TimeSpan.FromMinutes(3), "up", "-d", "gateway1", "gateway2");

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            foreach (int port in new[] { gateway1, gateway2 })
            {
                // up: 401 to a request without a token
                var sw = Stopwatch.StartNew();
                string last = "";
                while (last != nameof(HttpStatusCode.Unauthorized))
                {
                    try
                    {
                        using HttpResponseMessage r = await http.GetAsync($"http://127.0.0.1:{port}/api/");
                        last = r.StatusCode.ToString();
                    }
                    catch (HttpRequestException e)
                    {
                        last = e.Message;
                    }

                    if (last != nameof(HttpStatusCode.Unauthorized))
                    {
                        if (sw.Elapsed > TimeSpan.FromSeconds(60))
                        {
                            Assert.Fail($"the gateway on port {port} does not answer 401 after 60 s ({last}):\n" +
                                Run(TimeSpan.FromMinutes(1), "logs", "--no-color"));
                        }

                        await Task.Delay(200);
                    }
                }
            }

            string token = "composed-" + Guid.NewGuid().ToString("N")[..16];
            string sub = "user-" + token;
            Assert.That(await Get(http, gateway1, token), Is.EqualTo($"gateway1: hello {sub}\n"));
            Assert.That(idp.Calls("/introspect", token), Is.EqualTo(1), "gateway1 asked the IdP");

            // the SET follows the answer: wait for the entry
            using (var redis = new RespClient(redisPort))
            {
                await Poll.UntilAsync(() => Keys(redis).Count, n => n >= 1, "the entry of gateway1 in Redis");
            }

            for (int i = 0; i < 3; i++)
            {
                Assert.That(await Get(http, gateway2, token), Is.EqualTo($"gateway2: hello {sub}\n"));
            }

            Assert.That(idp.Calls("/introspect", token), Is.EqualTo(1),
                "gateway2 took the introspection result from Redis, with no IdP call");

            // what an operator sees in Redis: digests and ciphertext
            using (var redis = new RespClient(redisPort))
            {
                List<string> keys = Keys(redis);
                Assert.That(keys, Has.Count.GreaterThanOrEqualTo(1));
                foreach (string key in keys)
                {
                    Assert.That(key, Does.StartWith(Prefix + "nox:"));
                    Assert.That(key, Does.Not.Contain(token));
                    string value = Encoding.Latin1.GetString(redis.Command("GET", key) as byte[] ?? []);
                    Assert.That(value, Is.Not.Empty, key);
                    Assert.Multiple(() =>
                    {
                        Assert.That(value, Does.Not.Contain(token), "the token in a Redis value");
                        Assert.That(value, Does.Not.Contain(sub), "the sub claim in a Redis value");
                        Assert.That(value, Does.Not.Contain("active"), "introspection JSON in a Redis value");
                    });
                }

                // the documented command, inside the Redis container
                string scan = Run(TimeSpan.FromMinutes(1), "exec", "-T", "redis", "redis-cli", "-p",
                    env["FLEET_REDIS_PORT"], "--scan");
                Assert.That(scan, Does.Contain(keys[0]));
                Assert.That(scan, Does.Not.Contain(token));
            }

            logs = Run(TimeSpan.FromMinutes(1), "logs", "--no-color");
        }
        finally
        {
            string down = "";
            try
            {
                down = Run(TimeSpan.FromMinutes(2), "down", "--timeout", "20");
            }
            finally
            {
                // whatever happened, nothing of this project stays
                string left = Docker("ps", "-aq", "--filter", "label=com.docker.compose.project=" + project).Trim();
                if (left.Length > 0)
                {
                    Docker(["rm", "-f", .. left.Split('\n', StringSplitOptions.RemoveEmptyEntries)]);
                }

                Directory.Delete(dir, recursive: true);
                Assert.That(left, Is.Empty, "containers left after `compose down`:\n" + down);
            }
        }

        Assert.That(logs, Does.Not.Match(@"\[(alert|crit|emerg)\]"), logs);
        Assert.That(logs, Does.Contain("GET /api/ HTTP/1.1\" 200"), "the gateways' access logs reach compose logs");
    }

    private static async Task<string> Get(HttpClient http, int port, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}/api/");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using HttpResponseMessage r = await http.SendAsync(request);
        string body = await r.Content.ReadAsStringAsync();
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK), body);
        return body;
    }

    private static List<string> Keys(RespClient redis)
    {
        var keys = new List<string>();
        if (redis.Command("KEYS", "*") is object?[] items)
        {
            keys.AddRange(items.Select(k => Encoding.Latin1.GetString((byte[])k!)));
        }

        return keys;
    }

    private static byte[] RandomBytes(int n) => System.Security.Cryptography.RandomNumberGenerator.GetBytes(n);

    /// <summary>`docker compose` (the plugin) when it answers, else Debian's `docker-compose`; null when neither.</summary>
    private static string[]? FindCompose()
    {
        foreach (string[] candidate in new[] { new[] { "docker", "compose" }, new[] { "docker-compose" } })
        {
            try
            {
                (int rc, _) = Exec(candidate[0], [.. candidate[1..], "version"], null, null, TimeSpan.FromSeconds(30));
                if (rc == 0)
                {
                    return candidate;
                }
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // not installed
            }
        }

        return null;
    }

    private static string RunCompose(string[] compose, IReadOnlyDictionary<string, string> env, string cwd,
        TimeSpan timeout, string[] args)
    {
        string[] all = [.. compose[1..], "-f", ComposeFile, .. args];
        (int rc, string output) = Exec(compose[0], all, env, cwd, timeout);
        Assert.That(rc, Is.Zero, $"`{string.Join(' ', compose)} {string.Join(' ', args)}` failed ({rc}):\n{output}");
        return output;
    }

    private static string Docker(params string[] args) =>
        Exec("docker", args, null, null, TimeSpan.FromMinutes(1)).Output;

    private static (int Rc, string Output) Exec(string file, IEnumerable<string> args,
        IReadOnlyDictionary<string, string>? env, string? cwd, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (cwd is not null)
        {
            psi.WorkingDirectory = cwd;
        }

        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        if (env is not null)
        {
            foreach ((string k, string v) in env)
            {
                psi.Environment[k] = v;
            }
        }

        using Process p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot run {file}");
        p.StandardInput.Close();
        var output = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            lock (output)
            {
                return (-1, $"timed out after {timeout.TotalSeconds} s\n{output}");
            }
        }

        p.WaitForExit();
        lock (output)
        {
            return (p.ExitCode, output.ToString());
        }
    }
}
