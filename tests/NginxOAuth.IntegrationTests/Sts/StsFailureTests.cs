using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net.Http;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// Every way an exchange can fail ends in a deliberate answer: 401 without
/// a source token (no STS call) or when the STS refuses it, 403 when it
/// denies access, 502 when it fails or answers something unusable, 503
/// with Retry-After when it cannot be reached or does not answer in time;
/// on_error=pass continues without a target (and without the source when
/// strip_source is set). Each failure logs one line at its level and never
/// the source token; no worker crashes (pids unchanged after every test).
/// Transport faults come from a raw TCP server, refusals from OpenIddict.
/// </summary>
[TestFixture]
public sealed class StsFailureTests : NginxFixture
{
    private FaultyServer _faulty = null!;
    private OpenIddictSts _sts = null!;
    private RecordingBackend _backend = null!;
    private int _refusedPort;
    private IReadOnlyList<int> _workers = [];

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _faulty = FaultyServer.Start();
        _sts = await OpenIddictSts.StartAsync();
        // a server's first subject token that is not a JWT costs it seconds of CPU (a one-time
        // warm-up inside OpenIddict, 4-6 s here, more on a loaded machine): spend them here,
        // with a generous timeout, not in a test with a request timeout
        using (var warmUp = new HttpClient { Timeout = TimeSpan.FromSeconds(120) })
        {
            using HttpResponseMessage refused = await warmUp.PostAsync(_sts.TokenEndpoint, new FormUrlEncodedContent(
                new Dictionary<string, string>
                {
                    ["grant_type"] = OpenIddictSts.TokenExchangeGrant,
                    ["client_id"] = OpenIddictSts.ClientId,
                    ["client_secret"] = OpenIddictSts.ClientSecret,
                    ["subject_token"] = "warm-up",
                    ["subject_token_type"] = OpenIddictSts.AccessTokenType,
                }));
            Assert.That((int)refused.StatusCode, Is.EqualTo(400), "the warm-up exchange is refused");
        }
        _backend = await RecordingBackend.StartAsync();
        _refusedPort = FaultyServer.RefusedPort();

