using System;
using System.Linq;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Fleet;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Metrics;

/// <summary>
/// oauth_status for the Redis second level (a real redis-server): per
/// oauth_redis server, lookups by outcome (hit, miss, foreign, error,
/// abandoned),
/// stores by outcome, errors by command and kind, and a latency histogram
/// with one observation per command. Each gateway is a new nginx (its own
/// metrics zone), so its counts start at zero and are exact.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisMetricsTests
{
    private const string Lookups = "nginx_oauth_redis_lookups_total";
    private const string Stores = "nginx_oauth_redis_stores_total";
    private const string Errors = "nginx_oauth_redis_errors_total";
    private const string Duration = "nginx_oauth_redis_command_duration_seconds";

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

        _redis.FlushAll();
    }

    private sealed record Gw(NginxInstance Nginx, int StatusPort) : IDisposable
    {
        public void Dispose() => Nginx.Dispose();
    }

    private Gw Gateway(string name, string secret = "metrics-secret-0123456789abcdef", int? port = null,
        string redisParameters = "", int workers = 2)
    {
        int status = NginxInstance.NewPort();
        string http = $$"""
            server {
                listen 127.0.0.1:{{status}};
                location = /metrics { oauth_status; }
            }
            """;
        return new Gw(RedisFleetTests.Gateway(name, _idp, port ?? _redis.Port, secret, redisParameters, http: http,
            workers: workers), status);
    }

    private static async Task<PrometheusText> Scrape(Gw gw)
    {
        HttpReply reply = await gw.Nginx.GetAsync("/metrics", port: gw.StatusPort);
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        return PrometheusText.Parse(reply.Body);
    }

    private static double Lookup(PrometheusText t, string outcome) =>
        t.Value(Lookups, ("redis", "shared"), ("outcome", outcome));

    private static double Store(PrometheusText t, string outcome) =>
        t.Value(Stores, ("redis", "shared"), ("outcome", outcome));

    private static double Error(PrometheusText t, string command, string error) =>
        t.Value(Errors, ("redis", "shared"), ("command", command), ("error", error));

    private static double Observed(PrometheusText t) => t.Value(Duration + "_count", ("redis", "shared"));

    private static string NewToken(string what) => what + "-" + Guid.NewGuid().ToString("N")[..12];

    private static async Task Introspected(Gw gw, string token)
    {
        HttpReply reply = await gw.Nginx.GetAsync("/i", token);
        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
    }

    private async Task EntriesInRedis(int count) =>
        await Poll.UntilAsync(() => _redis.Keys().Count(k => k.StartsWith("fleet:nox:ic:", StringComparison.Ordinal)),
            n => n >= count, $"{count} entries in Redis");

    [Test]
    public async Task A_fresh_gateway_shows_its_server_with_zero_counts_and_the_types()
    {
        using Gw a = Gateway("rm-zero");
        PrometheusText t = await Scrape(a);

        Assert.Multiple(() =>
        {
            Assert.That(t.TypeOf[Lookups], Is.EqualTo("counter"));
            Assert.That(t.TypeOf[Stores], Is.EqualTo("counter"));
            Assert.That(t.TypeOf[Errors], Is.EqualTo("counter"));
            Assert.That(t.TypeOf[Duration], Is.EqualTo("histogram"));
            foreach (string o in new[] { "hit", "miss", "foreign", "error", "abandoned" })
            {
                Assert.That(t.Samples.Count(s => s.Name == Lookups && s.Has(("redis", "shared"), ("outcome", o))),
                    Is.EqualTo(1), o);
                Assert.That(Lookup(t, o), Is.EqualTo(0), o);
            }

            Assert.That(t.Samples.Count(s => s.Name == Errors), Is.EqualTo(8), "GET and SET by 4 kinds");
            Assert.That(t.Samples.Count(s => s.Name == Duration + "_bucket"), Is.EqualTo(12));
            Assert.That(Observed(t), Is.EqualTo(0));
        });
    }

    [Test]
    public async Task Two_gateways_sharing_a_Redis_count_the_first_ones_miss_and_store_and_the_seconds_hit()
    {
        using Gw a = Gateway("rm-a");
        using Gw b = Gateway("rm-b");
        string token = NewToken("shared");

        await Introspected(a, token);
        await EntriesInRedis(1);

        // the SET is counted when its reply came: poll for it
        PrometheusText ta = await Poll.UntilAsync(() => Scrape(a), t => Store(t, "ok") >= 1, "a's SET counted");

        for (int i = 0; i < 3; i++)
        {
            await Introspected(b, token);   // the first from Redis, then b's own zone
        }

        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1));
        PrometheusText tb = await Scrape(b);

        Assert.Multiple(() =>
        {
            Assert.That(Lookup(ta, "miss"), Is.EqualTo(1), "a: GET found nothing");
            Assert.That(Lookup(ta, "hit"), Is.EqualTo(0));
            Assert.That(Store(ta, "ok"), Is.EqualTo(1));
            Assert.That(Store(ta, "error"), Is.EqualTo(0));
            Assert.That(Observed(ta), Is.EqualTo(2), "a: one GET and one SET observed");
            Assert.That(ta.Value(Duration + "_bucket", ("redis", "shared"), ("le", "+Inf")), Is.EqualTo(2));

            Assert.That(Lookup(tb, "hit"), Is.EqualTo(1), "b: the entry a stored");
            Assert.That(Lookup(tb, "miss"), Is.EqualTo(0));
            Assert.That(Lookup(tb, "foreign"), Is.EqualTo(0));
            Assert.That(Lookup(tb, "error"), Is.EqualTo(0));
            Assert.That(Store(tb, "ok"), Is.EqualTo(0), "a hit is not written back");
            Assert.That(Observed(tb), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task A_stopped_Redis_counts_the_lookup_and_the_store_as_unreachable_errors()
    {
        using Gw a = Gateway("rm-down");
        _redis.Kill();
        string token = NewToken("down");

        await Introspected(a, token);   // a miss: the IdP answers, nothing fails

        PrometheusText t = await Poll.UntilAsync(() => Scrape(a), t => Store(t, "error") >= 1, "the SET's failure counted");

        Assert.Multiple(() =>
        {
            Assert.That(Lookup(t, "error"), Is.EqualTo(1));
            Assert.That(Lookup(t, "miss"), Is.EqualTo(0));
            Assert.That(Error(t, "GET", "unreachable"), Is.EqualTo(1));
            Assert.That(Store(t, "error"), Is.EqualTo(1));
            Assert.That(Store(t, "ok"), Is.EqualTo(0));
            Assert.That(Error(t, "SET", "unreachable"), Is.EqualTo(1));
            Assert.That(Error(t, "GET", "timeout") + Error(t, "GET", "refused") + Error(t, "GET", "garbage"),
                Is.EqualTo(0));
            Assert.That(Observed(t), Is.EqualTo(2));
        });
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1));
    }

    [Test]
    public async Task An_entry_sealed_with_another_key_is_counted_foreign()
    {
        using Gw a = Gateway("rm-key-a");
        using Gw other = Gateway("rm-key-b", secret: "another-secret-0123456789abcdef");
        string token = NewToken("foreign");

        await Introspected(a, token);
        await EntriesInRedis(1);
        await Introspected(other, token);

        PrometheusText t = await Scrape(other);
        Assert.Multiple(() =>
        {
            Assert.That(Lookup(t, "foreign"), Is.EqualTo(1));
            Assert.That(Lookup(t, "hit"), Is.EqualTo(0));
            Assert.That(Lookup(t, "miss"), Is.EqualTo(0));
        });
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(2), "a foreign entry is a miss");
    }

    [Test]
    public async Task A_Redis_that_refuses_the_command_is_counted_refused()
    {
        using Gw a = Gateway("rm-refused");
        using (RespClient admin = _redis.Connect())
        {
            admin.Command("CONFIG", "SET", "requirepass", "now-a-password");
        }

        try
        {
            string token = NewToken("refused");
            await Introspected(a, token);
            PrometheusText t = await Poll.UntilAsync(() => Scrape(a), t => Store(t, "error") >= 1, "the SET counted");
            Assert.Multiple(() =>
            {
                Assert.That(Error(t, "GET", "refused"), Is.EqualTo(1));
                Assert.That(Lookup(t, "error"), Is.EqualTo(1));
                Assert.That(Error(t, "SET", "refused"), Is.EqualTo(1));
            });
        }
        finally
        {
            _redis.Kill();   // the next test starts it again, without a password
        }
    }

    [TestCase(FakeRedisMode.Garbage, "garbage")]
    [TestCase(FakeRedisMode.HugeBulk, "garbage")]
    [TestCase(FakeRedisMode.Array, "garbage")]
    [TestCase(FakeRedisMode.Close, "unreachable")]
    [TestCase(FakeRedisMode.Hang, "timeout")]
    public async Task A_misbehaving_Redis_counts_the_lookup_as_an_error_of_its_kind(FakeRedisMode mode, string kind)
    {
        using var fake = new FakeRedis(mode);
        using Gw a = Gateway("rm-fake", port: fake.Port, redisParameters: "read_timeout=300ms");
        string token = NewToken("fake");

        await Introspected(a, token);   // a miss: the IdP answers, nothing fails

        PrometheusText t = await Poll.UntilAsync(() => Scrape(a), t => Lookup(t, "error") >= 1, "the GET counted");
        Assert.Multiple(() =>
        {
            Assert.That(Lookup(t, "error"), Is.EqualTo(1));
            Assert.That(Error(t, "GET", kind), Is.EqualTo(1));
            Assert.That(new[] { "timeout", "unreachable", "refused", "garbage" }.Where(k => k != kind)
                .Sum(k => Error(t, "GET", k)), Is.EqualTo(0));
            Assert.That(Lookup(t, "hit") + Lookup(t, "miss") + Lookup(t, "foreign"), Is.EqualTo(0));
        });
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1));
    }

    [Test]
    public async Task A_value_that_is_not_an_entry_of_ours_is_counted_foreign()
    {
        using var fake = new FakeRedis(FakeRedisMode.ForeignValue);
        using Gw a = Gateway("rm-fake-foreign", port: fake.Port);

        await Introspected(a, NewToken("fake-foreign"));

        PrometheusText t = await Scrape(a);
        Assert.That(Lookup(t, "foreign"), Is.EqualTo(1));
        Assert.That(Lookup(t, "error"), Is.EqualTo(0));
    }

    [Test]
    public async Task Redis_closing_every_client_costs_no_IdP_call_no_warning_and_no_error()
    {
        using Gw a = Gateway("rm-kill-a");
        using Gw b = Gateway("rm-kill-b", workers: 1);

        // b's only worker keeps the connection of its GET and SET idle
        await Introspected(b, NewToken("warm"));
        await Poll.UntilAsync(() => Scrape(b), t => Store(t, "ok") >= 1, "b's SET answered");
        string token = NewToken("killed");
        await Introspected(a, token);
        await EntriesInRedis(2);

        long killed;
        using (RespClient admin = _redis.Connect())
        {
            killed = (long)admin.Command("CLIENT", "KILL", "TYPE", "normal")!;
        }

        Assert.That(killed, Is.GreaterThanOrEqualTo(1), "b's idle connection was closed by Redis");
        long mark = b.Nginx.LogMark();

        await Introspected(b, token);

        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1), "b took a's entry from Redis");
        Assert.That(b.Nginx.ErrorLogSince(mark), Does.Not.Contain("[warn]"));
        PrometheusText t = await Scrape(b);
        Assert.Multiple(() =>
        {
            Assert.That(Lookup(t, "hit"), Is.EqualTo(1));
            Assert.That(Lookup(t, "miss"), Is.EqualTo(1), "the warm token");
            Assert.That(Lookup(t, "error"), Is.EqualTo(0));
            Assert.That(Error(t, "GET", "unreachable"), Is.EqualTo(0));
        });
    }

    [Test]
    public async Task A_value_that_comes_after_the_client_hung_up_is_counted_abandoned()
    {
        using var fake = new FakeRedis(FakeRedisMode.Store) { UnknownKeyValue = new string('A', 48) };
        using Gw a = Gateway("rm-abandoned", port: fake.Port, redisParameters: "read_timeout=30s", workers: 1);
        fake.HoldReplies();
        string token = NewToken("hangup");
        long mark = a.Nginx.LogMark();

        using (var client = new System.Net.Sockets.TcpClient())
        {
            Uri endpoint = a.Nginx.Host.Endpoint(a.Nginx.Port);
            await client.ConnectAsync(endpoint.Host, endpoint.Port);
            byte[] request = System.Text.Encoding.ASCII.GetBytes(
                $"GET /i HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
            await client.GetStream().WriteAsync(request);
            await Poll.UntilAsync(() => fake.Commands.Count(c => c.Name == "GET"), n => n == 1, "the GET to reach Redis");
        }

        // nginx ends the request (499) while the GET waits; then the value comes
        a.Nginx.WaitForLogLine(mark, "client prematurely closed connection");
        fake.ReleaseReplies();

        PrometheusText t = await Poll.UntilAsync(() => Scrape(a), t => Lookup(t, "abandoned") >= 1, "the GET counted");
        Assert.Multiple(() =>
        {
            Assert.That(Lookup(t, "abandoned"), Is.EqualTo(1));
            Assert.That(Lookup(t, "hit") + Lookup(t, "miss") + Lookup(t, "foreign") + Lookup(t, "error"), Is.EqualTo(0),
                "exactly one outcome");
            Assert.That(Observed(t), Is.EqualTo(1));
        });
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(0), "nobody asked the IdP");
    }
}
