using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// auth=client_cert through nginx against a live HTTPS STS on 127.0.0.1
/// that requires a TLS client certificate and accepts only the test's
/// (server certificate verified against the test CA: verification is on).
/// The STS records the certificate of every request's connection, so each
/// test compares thumbprints: both syntaxes present exactly the configured
/// certificate; a location without one (or with one the STS does not
/// know) fails the handshake, which is "the STS did not answer" (503,
/// Retry-After), and no target token reaches the backend; locations with
/// different certificates to the same host:port, used in turn and at
/// once, each present their own (no TLS session of another location is
/// resumed: proxy_ssl_session_reuse off in the generated location).
/// </summary>
[TestFixture]
public sealed class StsMutualTlsTests : NginxFixture
{
    private ScriptedSts _sts = null!;
    private RecordingBackend _backend = null!;
    private Dictionary<string, TestClientCertificate> _certificates = [];

    protected override async Task StartNginx(NginxInstance nginx)
    {
        TestCa ca = TestCa.Create();
        string caFile = nginx.WriteFile("sts/ca.pem", ca.CaPem);
        _certificates = new[] { "client-a", "client-b", "client-seed", "client-unknown" }
            .ToDictionary(name => name, name => TestClientCertificate.Write(nginx, name));
        TestClientCertificate a = _certificates["client-a"], b = _certificates["client-b"];
        TestClientCertificate seed = _certificates["client-seed"], unknown = _certificates["client-unknown"];
        // client-unknown is not among those the STS accepts
        _sts = await ScriptedSts.StartAsync(ca.Server, [a.Certificate, b.Certificate, seed.Certificate]);
        _backend = await RecordingBackend.StartAsync();

        string url = $"{_sts.BaseUrl}/token";
        string tls = $"ssl_verify=on&ca_file={caFile}&http_timeout=5";
        string backend = $"proxy_set_header X-Target \"$t\"; proxy_pass {_backend.BaseUrl}/backend;";
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /cert-a {
                    STSExchange otx {{url}} "auth=client_cert&cert={{a.CertFile}}&key={{a.KeyFile}}&{{tls}}";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /cert-b {
                    STSExchange otx {{url}} "auth=client_cert&cert={{b.CertFile}}&key={{b.KeyFile}}&{{tls}}";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /seed-cert {
                    STSType otx;
                    STSSSLValidateServer on;
                    STSSSLCAFile {{caFile}};
                    STSHTTPTimeOut 5;
                    STSOTXEndpoint {{url}};
                    STSOTXEndpointAuth client_cert cert={{seed.CertFile}}&key={{seed.KeyFile}};
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /no-cert {
                    STSExchange otx {{url}} "client_id=gw&{{tls}}";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /unknown-cert {
                    STSExchange otx {{url}} "auth=client_cert&cert={{unknown.CertFile}}&key={{unknown.KeyFile}}&{{tls}}";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
            }
            """);
    }

    protected override async Task OnStopping()
    {
        await _sts.DisposeAsync();
        await _backend.DisposeAsync();
    }

    private static string NewSource(string tag) => $"mtls-{tag}-{Guid.NewGuid():N}";

    private Task<HttpReply> ExchangeAsync(string path, string source) =>
        Nginx.SendAsync(HttpMethod.Get, path, configure: r => r.Headers.TryAddWithoutValidation("X-Source", source),
            timeout: TimeSpan.FromSeconds(15));

    /// <summary>
    /// A 200 through <paramref name="path"/>: the STS got exactly one call
    /// for <paramref name="source"/>, over a connection that presented
    /// <paramref name="certificate"/>, and the backend got that call's target.
    /// </summary>
    private void AssertExchangedWith(string path, string source, HttpReply reply, string certificate)
    {
        Assert.That(reply.Status, Is.EqualTo(200), $"{path}: {reply}");
        ScriptedRequest call = _sts.Requests.Single(r => r.Source == source);
        Assert.That(call.ClientCertificate, Is.Not.Null, $"{path}: the STS request came with a client certificate");
        Assert.That(call.ClientCertificate, Is.EqualTo(_certificates[certificate].Thumbprint),
            $"{path}: the STS saw {Name(call.ClientCertificate)}, not {certificate}");
        Assert.That(BackendView.Parse(reply.Body).Header("X-Target"), Is.EqualTo(ScriptedSts.TargetFor(source, call.Number)),
            $"{path}: the backend got this exchange's target token");
    }

    private string Name(string? thumbprint) =>
        thumbprint is null ? "no certificate" : _certificates.FirstOrDefault(c => c.Value.Thumbprint == thumbprint).Key ?? thumbprint;

    // ---- the configured certificate is the one presented -----------------------------

    [TestCase("/cert-a", "client-a", TestName = "Client_cert_of_STSExchange_is_presented_to_a_verified_https_sts")]
    [TestCase("/seed-cert", "client-seed", TestName = "Client_cert_of_STSOTXEndpointAuth_is_presented_to_an_sts_verified_against_STSSSLCAFile")]
    public async Task Client_certificate_is_presented(string path, string certificate)
    {
        string source = NewSource(certificate);
        int refused = _sts.RefusedClientCertificates.Count;

        HttpReply reply = await ExchangeAsync(path, source);

        AssertExchangedWith(path, source, reply, certificate);
        ScriptedRequest call = _sts.Requests.Single(r => r.Source == source);
        Assert.That(call.Method, Is.EqualTo("POST"));
        Assert.That(call.Field("grant_type"), Is.EqualTo("urn:ietf:params:oauth:grant-type:token-exchange"));
        Assert.That(call.Header("Authorization"), Is.Null, "client_cert authenticates on the TLS connection only");
        Assert.That(call.Field("client_secret"), Is.Null);
        Assert.That(call.Field("client_assertion"), Is.Null);
        Assert.That(_sts.RefusedClientCertificates, Has.Count.EqualTo(refused), "no handshake was refused");
    }

    // ---- no certificate, or one the STS does not accept -------------------------------

    /// <summary>
    /// The STS requires a client certificate: a location without one fails
    /// the TLS handshake, no status line comes, the STS did not answer, so
    /// 503 with Retry-After (docs/DIRECTIVES.md, Status codes and logging
    /// of STS). First a successful exchange with a certificate to the same
    /// host:port, so a TLS session that could be resumed exists.
    /// </summary>
    [Test]
    public async Task Without_a_client_certificate_the_sts_handshake_fails_and_the_answer_is_503()
    {
        string first = NewSource("first-a");
        AssertExchangedWith("/cert-a", first, await ExchangeAsync("/cert-a", first), "client-a");
        int backendBefore = _backend.Count;
        string source = NewSource("no-cert");

        HttpReply reply = await ExchangeAsync("/no-cert", source);

        AssertDidNotAnswer(reply, source, backendBefore);
    }

    /// <summary>A certificate the STS does not accept: it is presented, refused, and the answer is 503 as without one.</summary>
    [Test]
    public async Task A_client_certificate_the_sts_refuses_fails_the_handshake_and_the_answer_is_503()
    {
        string first = NewSource("first-b");
        AssertExchangedWith("/cert-b", first, await ExchangeAsync("/cert-b", first), "client-b");
        int backendBefore = _backend.Count;
        string source = NewSource("unknown-cert");

        HttpReply reply = await ExchangeAsync("/unknown-cert", source);

        AssertDidNotAnswer(reply, source, backendBefore);
        Assert.That(_sts.RefusedClientCertificates, Does.Contain(_certificates["client-unknown"].Thumbprint),
            "the configured certificate was presented, and refused");
    }

    private void AssertDidNotAnswer(HttpReply reply, string source, int backendBefore)
    {
        Assert.That(reply.Status, Is.EqualTo(503), reply.ToString());
        Assert.That(reply.Header("Retry-After"), Is.EqualTo(new[] { "5" }));
        Assert.That(reply.Challenges, Is.Empty);
        Assert.That(reply.Body, Does.Not.Contain("tgt."));
        Assert.That(_sts.Requests.Any(r => r.Source == source), Is.False, "no request reached the STS");
        Assert.That(_backend.Count, Is.EqualTo(backendBefore), "the backend is not asked: no target token reaches it");
        string line = Nginx.WaitForLogLine(TestLogMark, @"\[error\].*sts: .* did not answer");
        Assert.That(StsLog.Lines(Nginx, TestLogMark), Has.Count.EqualTo(1), "one sts line for the failure: " + line);
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Not.Contain(source), "the source token is never logged");
    }

    // ---- several certificates to one host:port ---------------------------------------

    private static readonly (string Path, string Certificate)[] Turns =
    [
        ("/cert-a", "client-a"),
        ("/cert-b", "client-b"),
        ("/seed-cert", "client-seed"),
    ];

    /// <summary>
    /// Three locations (both syntaxes) with different certificates to the
    /// same host:port, in turn: every STS request saw its location's
    /// certificate, though each location follows another's successful
    /// handshake to that server; a location without a certificate between
    /// them still fails (nothing resumed lends it one).
    /// </summary>
    [Test]
    public async Task Locations_used_in_turn_each_present_their_own_certificate()
    {
        var done = new List<(string Path, string Source, HttpReply Reply, string Certificate)>();
        for (int round = 0; round < 4; round++)
        {
            foreach ((string path, string certificate) in Turns)
            {
                string source = NewSource($"turn{round}-{certificate}");
                done.Add((path, source, await ExchangeAsync(path, source), certificate));
            }

            string bare = NewSource($"turn{round}-no-cert");
            HttpReply refused = await ExchangeAsync("/no-cert", bare);
            Assert.That(refused.Status, Is.EqualTo(503), $"round {round}: /no-cert right after /seed-cert: {refused}");
            Assert.That(_sts.Requests.Any(r => r.Source == bare), Is.False);
        }

        foreach ((string path, string source, HttpReply reply, string certificate) in done)
        {
            AssertExchangedWith(path, source, reply, certificate);
        }
    }

    /// <summary>The same with the locations' exchanges at once (connections to the STS overlapping).</summary>
    [Test]
    public async Task Locations_used_at_once_each_present_their_own_certificate()
    {
        (string Path, string Source, string Certificate)[] batch = Enumerable.Range(0, 24)
            .Select(i => Turns[i % Turns.Length])
            .Select((t, i) => (t.Path, NewSource($"burst{i}-{t.Certificate}"), t.Certificate))
            .ToArray();

        HttpReply[] replies = await Task.WhenAll(batch.Select(b => ExchangeAsync(b.Path, b.Source)));

        for (int i = 0; i < batch.Length; i++)
        {
            AssertExchangedWith(batch[i].Path, batch[i].Source, replies[i], batch[i].Certificate);
        }
    }
}
