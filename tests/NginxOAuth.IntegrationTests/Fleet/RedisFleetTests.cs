using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Fleet;

/// <summary>
/// A fleet of gateways (separate nginx masters, separate shared memory)
/// sharing one real redis-server as the second level of their
/// introspection and exchange caches (oauth_redis, redis=): one IdP call
/// per token for the whole fleet; Redis down, restarted or misbehaving is
/// a miss that never fails a request; the entries are sealed (AES-GCM), so
/// Redis holds no token and no claim, and a gateway with another key_file
/// misses. The fake IdP counts calls per token; every test uses its own
/// tokens.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisFleetTests
{
    private const string Secret = "fleet-secret-0123456789abcdef";

    private FakeIdp _idp = null!;
    private RedisServer _redis = null!;

    [OneTimeSetUp]
    public async Task StartServers()
    {
        _idp = await FakeIdp.StartAsync();
        _redis = RedisServer.Start();
    }

    [OneTimeTearDown]
    public async Task StopServers()
    {
        _redis.Dispose();
        await _idp.DisposeAsync();
    }

    [SetUp]
    public void RedisRuns()
    {
        if (!_redis.Running)
        {
            _redis.Restart();
        }
    }

    private static string NewToken(string what) => what + "-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>A gateway: introspection at /i, exchange at /x, both caches with redis=shared.</summary>
    internal static NginxInstance Gateway(string name, FakeIdp idp, int redisPort, string secret = Secret,
        string redisParameters = "", string http = "", int workers = 2, string? redisPassword = null)
    {
        var nginx = new NginxInstance(name) { WorkerProcesses = workers };
        string key = nginx.WriteFile("redis.key", secret + "\n");
        if (redisPassword is not null)
        {
            // in the instance directory: the container run mounts only that
            redisParameters += $" password_file={nginx.WriteFile("redis.pass", redisPassword + "\n")}";
        }

        string echo = nginx.Echo("sub=$oauth2_token_sub");
        nginx.Start($$"""
            oauth_redis shared 127.0.0.1:{{redisPort}} key_file={{key}} prefix=fleet: {{redisParameters}};
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret s;
            {{http}}

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /_introspect { internal; proxy_pass {{idp.BaseUrl}}/introspect; }
                location = /_token { internal; proxy_pass {{idp.BaseUrl}}/token; }
                auth_oauth2_token_introspect_endpoint /_introspect;
                auth_oauth2_token_token_endpoint /_token;

                location = /free { return 200 "free"; }
                location /i {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=ic:1m max_ttl=300s redis=shared;
                    {{echo}}
                }
                location /x {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_audience aud-1;
                    auth_oauth2_token_exchange_cache zone=xc:1m max_ttl=300s redis=shared;
                    proxy_pass {{idp.BaseUrl}}/backend;
                }
            }
            """);
        return nginx;
    }

    private async Task Introspected(NginxInstance gw, string token)
    {
        HttpReply reply = await gw.GetAsync("/i", token);
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(reply.Body, Does.Contain("sub=user-" + token));
    }

    /// <summary>The SET is written after the answer: wait until Redis holds an entry for every token.</summary>
    private async Task EntriesInRedis(int count, string zone = "ic") =>
        await Poll.UntilAsync(() => _redis.Keys().Count(k => k.StartsWith("fleet:nox:" + zone + ":", StringComparison.Ordinal)),
            n => n >= count, $"{count} entries of zone {zone} in Redis");

    [Test]
    public async Task The_second_gateway_makes_no_IdP_call_for_a_token_the_first_introspected()
    {
        _redis.FlushAll();
        using NginxInstance a = Gateway("fleet-a", _idp, _redis.Port);
        using NginxInstance b = Gateway("fleet-b", _idp, _redis.Port);
        string token = NewToken("shared");

        await Introspected(a, token);
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1));
        await EntriesInRedis(1);

        for (int i = 0; i < 4; i++)
        {
            await Introspected(b, token);
        }

        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1), "gateway b took the entry from Redis");

        // and the other way round, for a token b saw first
        string other = NewToken("shared-b");
        await Introspected(b, other);
        await EntriesInRedis(2);
        await Introspected(a, other);
        Assert.That(_idp.Calls("/introspect", other), Is.EqualTo(1));
    }

    [Test]
    public async Task Concurrent_first_requests_of_a_second_gateway_make_no_IdP_call()
    {
        _redis.FlushAll();
        using NginxInstance a = Gateway("fleet-a", _idp, _redis.Port);
        using NginxInstance b = Gateway("fleet-b", _idp, _redis.Port);
        string token = NewToken("burst");

        await Introspected(a, token);
        await EntriesInRedis(1);

        await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => Introspected(b, token)));
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1));
    }

    [Test]
    public async Task Redis_killed_mid_run_fails_no_request_and_sharing_resumes_when_it_is_back()
    {
        _redis.FlushAll();
        using NginxInstance a = Gateway("fleet-a", _idp, _redis.Port);
        using NginxInstance b = Gateway("fleet-b", _idp, _redis.Port);

        // warm: both gateways hold idle connections to Redis
        string warm = NewToken("warm");
        await Introspected(a, warm);
        await EntriesInRedis(1);
        await Introspected(b, warm);

        long markA = a.LogMark();
        _redis.Kill();

        for (int i = 0; i < 3; i++)
        {
            string token = NewToken("down");
            await Introspected(a, token);
            await Introspected(b, token);
            Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(2), "without Redis each gateway asks the IdP");
        }

        // the token both already hold locally still needs nobody
        await Introspected(a, warm);
        await Introspected(b, warm);
        Assert.That(_idp.Calls("/introspect", warm), Is.EqualTo(1));

        a.WaitForLogLine(markA, @"\[warn\].*oauth_redis ""shared"" \(127\.0\.0\.1:\d+\): .*carries on without it");

        _redis.Restart();

        await Poll.UntilAsync(async () =>
        {
            string token = NewToken("back");
            await Introspected(a, token);
            await EntriesInRedis(1);
            await Introspected(b, token);
            return _idp.Calls("/introspect", token);
        }, calls => calls == 1, "a token introspected by a to be taken from Redis by b again");
    }

    [Test]
    public async Task Redis_holds_no_token_and_no_claim()
    {
        _redis.FlushAll();
        using NginxInstance a = Gateway("fleet-a", _idp, _redis.Port);
        string token = NewToken("secretive");
        string exchanged = NewToken("xsecretive");

        await Introspected(a, token);
        HttpReply x = await a.GetAsync("/x", exchanged);
        Assert.That(x.Status, Is.EqualTo(200), x.Body);
        Assert.That(x.Body, Does.Contain("x." + exchanged + ".aud-1"));
        await EntriesInRedis(1, "ic");
        await EntriesInRedis(1, "xc");

        List<string> keys = _redis.Keys();
        Assert.That(keys, Has.Count.EqualTo(2));
        foreach (string key in keys)
        {
            Assert.That(key, Does.Match("^fleet:nox:(ic|xc):[0-9]+:[0-9a-f]{64}$"));
            byte[] value = _redis.Get(key)!;
            string text = Encoding.Latin1.GetString(value);
            foreach (string secret in new[] { token, exchanged, "user-", "active", "sub", "x." + exchanged, "aud-1", "access_token" })
            {
                Assert.That(key, Does.Not.Contain(secret));
                Assert.That(text, Does.Not.Contain(secret), $"the value of {key} shows \"{secret}\"");
            }

            long pttl = _redis.Pttl(key);
            Assert.That(pttl, Is.GreaterThan(0).And.LessThanOrEqualTo(300_000), "a Redis TTL no longer than max_ttl");
        }
    }

    [Test]
    public async Task Sharing_goes_on_across_a_reload_and_old_workers_exit()
    {
        _redis.FlushAll();
        using NginxInstance a = Gateway("fleet-a", _idp, _redis.Port);
        using NginxInstance b = Gateway("fleet-b", _idp, _redis.Port);
        string before = NewToken("prereload");
        await Introspected(a, before);
        await EntriesInRedis(1);
        await Introspected(b, before);     // b's workers now keep idle connections

        b.Reload();
        b.WaitForOldWorkersToExit();       // their idle Redis connections do not hold them

        string after = NewToken("postreload");
        await Introspected(a, after);
        await EntriesInRedis(2);
        await Introspected(b, after);
        await Introspected(b, before);     // the zone survived the reload
        Assert.That(_idp.Calls("/introspect", after), Is.EqualTo(1));
        Assert.That(_idp.Calls("/introspect", before), Is.EqualTo(1));
    }

    [Test]
    public async Task The_Redis_lifetime_ends_with_the_token()
    {
        _redis.FlushAll();
        using NginxInstance a = Gateway("fleet-a", _idp, _redis.Port);
        string token = NewToken("exp40");     // the fake IdP answers exp = now + 40

        await Introspected(a, token);
        await EntriesInRedis(1);
        long pttl = _redis.Pttl(_redis.Keys().Single());
        Assert.That(pttl, Is.GreaterThan(0).And.LessThanOrEqualTo(40_000), "no longer than the token's exp, not max_ttl (300 s)");
    }

    [Test]
    public async Task A_gateway_with_another_key_misses_without_an_error()
    {
        _redis.FlushAll();
        using NginxInstance a = Gateway("fleet-a", _idp, _redis.Port);
        using NginxInstance c = Gateway("fleet-c", _idp, _redis.Port, secret: "another-secret-fedcba9876543210");
        string token = NewToken("otherkey");

        await Introspected(a, token);
        await EntriesInRedis(1);
        long mark = c.LogMark();

        await Introspected(c, token);
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(2), "an entry that does not open is a miss");
        Assert.That(c.ErrorLogSince(mark), Does.Not.Contain("[error]").And.Not.Contain("[warn]"));
    }

    [Test]
    public async Task The_exchange_cache_is_shared_too()
    {
        _redis.FlushAll();
        using NginxInstance a = Gateway("fleet-a", _idp, _redis.Port);
        using NginxInstance b = Gateway("fleet-b", _idp, _redis.Port);
        string token = NewToken("xshared");

        HttpReply first = await a.GetAsync("/x", token);
        Assert.That(first.Status, Is.EqualTo(200), first.Body);
        await EntriesInRedis(1, "xc");

        HttpReply second = await b.GetAsync("/x", token);
        Assert.That(second.Status, Is.EqualTo(200), second.Body);
        Assert.That(second.Body, Is.EqualTo(first.Body), "the same exchanged token reaches the backend");
        Assert.That(second.Body, Does.Contain("authorization=Bearer x." + token + ".aud-1"));
        Assert.That(_idp.Calls("/token", token), Is.EqualTo(1));
    }

    [TestCase(FakeRedisMode.Garbage)]
    [TestCase(FakeRedisMode.Hang)]
    [TestCase(FakeRedisMode.Close)]
    [TestCase(FakeRedisMode.HugeBulk)]
    [TestCase(FakeRedisMode.Array)]
    public async Task A_misbehaving_Redis_is_a_miss_and_a_warning(FakeRedisMode mode)
    {
        using var fake = new FakeRedis(mode);
        using NginxInstance gw = Gateway("fleet-fake", _idp, fake.Port, redisParameters: "read_timeout=1s");
        IReadOnlyList<int> workers = gw.Host.WorkerPids();
        long mark = gw.LogMark();

        for (int i = 0; i < 4; i++)
        {
            string token = NewToken("fake-" + mode);
            await Introspected(gw, token);
            Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1));
        }

        Assert.That(fake.Connections, Is.GreaterThan(0), "nginx asked the fake Redis");
        gw.WaitForLogLine(mark, @"\[warn\].*oauth_redis ""shared"".*carries on without it");
        Assert.That(gw.Host.WorkerPids(), Is.EquivalentTo(workers), "no worker crashed");
    }

    [Test]
    public async Task A_hung_Redis_never_blocks_the_worker()
    {
        using var fake = new FakeRedis(FakeRedisMode.Hang);
        using NginxInstance gw = Gateway("fleet-hang", _idp, fake.Port, redisParameters: "read_timeout=20s", workers: 1);
        string token = NewToken("hung");

        Task<HttpReply> waiting = gw.SendAsync(System.Net.Http.HttpMethod.Get, "/i", token, timeout: TimeSpan.FromSeconds(60));
        await Poll.UntilAsync(() => fake.Connections, n => n > 0, "the lookup to reach the hung Redis");

        // the only worker serves others while that lookup waits for Redis
        for (int i = 0; i < 5; i++)
        {
            HttpReply free = await gw.GetAsync("/free");
            Assert.That(free.Body, Is.EqualTo("free"));
        }

        Assert.That(waiting.IsCompleted, Is.False, "the introspected request waits for Redis (20 s read_timeout)");
        HttpReply reply = await waiting;
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1), "after the timeout the IdP answered");
    }

    [Test]
    public async Task A_command_on_a_connection_Redis_closed_while_idle_goes_once_more_on_a_new_one()
    {
        using var fake = new FakeRedis(FakeRedisMode.Store);
        using NginxInstance a = Gateway("fleet-drop-a", _idp, fake.Port, workers: 1);
        using NginxInstance b = Gateway("fleet-drop-b", _idp, fake.Port, workers: 1);

        // b's worker keeps the connection of its GET and SET idle
        await Introspected(b, NewToken("warm"));
        string token = NewToken("dropped");
        await Introspected(a, token);
        await Poll.UntilAsync(() => fake.Commands.Count(c => c.Name == "SET"), n => n == 2, "both SETs");
        int bConnection = fake.Commands.First(c => c.Name == "GET").Connection;
        int before = fake.Connections;

        // Redis closed them while idle; b has not seen it: the GET goes out on it
        fake.DropConnections();
        long mark = b.LogMark();
        await Introspected(b, token);

        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1), "b took a's entry on the second attempt");
        FakeRedisCommand[] gets = fake.Commands.Where(c => c.Name == "GET").TakeLast(2).ToArray();
        Assert.That(gets[0].Connection, Is.EqualTo(bConnection), "the first attempt on the kept connection");
        Assert.That(gets[1].Connection, Is.EqualTo(before + 1), "the second on a new one");
        Assert.That(gets[1].Key, Is.EqualTo(gets[0].Key));
        Assert.That(fake.Connections, Is.EqualTo(before + 1), "one new connection, one retry");
        Assert.That(b.ErrorLogSince(mark), Does.Not.Contain("[warn]"));
    }

    [Test]
    public async Task A_new_connection_closed_mid_command_is_one_attempt_and_a_miss()
    {
        using var fake = new FakeRedis(FakeRedisMode.Close);
        using NginxInstance gw = Gateway("fleet-close-new", _idp, fake.Port, workers: 1);
        long mark = gw.LogMark();
        string token = NewToken("closed-new");

        await Introspected(gw, token);
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1), "a miss: the IdP answered");

        // the SET after the IdP's answer is on a new connection too, closed the same way
        await Poll.UntilAsync(() => fake.Commands.Count(c => c.Name == "SET"), n => n == 1, "the SET");
        Assert.That(fake.Commands.Count(c => c.Name == "GET"), Is.EqualTo(1), "a new connection is never retried");
        Assert.That(fake.Connections, Is.EqualTo(2), "one for the GET, one for the SET");
        gw.WaitForLogLine(mark, @"\[warn\].*oauth_redis ""shared"".*GET: closed the connection");
    }

    [Test]
    public async Task A_reply_cut_short_on_a_kept_connection_is_not_sent_again()
    {
        using var fake = new FakeRedis(FakeRedisMode.Store);
        using NginxInstance gw = Gateway("fleet-cut", _idp, fake.Port, workers: 1);
        await Introspected(gw, NewToken("warm"));
        await Poll.UntilAsync(() => fake.Commands.Count(c => c.Name == "SET"), n => n == 1, "the warm SET");

        fake.DropConnections(partialReply: "$48\r\nAAAA");
        long mark = gw.LogMark();
        string token = NewToken("cut");
        await Introspected(gw, token);

        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1), "a miss: the IdP answered");
        await Poll.UntilAsync(() => fake.Commands.Count(c => c.Name == "SET"), n => n == 2, "the SET");
        Assert.That(fake.Commands.Count(c => c.Name == "GET"), Is.EqualTo(2), "one GET per token: part of a reply came, no retry");
        Assert.That(fake.Connections, Is.EqualTo(2), "the SET's new connection only");
        gw.WaitForLogLine(mark, @"\[warn\].*oauth_redis ""shared"".*GET: closed the connection");
    }

    [Test]
    public async Task A_reload_while_a_lookup_waits_for_Redis_answers_the_request_and_the_old_worker_exits()
    {
        using var fake = new FakeRedis(FakeRedisMode.Hang);
        using NginxInstance gw = Gateway("fleet-reload-hang", _idp, fake.Port, redisParameters: "read_timeout=2s", workers: 1);
        string token = NewToken("reload-hung");

        // a client of its own: a reload renews the instance's
        using System.Net.Http.HttpClient own = NginxInstance.NewClient();
        var request = new System.Net.Http.HttpRequestMessage(System.Net.Http.HttpMethod.Get,
            new Uri(gw.Host.Endpoint(gw.Port), "/i"));
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        Task<System.Net.Http.HttpResponseMessage> waiting = own.SendAsync(request);
        await Poll.UntilAsync(() => fake.Commands.Count(c => c.Name == "GET"), n => n == 1, "the lookup to reach the hung Redis");

        gw.Reload();

        using System.Net.Http.HttpResponseMessage reply = await waiting.WaitAsync(TimeSpan.FromSeconds(60));
        string body = await reply.Content.ReadAsStringAsync();
        Assert.That((int)reply.StatusCode, Is.EqualTo(200), body);
        Assert.That(body, Does.Contain("sub=user-" + token));
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1), "the old worker asked the IdP after read_timeout");
        gw.WaitForOldWorkersToExit();
    }

    [Test]
    public async Task Nginx_s_quit_with_idle_Redis_connections_finishes_promptly()
    {
        _redis.FlushAll();
        using NginxInstance gw = Gateway("fleet-quit", _idp, _redis.Port);
        for (int i = 0; i < 4; i++)
        {
            await Introspected(gw, NewToken("quit"));
        }

        await EntriesInRedis(4);   // every SET answered: the connections are idle

        ConfigTestResult quit = gw.Host.SendCommand("quit");
        Assert.That(quit.ExitCode, Is.EqualTo(0), quit.Output);
        await Poll.UntilAsync(() => gw.Host.IsRunning, running => !running, "nginx to exit after -s quit",
            TimeSpan.FromSeconds(60));
    }

    [Test]
    public async Task A_foreign_value_is_a_miss()
    {
        using var fake = new FakeRedis(FakeRedisMode.ForeignValue);
        using NginxInstance gw = Gateway("fleet-foreign", _idp, fake.Port);
        string token = NewToken("foreign");

        await Introspected(gw, token);
        await Introspected(gw, token);
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1));
        Assert.That(fake.Connections, Is.GreaterThan(0));
    }

    [Test]
    public async Task Redis_with_a_password_and_a_database()
    {
        using RedisServer locked = RedisServer.Start(password: "redis-pass-1");
        string token = NewToken("auth");

        using NginxInstance a = GatewayWithPassword("fleet-pa", locked.Port, "redis-pass-1");
        using NginxInstance b = GatewayWithPassword("fleet-pb", locked.Port, "redis-pass-1");
        await Introspected(a, token);
        await Poll.UntilAsync(() => locked.Keys(db: 2).Count, n => n == 1, "the entry in database 2");
        Assert.That(locked.Keys(db: 0), Is.Empty);
        await Introspected(b, token);
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1));

        // a wrong password: refused AUTH is a warning and a miss
        using NginxInstance w = GatewayWithPassword("fleet-pw", locked.Port, "wrong-pass");
        long mark = w.LogMark();
        await Introspected(w, token);
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(2));
        w.WaitForLogLine(mark, @"\[warn\].*oauth_redis ""shared"".*refused AUTH or SELECT");
    }

    [Test]
    public async Task The_reference_fleet_configuration_shares_between_two_gateways()
    {
        using RedisServer locked = RedisServer.Start(password: "fleet-redis-pass");
        using NginxInstance a = ReferenceGateway("fleet-ref-a", locked.Port);
        using NginxInstance b = ReferenceGateway("fleet-ref-b", locked.Port);
        string token = NewToken("reference");

        HttpReply first = await a.GetAsync("/api/orders", token);
        Assert.That(first.Status, Is.EqualTo(200), first.Body);
        Assert.That(first.Body, Does.Contain("sub=user-" + token));
        await Poll.UntilAsync(() => locked.Keys().Count(k => k.StartsWith("gw:nox:introspect:", StringComparison.Ordinal)),
            n => n == 1, "the entry in Redis, with the prefix gw:");

        HttpReply second = await b.GetAsync("/api/orders", token);
        Assert.That(second.Body, Does.Contain("sub=user-" + token));
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1));
    }

    private NginxInstance ReferenceGateway(string name, int redisPort)
    {
        string text = System.IO.File.ReadAllText(System.IO.Path.Combine(TestEnvironment.RepoRoot, "nginx-conf", "fleet-redis.conf"));
        int open = text.IndexOf("http {", StringComparison.Ordinal) + "http {".Length;
        string http = text[open..text.LastIndexOf('}')];
        var nginx = new NginxInstance(name);
        http = http
            .Replace("listen 443 ssl;", $"listen 127.0.0.1:{nginx.Port};", StringComparison.Ordinal)
            .Replace("https://idp.example.com", _idp.BaseUrl, StringComparison.Ordinal)
            .Replace("http://backend", _idp.BaseUrl, StringComparison.Ordinal)
            .Replace("redis.internal:6379", $"127.0.0.1:{redisPort}", StringComparison.Ordinal)
            .Replace("/etc/nginx/secrets/redis-cache.key", nginx.WriteFile("redis-cache.key", Secret + "\n"), StringComparison.Ordinal)
            .Replace("/etc/nginx/secrets/redis.pass", nginx.WriteFile("redis.pass", "fleet-redis-pass\n"), StringComparison.Ordinal)
            .Replace("/etc/nginx/secrets/client_secret", nginx.WriteFile("client_secret", "s\n"), StringComparison.Ordinal);
        nginx.Start(http);
        return nginx;
    }

    private NginxInstance GatewayWithPassword(string name, int port, string password) =>
        Gateway(name, _idp, port, redisParameters: "db=2", redisPassword: password);
}