        string faulty = $"{_faulty.BaseUrl}/token";
        string basic = $"auth=client_secret_basic&client_id={OpenIddictSts.ClientId}&client_secret={OpenIddictSts.ClientSecret}";
        string backend = $"proxy_set_header Authorization \"Bearer $t\"; proxy_set_header X-Target \"$t\"; proxy_pass {_backend.BaseUrl}/backend;";
        nginx.Start($$"""
            map $http_authorization $bearer {
                "~^Bearer (?<token>.+)$" $token;
                default "";
            }

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /f {
                    STSExchange otx {{faulty}} "client_id=gw&http_timeout=3";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /f-pass {
                    STSExchange otx {{faulty}} "client_id=gw&http_timeout=3&on_error=pass&strip_source=header:X-Source";
                    STSVariables $http_x_source $t;
                    proxy_set_header X-Target "$t";
                    proxy_pass {{_backend.BaseUrl}}/backend;
                }
                location = /f-hang {
                    STSExchange otx {{faulty}} "client_id=gw&http_timeout=1";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /refused {
                    STSExchange otx http://127.0.0.1:{{_refusedPort}}/token "client_id=gw&http_timeout=3";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /refused-pass {
                    STSExchange otx http://127.0.0.1:{{_refusedPort}}/token "client_id=gw&http_timeout=3&on_error=pass&strip_source=authorization";
                    STSVariables $bearer $t;
                    proxy_set_header X-Target "$t";
                    proxy_pass {{_backend.BaseUrl}}/backend;
                }
                location = /openiddict {
                    STSExchange otx {{_sts.TokenEndpoint}} "{{basic}}";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /openiddict-scope {
                    STSExchange otx {{_sts.TokenEndpoint}} "{{basic}}&scope=not-a-registered-scope";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
            }
            """);
        _workers = nginx.Host.WorkerPids();
    }

    protected override async Task OnStopping()
    {
        await _faulty.DisposeAsync();
        await _sts.DisposeAsync();
        await _backend.DisposeAsync();
    }

    [SetUp]
    public void ResetServers() => _faulty.ResetCounts();

    /// <summary>No worker died (or was replaced) during the test: a crash would respawn it under a new pid.</summary>
    [TearDown]
    public void WorkersSurvived()
    {
        Assert.That(Nginx.Host.WorkerPids(), Is.EquivalentTo(_workers), "the same workers serve: none crashed");
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Not.Contain("exited on signal"));
    }

    private static string NewSource(string tag) => $"srctok-{tag}-{Guid.NewGuid():N}";

    private Task<HttpReply> SendAsync(string path, string? source, TimeSpan? timeout = null, string header = "X-Source") =>
        Nginx.SendAsync(HttpMethod.Get, path, configure: r =>
        {
            if (source is not null)
            {
                r.Headers.TryAddWithoutValidation(header, header == "Authorization" ? "Bearer " + source : source);
            }
        }, timeout: timeout ?? TimeSpan.FromSeconds(10));

    /// <summary>
    /// The test's log: exactly one "sts:" line about the failure, matching
    /// <paramref name="pattern"/> at <paramref name="level"/> (plus the
    /// on_error=pass line when <paramref name="passed"/>), and the source
    /// token nowhere.
    /// </summary>
    private async Task<string> AssertLoggedOnceAsync(string level, string pattern, string source, bool passed = false)
    {
        IReadOnlyList<string> lines = await StsLog.WaitAsync(Nginx, TestLogMark, pattern);
        List<string> failures = lines.Where(l => !l.Contains("sts: on_error=pass", StringComparison.Ordinal)).ToList();
        Assert.That(failures, Has.Count.EqualTo(1), "one line per failure:\n" + string.Join("\n", lines));
        Assert.That(StsLog.LevelOf(failures[0]), Is.EqualTo(level), failures[0]);
        Assert.That(lines.Count(l => l.Contains("sts: on_error=pass", StringComparison.Ordinal)), Is.EqualTo(passed ? 1 : 0));
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Not.Contain(source), "the source token is never logged");
        return failures[0];
    }

    // ---- no source ------------------------------------------------------------

    [Test]
    public async Task No_source_token_is_401_with_a_bare_challenge_and_no_sts_call()
    {
        int backendBefore = _backend.Count;

        HttpReply reply = await SendAsync("/f", null);
        HttpReply empty = await SendAsync("/f", "");

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer"), "RFC 6750 3.1: no error code without a token");
        Assert.That(empty.Status, Is.EqualTo(401), empty.ToString());
        Assert.That(empty.Challenge, Is.EqualTo("Bearer"));
        Assert.That(_faulty.Connections, Is.Zero, "the STS is not asked");
        Assert.That(_backend.Count, Is.EqualTo(backendBefore), "the backend is not asked");
        string line = Nginx.WaitForLogLine(TestLogMark, "sts: no source token");
        Assert.That(StsLog.LevelOf(line), Is.EqualTo("info"));
    }

    // ---- refusals ---------------------------------------------------------------

    [Test]
    public async Task Invalid_grant_from_a_real_server_is_401_with_invalid_token()
    {
        string source = NewSource("garbage-subject");

        HttpReply reply = await SendAsync("/openiddict", source);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        StsTokenRequest call = _sts.Requests.Single(r => r.SourceToken == source);
        Assert.That((call.Status, call.Response?.GetProperty("error").GetString()), Is.EqualTo((400, "invalid_grant")));
        string line = await AssertLoggedOnceAsync("info", "sts: rejected: .* answered 400 \"invalid_grant\"", source);
        Assert.That(line, Does.Contain($"(source token {source.Length} bytes)"));
    }

    [Test]
    public async Task Invalid_scope_from_a_real_server_is_403()
    {
        string subject = await _sts.IssueAccessTokenAsync(username: "alice", password: "alice-scope");

        HttpReply reply = await SendAsync("/openiddict-scope", subject);

        Assert.That(reply.Status, Is.EqualTo(403), reply.ToString());
        Assert.That(reply.Challenges, Is.Empty);
        StsTokenRequest call = _sts.Requests.Single(r => r.SourceToken == subject);
        Assert.That(call.Response?.GetProperty("error").GetString(), Is.EqualTo("invalid_scope"), call.ResponseBody);
        await AssertLoggedOnceAsync("info", "sts: rejected: .*\"invalid_scope\"", subject);
    }

    [TestCase(400, "invalid_grant", 401, TestName = "Sts_400_invalid_grant_is_401")]
    [TestCase(401, "invalid_client", 401, TestName = "Sts_401_invalid_client_is_401")]
    [TestCase(400, "access_denied", 403, TestName = "Sts_access_denied_is_403")]
    [TestCase(400, "invalid_scope", 403, TestName = "Sts_invalid_scope_is_403")]
    [TestCase(403, "insufficient_scope", 403, TestName = "Sts_insufficient_scope_is_403")]
    public async Task Sts_refusal(int stsStatus, string error, int expected)
    {
        _faulty.Mode = Fault.WithStatus(stsStatus, $"{{\"error\":\"{error}\",\"error_description\":\"refused by the test\"}}");
        string source = NewSource(error);

        HttpReply reply = await SendAsync("/f", source);

        Assert.That(reply.Status, Is.EqualTo(expected), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo(expected == 401 ? "Bearer error=\"invalid_token\"" : null));
        Assert.That(_faulty.Connections, Is.EqualTo(1));
        Assert.That(_faulty.Requests[0], Does.Contain("subject_token=" + source));
        await AssertLoggedOnceAsync("info", $"sts: rejected: .* answered {stsStatus} \"{error}\"", source);
    }

    [Test]
    public async Task Sts_400_with_an_empty_body_is_401()
    {
        _faulty.Mode = Fault.WithStatus(400, "");
        string source = NewSource("empty-400");

        HttpReply reply = await SendAsync("/f", source);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        await AssertLoggedOnceAsync("info", "sts: rejected: .* answered 400 \"\"", source);
    }

    // ---- the STS fails ------------------------------------------------------------

    [TestCase(500, TestName = "Sts_500_is_502")]
    [TestCase(502, TestName = "Sts_502_is_502")]
    [TestCase(503, TestName = "Sts_503_is_502")]
    public async Task Sts_server_error(int stsStatus)
    {
        _faulty.Mode = Fault.WithStatus(stsStatus);
        string source = NewSource("5xx");

        HttpReply reply = await SendAsync("/f", source);

        Assert.That(reply.Status, Is.EqualTo(502), reply.ToString());
        Assert.That(reply.Header("Retry-After"), Is.Empty);
        await AssertLoggedOnceAsync("error", $"sts: .* answered {stsStatus} with \\d+ bytes", source);
    }

    private static IEnumerable<TestCaseData> UnusableAnswers()
    {
        yield return new TestCaseData(Fault.Garbage(), "garbage").SetName("Garbage_answer_is_502");
        yield return new TestCaseData(Fault.HugeBody(1024 * 1024 + 4096), "huge").SetName("Answer_over_1_MiB_is_502");
        yield return new TestCaseData(Fault.Truncated(), "truncated").SetName("Answer_shorter_than_its_Content_Length_is_502");
        yield return new TestCaseData(Fault.ChunkedWithoutLastChunk(), "chunked").SetName("Chunked_answer_without_its_last_chunk_is_502");
        yield return new TestCaseData(Fault.WithStatus(200, "{\"token_type\":\"Bearer\",\"expires_in\":60}"), "no-token")
            .SetName("Answer_without_access_token_is_502_at_once");
        yield return new TestCaseData(Fault.WithStatus(200, "{\"access_token\":\"\",\"token_type\":\"Bearer\"}"), "empty-token")
            .SetName("Answer_with_an_empty_access_token_is_502");
        yield return new TestCaseData(Fault.WithStatus(200, "[\"access_token\"]"), "array").SetName("Answer_that_is_a_JSON_array_is_502");
        yield return new TestCaseData(Fault.WithStatus(200, "{\"access_token\":\"a\\r\\nX-Injected: yes\"}"), "crlf")
            .SetName("Access_token_with_CR_LF_is_502");
        yield return new TestCaseData(Fault.WithStatus(200, "{\"access_token\":\"a\\u0000X-Injected: yes\"}"), "nul")
            .SetName("Access_token_with_NUL_is_502");
        yield return new TestCaseData(Fault.WithStatus(302, "{\"access_token\":\"redirected\"}"), "302").SetName("Sts_redirect_is_502");
    }

    [TestCaseSource(nameof(UnusableAnswers))]
    public async Task Unusable_answer(Fault fault, string tag)
    {
        _faulty.Mode = fault;
        string source = NewSource(tag);
        int backendBefore = _backend.Count;
        var sw = Stopwatch.StartNew();

        HttpReply reply = await SendAsync("/f", source);

        Assert.That(reply.Status, Is.EqualTo(502), reply.ToString());
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "answered, not hung");
        Assert.That(reply.Header("Retry-After"), Is.Empty);
        Assert.That(reply.Body, Does.Not.Contain("X-Injected").And.Not.Contain(source));
        Assert.That(_backend.Count, Is.EqualTo(backendBefore), "the backend is not asked");
        Assert.That(_faulty.Connections, Is.EqualTo(1), "one STS call, never retried");
        await AssertLoggedOnceAsync("error", "sts: ", source);
    }

    [TestCase("{\"access_token\":\"a\\r\\nX-Injected: yes\"}", TestName = "Access_token_with_CR_LF_never_reaches_the_backend_with_on_error_pass")]
    [TestCase("{\"access_token\":\"a\\nX-Injected: yes\"}", TestName = "Access_token_with_LF_never_reaches_the_backend_with_on_error_pass")]
    [TestCase("{\"access_token\":\"a\\u0000X-Injected: yes\"}", TestName = "Access_token_with_NUL_never_reaches_the_backend_with_on_error_pass")]
    public async Task Header_injection_with_on_error_pass(string body)
    {
        _faulty.Mode = Fault.WithStatus(200, body);
        string source = NewSource("inject-pass");

        HttpReply reply = await SendAsync("/f-pass", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        BackendView view = BackendView.Parse(reply.Body);
        Assert.That(view.Has("X-Injected"), Is.False, "no header injected");
        Assert.That(view.Has("X-Target"), Is.False, "no target token");
        Assert.That(view.Headers.Values.SelectMany(v => v).Any(v => v.Contains("X-Injected", StringComparison.Ordinal)), Is.False);
        Assert.That(view.Has("X-Source"), Is.False, "strip_source applies when the exchange failed too");
        await AssertLoggedOnceAsync("error", "sts: ", source, passed: true);
    }

    // ---- the STS cannot be reached ---------------------------------------------------

    [Test]
    public async Task Refused_connection_is_503_with_Retry_After()
    {
        string source = NewSource("refused");

        HttpReply reply = await SendAsync("/refused", source);

        Assert.That(reply.Status, Is.EqualTo(503), reply.ToString());
        Assert.That(reply.Header("Retry-After"), Is.EqualTo(new[] { "5" }));
        Assert.That(reply.Challenges, Is.Empty);
        await AssertLoggedOnceAsync("error", "sts: .* did not answer .*unreachable or timed out", source);
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*connect\(\) failed \(111");
    }

    /// <summary>
    /// A reset after the request was read leaves the proxy without a status
    /// line: the STS did not answer, as when unreachable, so 503 (the STS
    /// may not even have seen the request; a client may retry).
    /// </summary>
    [Test]
    public async Task Reset_connection_is_503_because_no_status_line_came()
    {
        _faulty.Mode = Fault.Reset();
        string source = NewSource("reset");

        HttpReply reply = await SendAsync("/f", source);

        Assert.That(reply.Status, Is.EqualTo(503), reply.ToString());
        Assert.That(reply.Header("Retry-After"), Is.EqualTo(new[] { "5" }));
        Assert.That(_faulty.Connections, Is.EqualTo(1), "not retried");
        await AssertLoggedOnceAsync("error", "sts: .* did not answer", source);
    }

    [Test]
    public async Task Hanging_sts_is_503_after_http_timeout()
    {
        _faulty.Mode = Fault.Hang();
        string source = NewSource("hang");
        var sw = Stopwatch.StartNew();

        HttpReply reply = await SendAsync("/f-hang", source, TimeSpan.FromSeconds(15));

        Assert.That(reply.Status, Is.EqualTo(503), reply.ToString());
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(15)), "http_timeout=1 ends the wait (wide bound: only a hang fails)");
        Assert.That(reply.Header("Retry-After"), Is.EqualTo(new[] { "5" }));
        Assert.That(_faulty.Connections, Is.EqualTo(1));
        await AssertLoggedOnceAsync("error", "sts: .* did not answer", source);
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*upstream timed out");
    }

    // ---- on_error=pass -------------------------------------------------------------

    [Test]
    public async Task On_error_pass_reaches_the_backend_without_target_nor_source_when_unreachable()
    {
        string source = NewSource("refused-pass");

        HttpReply reply = await SendAsync("/refused-pass", source, header: "Authorization");

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        BackendView view = BackendView.Parse(reply.Body);
        Assert.That(view.Has("Authorization"), Is.False, "strip_source=authorization removes the source token");
        Assert.That(view.Has("X-Target"), Is.False, "no target token");
        await AssertLoggedOnceAsync("error", "sts: .* did not answer", source, passed: true);
    }

    [TestCase(500, TestName = "On_error_pass_continues_after_an_sts_500")]
    [TestCase(400, TestName = "On_error_pass_continues_after_an_sts_refusal")]
    public async Task On_error_pass(int stsStatus)
    {
        _faulty.Mode = Fault.WithStatus(stsStatus, stsStatus == 400 ? "{\"error\":\"invalid_grant\"}" : "{\"error\":\"server_error\"}");
        string source = NewSource("pass-" + stsStatus);

        HttpReply reply = await SendAsync("/f-pass", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        BackendView view = BackendView.Parse(reply.Body);
        Assert.That(view.Has("X-Target"), Is.False);
        Assert.That(view.Has("X-Source"), Is.False, "strip_source=header:X-Source removes the source token");
        Assert.That(_faulty.Connections, Is.EqualTo(1));
        await AssertLoggedOnceAsync(stsStatus == 400 ? "info" : "error", "sts: ", source, passed: true);
    }

    [Test]
    public async Task On_error_pass_with_a_working_sts_delivers_the_target_and_strips_the_source()
    {
        _faulty.Mode = Fault.WithStatus(200, Fault.TokenJson);
        string source = NewSource("pass-ok");

        HttpReply reply = await SendAsync("/f-pass", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        BackendView view = BackendView.Parse(reply.Body);
        Assert.That(view.Header("X-Target"), Is.EqualTo("faulty-server-token"));
        Assert.That(view.Has("X-Source"), Is.False);
        Assert.That(StsLog.Lines(Nginx, TestLogMark), Is.Empty, "a success logs nothing at info");
    }
}
