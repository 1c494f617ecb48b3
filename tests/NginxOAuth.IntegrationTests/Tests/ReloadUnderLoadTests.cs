using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// 20 reloads (SIGHUP and nginx -s reload, in turn) and 2 worker kills
/// while protected requests flow: JWT with auth_jwt_key_request and
/// auth_jwt_verify_cache, introspection with its cache; valid and invalid
/// tokens, each answer checked for its status and its own identity. No
/// valid request may fail, except requests that were on the connection of
/// a worker at the moment it was killed (no answer at all, during a kill);
/// both caches keep their entries across every reload and kill.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ReloadUnderLoadTests
{
    private const int Reloads = 20;
    private const int Loops = 4;
    private const int TokensPerKind = 12;

    private static readonly SigningKey RequestKey = AlgVariant.Get("ES256").Key(5);
    private static readonly SigningKey Stranger = AlgVariant.Get("ES256").Key(6);

    private FakeHttpServer _keys = null!;
    private FakeIdp _idp = null!;

    [OneTimeSetUp]
    public async Task StartServersAsync()
    {
        _keys = await FakeHttpServer.StartAsync();
        _keys.Set("/jwks", FakeResponse.Json(TokenFactory.Jwks(RequestKey)));
        _idp = await FakeIdp.StartAsync();
    }

    [OneTimeTearDown]
    public async Task StopServersAsync()
    {
        await _keys.DisposeAsync();
        await _idp.DisposeAsync();
    }

    private string Config(NginxInstance nginx, string debugLog) => $$"""
        auth_oauth2_token_client_id gw;
        auth_oauth2_token_client_secret s;

        # the echo server is a server of this same nginx: a connection to it
        # that a killed worker had accepted fails, so the proxy tries again
        # on a new one (GET is idempotent) rather than answering 502
        upstream rul_echo {
            server 127.0.0.1:{{nginx.EchoPort}} max_fails=0;
            server 127.0.0.1:{{nginx.EchoPort}} max_fails=0;
        }

        server {
            listen 127.0.0.1:{{nginx.Port}};

            location /kr {
                auth_jwt "load";
                auth_jwt_key_request /_keys/jwks;
                auth_jwt_verify_cache zone=rul_jwt:1m max_ttl=600s;
                proxy_set_header X-Echo "sub=$jwt_claim_sub"; proxy_pass http://rul_echo/echo;
            }

            # the same checks and zone as /kr, with a debug log: hits are visible
            location /kr-debug {
                error_log {{debugLog}} debug;
                auth_jwt "load";
                auth_jwt_key_request /_keys/jwks;
                auth_jwt_verify_cache zone=rul_jwt:1m max_ttl=600s;
                proxy_set_header X-Echo "sub=$jwt_claim_sub"; proxy_pass http://rul_echo/echo;
            }

            location /_keys/ { internal; auth_jwt off; proxy_pass {{_keys.BaseUrl}}/; }

            location = /_introspect { internal; proxy_pass {{_idp.BaseUrl}}/introspect; }

            location /in {
                auth_oauth2_token_introspect on;
                auth_oauth2_token_introspect_endpoint /_introspect;
                auth_oauth2_token_introspect_cache zone=rul_in:1m max_ttl=600s;
                proxy_set_header X-Echo "sub=$oauth2_token_sub"; proxy_pass http://rul_echo/echo;
            }
        }
        """;

    private sealed record Probe(string Path, string Token, int Status, string Body);

    private sealed record Failure(string What, bool Answered, long AtMs);

    [Test]
    public async Task Twenty_reloads_and_two_worker_kills_fail_no_valid_request_and_keep_the_caches()
    {
        var nginx = new NginxInstance("reload-load");
        using (nginx)
        {
            string debugLog = Path.Combine(nginx.Directory, "debug.log");
            nginx.AllowLogLines(@"\[alert\].* worker process \d+ exited on signal 9");
            nginx.Start(Config(nginx, debugLog));

            string run = Guid.NewGuid().ToString("N")[..8];
            Probe[] probes =
            [
                .. Enumerable.Range(0, TokensPerKind).Select(i => new Probe("/kr",
                    TokenFactory.Sign(RequestKey, TokenFactory.Claims($"jwt-{run}-{i}")), 200, $"sub=jwt-{run}-{i}")),
                .. Enumerable.Range(0, TokensPerKind / 2).Select(i => new Probe("/kr",
                    TokenFactory.Sign(Stranger, TokenFactory.Claims($"forged-{i}")), 401, "")),
                .. Enumerable.Range(0, TokensPerKind).Select(i => new Probe("/in",
                    $"in-{run}-{i}", 200, $"sub=user-in-{run}-{i}")),
                .. Enumerable.Range(0, TokensPerKind / 2).Select(i => new Probe("/in",
                    $"inactive-{run}-{i}", 401, "")),
            ];

            // fill both caches before the first reload with tokens the load never
            // uses: a JWT through the debug location, an introspected token
            var cachedJwt = new Probe("/kr-debug", TokenFactory.Sign(RequestKey, TokenFactory.Claims($"kept-{run}")), 200,
                $"sub=kept-{run}");
            var cachedIntrospection = new Probe("/in", $"kept-{run}", 200, $"sub=user-kept-{run}");
            Assert.That((await nginx.GetAsync("/kr-debug", cachedJwt.Token)).Body, Is.EqualTo(cachedJwt.Body));
            Assert.That((await nginx.GetAsync("/in", cachedIntrospection.Token)).Body, Is.EqualTo(cachedIntrospection.Body));
            int introspections = _idp.Calls("/introspect", cachedIntrospection.Token);
            Assert.That(introspections, Is.EqualTo(1));

            var clock = Stopwatch.StartNew();
            var failures = new ConcurrentQueue<Failure>();
            var kills = new ConcurrentQueue<(long From, long To)>();
            int answered = 0;
            using var cts = new CancellationTokenSource();

            async Task LoopAsync(int id)
            {
                using HttpClient client = NginxInstance.NewClient();
                var random = new Random(id);
                while (!cts.IsCancellationRequested)
                {
                    Probe probe = probes[random.Next(probes.Length)];
                    using var request = new HttpRequestMessage(HttpMethod.Get,
                        new Uri(nginx.Host.Endpoint(nginx.Port), probe.Path));
                    request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + probe.Token);
                    request.Headers.ConnectionClose = true;
                    try
                    {
                        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                        using HttpResponseMessage response = await client.SendAsync(request, timeout.Token);
                        string text = await response.Content.ReadAsStringAsync(timeout.Token);
                        if ((int)response.StatusCode != probe.Status || (probe.Status == 200 && text != probe.Body))
                        {
                            failures.Enqueue(new Failure($"{probe.Path} expected {probe.Status} {probe.Body}: got "
                                + $"{(int)response.StatusCode} {text}", true, clock.ElapsedMilliseconds));
                        }

                        Interlocked.Increment(ref answered);
                    }
                    catch (Exception e) when (!cts.IsCancellationRequested || e is not OperationCanceledException)
                    {
                        failures.Enqueue(new Failure($"{probe.Path} expected {probe.Status}: {e.GetType().Name}: "
                            + e.Message, false, clock.ElapsedMilliseconds));
                    }
                }
            }

            int Attempts() => Volatile.Read(ref answered) + failures.Count;
            Task ProgressAsync(int more)
            {
                int target = Attempts() + more;
                return Poll.UntilAsync(Attempts, n => n >= target, $"{more} more requests of the load loops",
                    TimeSpan.FromSeconds(60));
            }

            Task[] loops = Enumerable.Range(0, Loops).Select(id => Task.Run(() => LoopAsync(id))).ToArray();
            try
            {
                await ProgressAsync(40);
                for (int r = 0; r < Reloads; r++)
                {
                    nginx.Reload(viaCommand: r % 2 == 1);
                    await ProgressAsync(15);

                    if (r == 6 || r == 13)
                    {
                        long from = clock.ElapsedMilliseconds;
                        nginx.KillWorker();
                        kills.Enqueue((from, clock.ElapsedMilliseconds));
                        await ProgressAsync(15);
                    }
                }
            }
            finally
            {
                await cts.CancelAsync();
                await Task.WhenAll(loops);
            }

            // a request on the connection of a killed worker gets no answer at
            // all, at the moment of the kill; anything else is a failure
            bool OnKilledWorker(Failure f) =>
                !f.Answered && kills.Any(k => f.AtMs >= k.From && f.AtMs <= k.To + 1000);
            Failure[] counted = failures.Where(f => !OnKilledWorker(f)).ToArray();
            int excused = failures.Count - counted.Length;

            TestContext.Out.WriteLine($"{answered} answers during {Reloads} reloads and {kills.Count} kills; "
                + $"{excused} requests were on a killed worker's connection");
            Assert.That(counted.Select(f => $"{f.AtMs} ms: {f.What}"), Is.Empty,
                $"{counted.Length} failed requests out of {answered + failures.Count}");
            Assert.That(excused, Is.LessThanOrEqualTo(2 * Loops), "only requests in flight on a killed worker");
            Assert.That(answered, Is.GreaterThan(300), "the load made progress");

            // the caches survived every reload and kill
            long debugMark = new FileInfo(debugLog).Length;
            Assert.That((await nginx.GetAsync("/kr-debug", cachedJwt.Token)).Body, Is.EqualTo(cachedJwt.Body));
            await Poll.UntilAsync(() => ReadFrom(debugLog, debugMark), t => t.Contains("auth_jwt: cache \"rul_jwt\" hit",
                StringComparison.Ordinal), "a verified-token cache hit for a token stored before the reloads");

            Assert.That((await nginx.GetAsync("/in", cachedIntrospection.Token)).Body, Is.EqualTo(cachedIntrospection.Body));
            Assert.That(_idp.Calls("/introspect", cachedIntrospection.Token), Is.EqualTo(1),
                "an introspection cache hit for the token stored before the reloads");
        }
    }

    private static string ReadFrom(string path, long offset)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        fs.Seek(Math.Min(offset, fs.Length), SeekOrigin.Begin);
        using var reader = new StreamReader(fs);
        return reader.ReadToEnd();
    }
}
