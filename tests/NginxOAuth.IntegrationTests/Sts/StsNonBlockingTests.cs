using System;
using System.Diagnostics;
using System.Linq;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// One nginx worker: exchanges wait for the STS without blocking it (50
/// exchanges against an STS that answers after 1 s overlap, and an
/// unrelated request is served meanwhile); and HTTPS endpoints: verified
/// against a CA file (the test's own CA, made in C#), refused when the
/// certificate is not trusted, accepted unverified when verification is
/// off, in both syntaxes.
/// </summary>
[TestFixture]
public sealed class StsNonBlockingTests : NginxFixture
{
    private const int Exchanges = 50;

    private ScriptedSts _slow = null!;
    private ScriptedSts _tls = null!;
    private RecordingBackend _backend = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _slow = await ScriptedSts.StartAsync();
        _slow.Delay = TimeSpan.FromSeconds(1);
        TestCa ca = TestCa.Create();
        _tls = await ScriptedSts.StartAsync(ca.Server);
        _backend = await RecordingBackend.StartAsync();
        string caFile = nginx.WriteFile("sts/ca.pem", ca.CaPem);
        string tls = $"{_tls.BaseUrl}/token";
        string backend = $"proxy_set_header Authorization \"Bearer $t\"; proxy_pass {_backend.BaseUrl}/backend;";

        nginx.WorkerProcesses = 1;
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /static {
                    return 200 "static";
                }
                location = /slow {
                    STSExchange otx {{_slow.BaseUrl}}/token "client_id=gw&http_timeout=30";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }

                location = /tls-ca {
                    STSExchange otx {{tls}} "client_id=gw&ssl_verify=on&ca_file={{caFile}}";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /tls-untrusted {
                    STSExchange otx {{tls}} "client_id=gw&ssl_verify=on&http_timeout=5";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /tls-off {
                    STSExchange otx {{tls}} "client_id=gw&ssl_verify=off";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /seed-tls-off {
                    STSType otx;
                    STSSSLValidateServer Off;
                    STSOTXEndpoint {{tls}};
                    STSOTXClientID gw-seed-off;
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /seed-tls-ca {
                    STSType otx;
                    STSSSLValidateServer On;
                    STSSSLCAFile {{caFile}};
                    STSOTXEndpoint {{tls}};
                    STSOTXClientID gw-seed-ca;
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
            }
            """);
    }

    protected override async Task OnStopping()
    {
        await _slow.DisposeAsync();
        await _tls.DisposeAsync();
        await _backend.DisposeAsync();
    }

    private static string NewSource(string tag) => $"nb-{tag}-{Guid.NewGuid():N}";

    private Task<HttpReply> ExchangeAsync(string path, string source) =>
        Nginx.SendAsync(HttpMethod.Get, path, configure: r => r.Headers.TryAddWithoutValidation("X-Source", source),
            timeout: TimeSpan.FromSeconds(30));

    [Test]
    public async Task One_worker_overlaps_50_slow_exchanges_and_serves_other_requests_meanwhile()
    {
        Assert.That(Nginx.Host.WorkerPids(), Has.Count.EqualTo(1));
        string run = Guid.NewGuid().ToString("N")[..8];
        string[] sources = Enumerable.Range(0, Exchanges).Select(i => $"nb{i}-{run}").ToArray();
        int completed = 0;
        var sw = Stopwatch.StartNew();

        Task<HttpReply>[] batch = sources.Select(async s =>
        {
            HttpReply reply = await ExchangeAsync("/slow", s);
            Interlocked.Increment(ref completed);
            return reply;
        }).ToArray();

        // the worker holds exchanges waiting for the STS: now an unrelated request
        await Poll.UntilAsync(() => _slow.InProgress, n => n >= 1, "the first exchange to reach the STS");
        HttpReply unrelated = await Nginx.GetAsync("/static");
        int completedAtUnrelated = Volatile.Read(ref completed);

        HttpReply[] replies = await Task.WhenAll(batch);
        TimeSpan elapsed = sw.Elapsed;

        Assert.That((unrelated.Status, unrelated.Body), Is.EqualTo((200, "static")));
        Assert.That(completedAtUnrelated, Is.LessThan(Exchanges),
            $"the unrelated request was answered while exchanges were outstanding ({completedAtUnrelated} of {Exchanges} done)");
        for (int i = 0; i < Exchanges; i++)
        {
            Assert.That(replies[i].Status, Is.EqualTo(200), replies[i].ToString());
            Assert.That(BackendView.Parse(replies[i].Body).Header("Authorization"), Does.StartWith($"Bearer tgt.{sources[i]}."));
        }

        Assert.That(sources.Select(_slow.Calls), Is.All.EqualTo(1));
        Assert.That(_slow.MaxInProgress, Is.GreaterThanOrEqualTo(10), "the STS held many exchanges at once: they overlapped");
        Assert.That(elapsed, Is.LessThan(TimeSpan.FromSeconds(10)),
            "50 exchanges of 1 s each in well under 50 s (wide margin: only serial exchanges fail)");
    }

    // ---- TLS ----------------------------------------------------------------------

    [TestCase("/tls-ca", TestName = "Https_sts_verified_against_the_configured_ca_file")]
    [TestCase("/tls-off", TestName = "Https_sts_with_ssl_verify_off")]
    [TestCase("/seed-tls-off", TestName = "Seed_https_sts_with_STSSSLValidateServer_off")]
    [TestCase("/seed-tls-ca", TestName = "Seed_https_sts_verified_against_STSSSLCAFile")]
    public async Task Https_sts(string path)
    {
        string source = NewSource(path.Trim('/'));

        HttpReply reply = await ExchangeAsync(path, source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        ScriptedRequest call = _tls.Requests.Single(r => r.Source == source);
        Assert.That(BackendView.Parse(reply.Body).Header("Authorization"),
            Is.EqualTo("Bearer " + ScriptedSts.TargetFor(source, call.Number)));
        Assert.That(call.Method, Is.EqualTo("POST"));
    }

    /// <summary>
    /// A certificate the configuration does not trust fails the TLS
    /// handshake: no status line ever comes, the STS did not answer, so 503
    /// (as unreachable); nginx's own line says why (certificate verify error).
    /// First an exchange through a location that trusts the test CA, to the
    /// same host and port: its TLS session must not be resumed here (nginx
    /// keeps sessions per upstream server, shared by all such locations).
    /// </summary>
    [Test]
    public async Task Https_sts_with_an_untrusted_certificate_is_503_even_right_after_a_trusted_exchange_to_it()
    {
        Assert.That((await ExchangeAsync("/tls-ca", NewSource("trusted-first"))).Status, Is.EqualTo(200));
        string source = NewSource("untrusted");

        HttpReply reply = await ExchangeAsync("/tls-untrusted", source);

        Assert.That(reply.Status, Is.EqualTo(503), reply.ToString());
        Assert.That(reply.Header("Retry-After"), Is.EqualTo(new[] { "5" }));
        Assert.That(_tls.Requests.Any(r => r.Source == source), Is.False, "nothing was sent over the untrusted connection");
        string why = Nginx.WaitForLogLine(TestLogMark, @"\[error\].*upstream SSL certificate verify error");
        Assert.That(why, Does.Contain("certificate"));
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*sts: .* did not answer");
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Not.Contain(source));
    }
}
