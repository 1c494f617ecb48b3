using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// Start, reload (SIGHUP and nginx -s reload), worker respawn and stop with
/// the managed core loaded: managed code runs only in workers, so none of
/// these may hang, crash or change an answer.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class LifecycleTests
{
    private static readonly SigningKey KeyA = AlgVariant.Get("RS256").Key(0);
    private static readonly SigningKey KeyB = AlgVariant.Get("ES256").Key(0);
    private static readonly SigningKey RequestKey = AlgVariant.Get("EdDSA-Ed25519").Key(0);

    private FakeHttpServer _keys = null!;

    [OneTimeSetUp]
    public async Task StartKeyServerAsync()
    {
        _keys = await FakeHttpServer.StartAsync();
        _keys.Set("/jwks", FakeResponse.Json(TokenFactory.Jwks(RequestKey)));
    }

    [OneTimeTearDown]
    public async Task StopKeyServerAsync() => await _keys.DisposeAsync();

    private string Config(NginxInstance nginx, string keyFile = "keys.jwks") => $$"""
        server {
            listen 127.0.0.1:{{nginx.Port}};
            auth_jwt "life";

            location /p {
                auth_jwt_key_file {{keyFile}};
                {{nginx.Echo("sub=$jwt_claim_sub")}}
            }

            location /kr {
                auth_jwt_key_request /_keys/jwks;
                {{nginx.Echo("sub=$jwt_claim_sub")}}
            }

            location /_keys/ {
                internal;
                auth_jwt off;
                proxy_pass {{_keys.BaseUrl}}/;
                subrequest_output_buffer_size 64k;
            }
        }
        """;

    private NginxInstance Start(SigningKey? fileKey = null, string mainContext = "")
    {
        var nginx = new NginxInstance("life");
        nginx.MainContext = mainContext;
        nginx.WriteFile("keys.jwks", TokenFactory.Jwks(fileKey ?? KeyA));
        nginx.Start(Config(nginx));
        return nginx;
    }

    private static string Token(SigningKey key, string sub) => TokenFactory.Sign(key, TokenFactory.Claims(sub));

    /// <summary>A valid request, an invalid one and a key-request one; throws on any wrong answer.</summary>
    private static async Task CheckAnswersAsync(NginxInstance nginx, string tag)
    {
        HttpReply ok = await nginx.GetAsync("/p", Token(KeyA, "a-" + tag));
        HttpReply bad = await nginx.GetAsync("/p", Token(KeyB, "b-" + tag));
        HttpReply kr = await nginx.GetAsync("/kr", Token(RequestKey, "k-" + tag));

        Assert.That((ok.Status, ok.Body), Is.EqualTo((200, "sub=a-" + tag)), ok.ToString());
        Assert.That(bad.Status, Is.EqualTo(401), bad.ToString());
        Assert.That((kr.Status, kr.Body), Is.EqualTo((200, "sub=k-" + tag)), kr.ToString());
    }

    private static void AssertManagedOnlyInWorkers(NginxInstance nginx)
    {
        string master = nginx.Host.MappedFiles(nginx.Host.MasterPid);
        Assert.That(master, Does.Contain(TestEnvironment.ModuleFile), "the shim is loaded in the master");
        Assert.That(master, Does.Not.Contain(TestEnvironment.ManagedFile), "the managed core must never be loaded in the master");
        foreach (int worker in nginx.Host.WorkerPids())
        {
            Assert.That(nginx.Host.MappedFiles(worker), Does.Contain(TestEnvironment.ManagedFile), $"worker {worker} loads the managed core");
        }
    }

    [Test]
    public async Task Managed_core_is_loaded_in_the_workers_and_never_in_the_master()
    {
        using NginxInstance nginx = Start();

        await CheckAnswersAsync(nginx, "start");
        AssertManagedOnlyInWorkers(nginx);

        nginx.Reload();
        await CheckAnswersAsync(nginx, "reloaded");
        AssertManagedOnlyInWorkers(nginx);

        Assert.That(nginx.TestConfig().ExitCode, Is.EqualTo(0));
        AssertManagedOnlyInWorkers(nginx);
    }

    [Test]
    public async Task Answers_stay_correct_while_nginx_reloads_under_load()
    {
        using NginxInstance nginx = Start();
        using var cts = new CancellationTokenSource();
        var failures = new ConcurrentQueue<string>();
        int answered = 0;

        async Task LoopAsync(int id)
        {
            using HttpClient client = NginxInstance.NewClient();
            for (int i = 0; !cts.IsCancellationRequested; i++)
            {
                string sub = $"u{id}-{i}";
                (string path, string token, int status, string body) = (i % 3) switch
                {
                    0 => ("/p", Token(KeyA, sub), 200, "sub=" + sub),
                    1 => ("/p", Token(KeyB, sub), 401, ""),
                    _ => ("/kr", Token(RequestKey, sub), 200, "sub=" + sub),
                };
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(nginx.Host.Endpoint(nginx.Port), path));
                request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
                request.Headers.ConnectionClose = true;
                try
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    using HttpResponseMessage response = await client.SendAsync(request, timeout.Token);
                    string text = await response.Content.ReadAsStringAsync(timeout.Token);
                    if ((int)response.StatusCode != status || (status == 200 && text != body))
                    {
                        failures.Enqueue($"{path} {sub}: {(int)response.StatusCode} {text}");
                    }

                    Interlocked.Increment(ref answered);
                }
                catch (Exception e)
                {
                    failures.Enqueue($"{path} {sub}: {e.GetType().Name}: {e.Message}");
                }
            }
        }

        // the loops are under way before the first reload and between reloads:
        // wait for their requests instead of sleeping for a time
        int Attempts() => Volatile.Read(ref answered) + failures.Count;
        Task ProgressAsync(int more)
        {
            int target = Attempts() + more;
            return Poll.UntilAsync(Attempts, n => n >= target, $"{more} more requests of the load loops");
        }

        Task[] loops = Enumerable.Range(0, 4).Select(id => Task.Run(() => LoopAsync(id))).ToArray();
        try
        {
            await ProgressAsync(20);
            for (int r = 0; r < 5; r++)
            {
                nginx.Reload(viaCommand: r % 2 == 1);
                await ProgressAsync(10);
            }
        }
        finally
        {
            await cts.CancelAsync();
            await Task.WhenAll(loops);
        }

        TestContext.Out.WriteLine($"{answered} answers during 5 reloads");
        Assert.That(failures, Is.Empty, $"{failures.Count} wrong answers out of {answered}");
        Assert.That(answered, Is.GreaterThan(50), "the loop made progress");
        await CheckAnswersAsync(nginx, "after");
    }

    [Test]
    public async Task Nginx_s_reload_command_starts_new_workers_that_serve()
    {
        using NginxInstance nginx = Start();
        IReadOnlyList<int> before = nginx.Host.WorkerPids();

        nginx.Reload(viaCommand: true);

        Assert.That(nginx.Host.WorkerPids().Intersect(before), Is.Empty);
        await CheckAnswersAsync(nginx, "command");
        AssertManagedOnlyInWorkers(nginx);
    }

    [Test]
    public async Task Killed_worker_is_respawned_and_answers_correctly()
    {
        using NginxInstance nginx = Start();
        nginx.AllowLogLines(@"\[alert\].* worker process \d+ exited on signal 9");
        await CheckAnswersAsync(nginx, "before");

        int first = nginx.KillWorker();
        int second = nginx.KillWorker();

        Assert.That(nginx.Host.WorkerPids(), Has.None.EqualTo(first).And.None.EqualTo(second));
        for (int i = 0; i < 10; i++)
        {
            await CheckAnswersAsync(nginx, "respawned" + i);
        }

        AssertManagedOnlyInWorkers(nginx);
    }

    [TestCase("", "100000", TestName = "Workers_start_the_runtime_with_a_1_MiB_first_GC_generation")]
    [TestCase("env DOTNET_GCgen0size=400000;", "400000", TestName = "Operator_GC_generation_size_from_the_env_directive_is_kept")]
    public async Task Workers_set_the_GC_first_generation_size(string mainContext, string expected)
    {
        // The runtime sizes its first generation from the CPU cache (16 MiB
        // per worker on a 32 MiB L3) unless told otherwise before it starts.
        using NginxInstance nginx = Start(mainContext: mainContext);
        await CheckAnswersAsync(nginx, "gc");

        string[] lines = nginx.ErrorLog.Split('\n')
            .Where(l => l.Contains("oauth: managed core loaded", StringComparison.Ordinal)).ToArray();
        Assert.That(lines, Has.Length.EqualTo(2), "one line per worker");
        Assert.That(lines, Has.All.EndsWith("DOTNET_GCgen0size=" + expected));
    }

    [Test]
    public async Task Ten_reloads_neither_crash_nor_leak_in_the_master()
    {
        using NginxInstance nginx = Start();
        await CheckAnswersAsync(nginx, "start");
        nginx.Reload();
        nginx.Reload();
        nginx.WaitForOldWorkersToExit();
        long before = nginx.Host.MasterRssBytes();

        for (int i = 0; i < 10; i++)
        {
            nginx.Reload();
            await CheckAnswersAsync(nginx, "reload" + i);
        }

        nginx.WaitForOldWorkersToExit();
        long after = nginx.Host.MasterRssBytes();

        TestContext.Out.WriteLine($"master RSS: {before / 1024} KiB before, {after / 1024} KiB after 10 reloads");
        Assert.That(after, Is.LessThan(before + (16L << 20)), "master RSS grew by more than 16 MiB over 10 reloads");
        Assert.That(nginx.Host.WorkerPids(), Has.Count.EqualTo(2));
        Assert.That(nginx.ProblemLines(), Is.Empty);
        AssertManagedOnlyInWorkers(nginx);
    }

    [Test]
    public async Task Reload_with_a_bad_configuration_keeps_the_old_workers_answering()
    {
        using NginxInstance nginx = Start();
        string good = nginx.ConfigText;
        nginx.WriteFile("broken.jwks", "{\"keys\": [ {\"kty\": \"RSA\" ");
        nginx.AllowLogLines(@"\[emerg\].*""auth_jwt_key_file"".*broken\.jwks");

        string emerg = nginx.ReloadRejected(Config(nginx, "broken.jwks"));

        Assert.That(emerg, Does.Contain("\"auth_jwt_key_file\""));
        Assert.That(emerg, Does.Contain($"{nginx.ConfigPath}:{nginx.LineOf("broken.jwks")}"));
        await CheckAnswersAsync(nginx, "old-config");

        nginx.Reload(Config(nginx));
        Assert.That(nginx.ConfigText, Is.EqualTo(good));
        await CheckAnswersAsync(nginx, "fixed");
    }

    [Test]
    public async Task Reload_loads_a_changed_key_file()
    {
        using NginxInstance nginx = Start();
        Assert.That((await nginx.GetAsync("/p", Token(KeyA, "x"))).Status, Is.EqualTo(200));
        Assert.That((await nginx.GetAsync("/p", Token(KeyB, "x"))).Status, Is.EqualTo(401));

        nginx.WriteFile("keys.jwks", TokenFactory.Jwks(KeyB));
        nginx.Reload();

        Assert.That((await nginx.GetAsync("/p", Token(KeyA, "x"))).Status, Is.EqualTo(401));
        Assert.That((await nginx.GetAsync("/p", Token(KeyB, "x"))).Status, Is.EqualTo(200));
    }

    [Test]
    public async Task Graceful_stop_ends_the_master_and_every_worker()
    {
        NginxInstance nginx = Start();
        await CheckAnswersAsync(nginx, "stop");
        var pids = new List<int>(nginx.Host.WorkerPids()) { nginx.Host.MasterPid };

        bool graceful = nginx.Stop();

        Assert.That(graceful, Is.True, "nginx stopped on SIGQUIT");
        Assert.That(pids.Where(Posix.IsAlive), Is.Empty);
        nginx.Dispose();
    }

    [Test]
    public async Task Protected_location_can_be_added_by_a_reload()
    {
        var nginx = new NginxInstance("life");
        using (nginx)
        {
            nginx.WriteFile("keys.jwks", TokenFactory.Jwks(KeyA));
            // first generation: the module is loaded but no auth_jwt is used
            nginx.Start($$"""
                server {
                    listen 127.0.0.1:{{nginx.Port}};
                    location /p { {{nginx.Echo("open")}} }
                }
                """);
            Assert.That((await nginx.GetAsync("/p")).Body, Is.EqualTo("open"));

            nginx.Reload(Config(nginx));

            await CheckAnswersAsync(nginx, "added");
            AssertManagedOnlyInWorkers(nginx);
        }
    }
}
