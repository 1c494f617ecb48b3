using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// The shared target-token cache: a hit asks nobody, entries are per source
/// and per configuration, live at most expires_in (less a margin) and
/// cache.expiry, survive a reload, serve both workers, hold big tokens;
/// concurrent misses for one source make one STS call (single-flight, over
/// both workers); concurrent users never see each other's targets; a
/// request without a successful exchange has an empty target even right
/// after a successful one on the same connection.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class StsCacheTests : NginxFixture
{
    private const int BigToken = 20 * 1024;

    private OpenIddictSts _sts = null!;
    private ScriptedSts _scripted = null!;
    private RecordingBackend _backend = null!;
    private int _refusedPort;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _sts = await OpenIddictSts.StartAsync();
        _sts.AcceptAnyUser = true;
        _scripted = await ScriptedSts.StartAsync();
        _scripted.Script = r => r.Path switch
        {
            "/big" => ScriptedAnswer.Token(r.Source + "." + new string('b', BigToken)),
            "/slow" => ScriptedAnswer.Token(ScriptedSts.TargetFor(r.Source ?? "none", r.Number), delay: TimeSpan.FromSeconds(1)),
            "/slow5" => ScriptedAnswer.Token(ScriptedSts.TargetFor(r.Source ?? "none", r.Number), delay: TimeSpan.FromSeconds(5)),
            "/slowfail" => new ScriptedAnswer(500, "{\"error\":\"server_error\"}", TimeSpan.FromSeconds(1)),
            "/vars" => ScriptedAnswer.Token($"tgt.{r.Source}.{r.Field("audience")}.{r.Field("custom")}.{r.Number}"),
            "/nocache" => ScriptedAnswer.Token(ScriptedSts.TargetFor(r.Source ?? "none", r.Number), expiresIn: 0,
                delay: TimeSpan.FromMilliseconds(300)),
            _ => new ScriptedAnswer(500, "{\"error\":\"server_error\"}"),
        };
        _backend = await RecordingBackend.StartAsync();
        _refusedPort = FaultyServer.RefusedPort();
        nginx.Start(Config(nginx));
    }

    private string Config(NginxInstance nginx)
    {
        string ropc = $"auth=client_secret_basic&client_id={OpenIddictSts.ClientId}&client_secret={OpenIddictSts.ClientSecret}";
        string echo = nginx.Echo("pid=$pid conn=$connection n=$connection_requests t=[$t]");
        return $$"""
            server {
                listen 127.0.0.1:{{nginx.Port}} reuseport;  # a socket per worker: new connections spread over both

                location = /ropc {
                    STSExchange ropc {{_sts.TokenEndpoint}} "{{ropc}}&username=alice&cache.expiry=300";
                    STSVariables $http_x_source $t;
                    {{echo}}
                }
                location = /ropc-bob {
                    STSExchange ropc {{_sts.TokenEndpoint}} "{{ropc}}&username=bob&cache.expiry=300";
                    STSVariables $http_x_source $t;
                    {{echo}}
                }
                location = /short-expiry {
                    STSExchange ropc {{_sts.TokenEndpoint}} "{{ropc}}&username=carol&cache.expiry=3";
                    STSVariables $http_x_source $t;
                    {{echo}}
                }
                location = /big {
                    STSExchange otx {{_scripted.BaseUrl}}/big "client_id=gw";
                    STSVariables $http_x_source $t;
                    {{echo}}
                }
                location = /slow {
                    STSExchange otx {{_scripted.BaseUrl}}/slow "client_id=gw&http_timeout=10";
                    STSVariables $http_x_source $t;
                    proxy_set_header Authorization "Bearer $t";
                    proxy_set_header X-Worker $pid;
                    proxy_pass {{_backend.BaseUrl}}/backend;
                }
                location = /slow5 {
                    STSExchange otx {{_scripted.BaseUrl}}/slow5 "client_id=gw&http_timeout=10";
                    STSVariables $http_x_source $t;
                    proxy_set_header Authorization "Bearer $t";
                    proxy_pass {{_backend.BaseUrl}}/backend;
                }
                location = /status {
                    stub_status;
                }
                location = /slowfail {
                    STSExchange otx {{_scripted.BaseUrl}}/slowfail "client_id=gw&http_timeout=10";
                    STSVariables $http_x_source $t;
                    {{echo}}
                }
                location = /vars {
                    STSExchange otx {{_scripted.BaseUrl}}/vars "client_id=gw&audience=$arg_aud&params=custom%3D$http_x_custom";
                    STSVariables $http_x_source $t;
                    {{echo}}
                }
                location = /nocache {
                    STSExchange otx {{_scripted.BaseUrl}}/nocache "client_id=gw";
                    STSVariables $http_x_source $t;
                    {{echo}}
                }
                location = /pass-fail {
                    STSExchange otx http://127.0.0.1:{{_refusedPort}}/token "client_id=gw&on_error=pass";
                    STSVariables $http_x_source $t;
                    add_header X-Target "[$t]" always;
                    {{echo}}
                }
            }
            """;
    }

    protected override async Task OnStopping()
    {
        await _sts.DisposeAsync();
        await _scripted.DisposeAsync();
        await _backend.DisposeAsync();
    }

    private static string NewSource(string tag) => $"cache-{tag}-{Guid.NewGuid():N}";

    private Task<HttpReply> GetAsync(string path, string source, bool close = false, HttpClient? client = null)
    {
        if (client is null)
        {
            return Nginx.GetAsync(path, configure: r =>
            {
                r.Headers.TryAddWithoutValidation("X-Source", source);
                r.Headers.ConnectionClose = close;
            });
        }

        return SendOnAsync(client, path, source);
    }

    private async Task<HttpReply> SendOnAsync(HttpClient client, string path, string source)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{Nginx.Port}{path}");
        request.Headers.TryAddWithoutValidation("X-Source", source);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using HttpResponseMessage response = await client.SendAsync(request, cts.Token);
        return new HttpReply(response, await response.Content.ReadAsStringAsync(cts.Token));
    }

    /// <summary>The echo's fields: pid, conn, n, t (the target between brackets).</summary>
    private static Dictionary<string, string> Fields(HttpReply reply)
    {
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        return reply.Body.Split(' ').Select(f => f.Split('=', 2)).ToDictionary(f => f[0], f => f[1]);
    }

    private static string Target(HttpReply reply) => Fields(reply)["t"].Trim('[', ']');

    [Test]
    public async Task Hit_asks_the_sts_nothing_and_gives_the_same_target()
    {
        string source = NewSource("hit");

        string[] targets = new string[5];
        for (int i = 0; i < targets.Length; i++)
        {
            targets[i] = Target(await GetAsync("/ropc", source));
        }

        Assert.That(_sts.Calls(source), Is.EqualTo(1));
        Assert.That(targets[0], Is.Not.Empty);
        Assert.That(targets, Is.All.EqualTo(targets[0]));
        Assert.That(StsKey.Payload(targets[0]).GetProperty("src").GetString(), Is.EqualTo(OpenIddictSts.SourceHash(source)));
    }

    [Test]
    public async Task Sources_and_configurations_each_have_their_own_entry()
    {
        string one = NewSource("iso1"), two = NewSource("iso2");

        string t1 = Target(await GetAsync("/ropc", one));
        string t2 = Target(await GetAsync("/ropc", two));
        string t1Bob = Target(await GetAsync("/ropc-bob", one));
        string t1Again = Target(await GetAsync("/ropc", one));
        string t2Again = Target(await GetAsync("/ropc", two));

        Assert.That(new[] { t1, t2, t1Bob }.Distinct().Count(), Is.EqualTo(3));
        Assert.That((t1Again, t2Again), Is.EqualTo((t1, t2)));
        Assert.That(StsKey.Payload(t1).GetProperty("src").GetString(), Is.EqualTo(OpenIddictSts.SourceHash(one)));
        Assert.That(StsKey.Payload(t2).GetProperty("src").GetString(), Is.EqualTo(OpenIddictSts.SourceHash(two)));
        Assert.That((StsKey.Payload(t1).GetProperty("sub").GetString(), StsKey.Payload(t1Bob).GetProperty("sub").GetString()),
            Is.EqualTo(("alice", "bob")), "another configuration, another exchange");
        Assert.That((_sts.Calls(one), _sts.Calls(two)), Is.EqualTo((2, 1)));
    }

    /// <summary>Requests until the STS is asked a second time for <paramref name="source"/> (the entry expired).</summary>
    private async Task WaitForSecondCallAsync(string path, string source)
    {
        int seen = await Poll.UntilAsync(async () =>
        {
            Assert.That((await GetAsync(path, source)).Status, Is.EqualTo(200));
            return _sts.Calls(source);
        }, n => n != 1, $"the entry of {source} to expire", TimeSpan.FromSeconds(40));

        Assert.That(seen, Is.EqualTo(2), "one new exchange once the entry expired");
    }

    [Test]
    public async Task Expires_in_shorter_than_cache_expiry_bounds_the_entry()
    {
        string source = NewSource("expires-in");
        _sts.AccessTokenLifetime = TimeSpan.FromSeconds(6);
        try
        {
            HttpReply first = await GetAsync("/ropc", source);
            HttpReply second = await GetAsync("/ropc", source);
            Assert.That(Target(second), Is.EqualTo(Target(first)), "a hit right after the store");
            Assert.That(_sts.Calls(source), Is.EqualTo(1));
            long expiresIn = _sts.Requests.Single(r => r.SourceToken == source).Response!.Value.GetProperty("expires_in").GetInt64();
            Assert.That(expiresIn, Is.InRange(1, 6));

            // cache.expiry is 300 s: only expires_in can end the entry within the poll's deadline
            await WaitForSecondCallAsync("/ropc", source);
        }
        finally
        {
            _sts.AccessTokenLifetime = TimeSpan.FromSeconds(3600);
        }
    }

    [Test]
    public async Task Cache_expiry_shorter_than_expires_in_bounds_the_entry()
    {
        string source = NewSource("expiry");

        HttpReply first = await GetAsync("/short-expiry", source);
        HttpReply second = await GetAsync("/short-expiry", source);

        Assert.That(Target(second), Is.EqualTo(Target(first)));
        Assert.That(_sts.Calls(source), Is.EqualTo(1));
        await WaitForSecondCallAsync("/short-expiry", source);
    }

    [Test]
    public async Task Entries_survive_a_reload()
    {
        string source = NewSource("reload");
        string before = Target(await GetAsync("/ropc", source));

        Nginx.Reload(viaCommand: true);
        string afterCommand = Target(await GetAsync("/ropc", source));
        Nginx.Reload(Config(Nginx));
        string afterSighup = Target(await GetAsync("/ropc", source));

        Assert.That((afterCommand, afterSighup), Is.EqualTo((before, before)));
        Assert.That(_sts.Calls(source), Is.EqualTo(1), "no exchange after nginx -s reload nor after SIGHUP");
    }

    [Test]
    public async Task Both_workers_share_the_entries()
    {
        string source = NewSource("workers");
        string target = Target(await GetAsync("/ropc", source));

        HttpReply[] replies = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => GetAsync("/ropc", source, close: true)));

        var pids = new HashSet<string>();
        foreach (HttpReply reply in replies)
        {
            Dictionary<string, string> f = Fields(reply);
            Assert.That(f["t"], Is.EqualTo($"[{target}]"));
            pids.Add(f["pid"]);
        }

        Assert.That(_sts.Calls(source), Is.EqualTo(1), "one exchange for 201 requests on fresh connections");
        Assert.That(pids, Has.Count.EqualTo(2), "both workers answered (reuseport spreads new connections over them)");
    }

    [Test]
    public async Task Target_of_20_KiB_is_cached_whole()
    {
        string source = NewSource("big");
        int before = _scripted.Calls(source);

        HttpReply first = await GetAsync("/big", source);
        HttpReply second = await GetAsync("/big", source);

        string expected = source + "." + new string('b', BigToken);
        Assert.That(Target(first), Is.EqualTo(expected));
        Assert.That(Target(second), Is.EqualTo(expected), "the whole token from the cache");
        Assert.That(_scripted.Calls(source) - before, Is.EqualTo(1));
    }

    [Test]
    public async Task Concurrent_misses_for_one_source_make_one_sts_call()
    {
        string source = NewSource("flight");

        HttpReply[] replies = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => GetAsync("/slow", source, close: true)));

        Assert.That(replies.Select(r => r.Status), Is.All.EqualTo(200));
        string[] seen = replies.Select(r => BackendView.Parse(r.Body).Header("Authorization")!).ToArray();
        ScriptedRequest call = _scripted.Requests.Single(r => r.Source == source);
        Assert.That(seen, Is.All.EqualTo("Bearer " + ScriptedSts.TargetFor(source, call.Number)), "all 30 got the one target");
        Assert.That(_scripted.Calls(source), Is.EqualTo(1), "single-flight over both workers");
        Assert.That(replies.Select(r => BackendView.Parse(r.Body).Header("X-Worker")).Distinct().Count(), Is.EqualTo(2),
            "both workers took part (reuseport spreads new connections over them)");
    }

    [Test]
    public async Task Cache_key_covers_the_values_of_variables()
    {
        string source = NewSource("vars");
        Task<HttpReply> Get(string aud, string custom) => Nginx.GetAsync("/vars?aud=" + aud, configure: r =>
        {
            r.Headers.TryAddWithoutValidation("X-Source", source);
            r.Headers.TryAddWithoutValidation("X-Custom", custom);
        });

        string a1 = Target(await Get("aud-a", "c1"));
        string b1 = Target(await Get("aud-b", "c1"));
        string a2 = Target(await Get("aud-a", "c2"));
        string a1Again = Target(await Get("aud-a", "c1"));

        Assert.That(a1, Does.StartWith($"tgt.{source}.aud-a.c1."));
        Assert.That(b1, Does.StartWith($"tgt.{source}.aud-b.c1."));
        Assert.That(a2, Does.StartWith($"tgt.{source}.aud-a.c2."));
        Assert.That(a1Again, Is.EqualTo(a1));
        Assert.That(_scripted.Calls(source), Is.EqualTo(3), "one entry per audience and parameter value");
    }

    [Test]
    public async Task Target_with_expires_in_0_is_not_cached_and_waiting_requests_ask_for_themselves()
    {
        string source = NewSource("nocache");

        HttpReply first = await GetAsync("/nocache", source);
        HttpReply second = await GetAsync("/nocache", source);
        HttpReply[] concurrent = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => GetAsync("/nocache", source, close: true)));

        Assert.That(Target(second), Is.Not.EqualTo(Target(first)), "every request exchanges");
        Assert.That(concurrent.Select(r => r.Status), Is.All.EqualTo(200));
        Assert.That(concurrent.Select(Target), Is.All.StartWith($"tgt.{source}."));
        Assert.That(_scripted.Calls(source), Is.EqualTo(7), "nothing is stored: two, then one per concurrent request");
    }

    [Test]
    public async Task Concurrent_misses_share_the_leaders_failure_and_the_next_request_asks_again()
    {
        string source = NewSource("flightfail");

        HttpReply[] replies = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => GetAsync("/slowfail", source, close: true)));

        Assert.That(replies.Select(r => r.Status), Is.All.EqualTo(502));
        Assert.That(_scripted.Calls(source), Is.EqualTo(1), "the waiting requests take the leader's answer");
        await Poll.UntilAsync(async () =>
        {
            Assert.That((await GetAsync("/slowfail", source)).Status, Is.EqualTo(502));
            return _scripted.Calls(source);
        }, n => n > 1, "a later request to ask the STS again (a failure is not kept)");
    }

    /// <summary>Requests being processed now (stub_status "Writing"), this one included.</summary>
    private async Task<int> InFlightAsync()
    {
        HttpReply status = await Nginx.GetAsync("/status");
        return int.Parse(System.Text.RegularExpressions.Regex.Match(status.Body, @"Writing: (\d+)").Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
    }

    [Test]
    public async Task Leader_whose_client_goes_away_does_not_fail_the_requests_waiting_for_it()
    {
        string source = NewSource("abandoned");
        using var leaderGone = new CancellationTokenSource();
        using var leaderRequest = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{Nginx.Port}/slow5");
        leaderRequest.Headers.TryAddWithoutValidation("X-Source", source);
        Task<HttpResponseMessage> leader = Nginx.Client.SendAsync(leaderRequest, leaderGone.Token);
        await Poll.UntilAsync(() => _scripted.Calls(source), n => n == 1, "the leader's exchange to reach the STS");

        // the STS holds the leader's exchange 5 s: the followers wait for it, then its client leaves
        Task<HttpReply>[] followers = Enumerable.Range(0, 5).Select(_ => GetAsync("/slow5", source, close: true)).ToArray();
        await Poll.UntilAsync(InFlightAsync, n => n >= 7, "the leader and the 5 waiting requests in nginx");
        Assert.That(_scripted.Calls(source), Is.EqualTo(1), "the others wait for the leader");
        await leaderGone.CancelAsync();
        Assert.CatchAsync<OperationCanceledException>(async () => await leader, "the leader's client gave up");
        HttpReply[] replies = await Task.WhenAll(followers);

        Assert.That(replies.Select(r => r.Status), Is.All.EqualTo(200), string.Join("\n", replies.Select(r => r.ToString())));
        Assert.That(replies.Select(r => BackendView.Parse(r.Body).Header("Authorization")), Is.All.StartWith($"Bearer tgt.{source}."));
        Assert.That(_scripted.Calls(source), Is.EqualTo(2), "one of the waiting requests leads a new exchange for all of them");
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Contain("sts: the request ended before its IdP call did"));
    }

    [Test]
    public async Task Concurrent_users_against_a_slow_sts_each_get_only_their_own_target()
    {
        const int users = 10, perUser = 4;
        string run = Guid.NewGuid().ToString("N")[..8];
        string SourceOf(int user) => $"user{user}-{run}";

        // interleaved: user 0, 1, ... 9, 0, 1, ...
        (int User, Task<HttpReply> Reply)[] sent = Enumerable.Range(0, users * perUser)
            .Select(i => (i % users, GetAsync("/slow", SourceOf(i % users), close: i % 2 == 0)))
            .ToArray();
        await Task.WhenAll(sent.Select(s => s.Reply));

        var wrong = new List<string>();
        var targets = new Dictionary<int, HashSet<string>>();
        foreach ((int user, Task<HttpReply> task) in sent)
        {
            HttpReply reply = task.Result;
            string? seen = reply.Status == 200 ? BackendView.Parse(reply.Body).Header("Authorization") : null;
            if (seen is null || !seen.StartsWith($"Bearer tgt.{SourceOf(user)}.", StringComparison.Ordinal))
            {
                wrong.Add($"user {user}: {reply.Status} {seen}");
            }
            else
            {
                (targets.TryGetValue(user, out HashSet<string>? set) ? set : targets[user] = []).Add(seen);
            }
        }

        Assert.That(wrong, Is.Empty, "every backend request carries the target of its own user");
        Assert.That(targets.Values.Select(t => t.Count), Is.All.EqualTo(1), "one target per user");
        Assert.That(Enumerable.Range(0, users).Select(u => _scripted.Calls(SourceOf(u))), Is.All.EqualTo(1));
    }

    [Test]
    public async Task Request_without_a_successful_exchange_has_an_empty_target_after_one_with_a_target_on_the_same_connection()
    {
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 1, UseProxy = false, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1) };
        using var client = new HttpClient(handler);
        string source = NewSource("keepalive");

        HttpReply ok = await GetAsync("/ropc", source, client: client);
        HttpReply failed = await GetAsync("/pass-fail", source, client: client);
        HttpReply okAgain = await GetAsync("/ropc", source, client: client);
        HttpReply failedAgain = await GetAsync("/pass-fail", NewSource("other"), client: client);

        Dictionary<string, string> first = Fields(ok), second = Fields(failed), fourth = Fields(failedAgain);
        Assert.That(second["conn"], Is.EqualTo(first["conn"]), "the same keepalive connection");
        Assert.That(fourth["conn"], Is.EqualTo(first["conn"]));
        Assert.That((second["n"], fourth["n"]), Is.EqualTo(("2", "4")));
        Assert.That(first["t"], Is.Not.EqualTo("[]"));
        Assert.That(Target(okAgain), Is.EqualTo(Target(ok)));
        Assert.That(second["t"], Is.EqualTo("[]"), "no target after a failed exchange");
        Assert.That(fourth["t"], Is.EqualTo("[]"));
        Assert.That(failed.Header("X-Target"), Is.EqualTo(new[] { "[]" }));
    }
}
