using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Sts;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>
/// auth_oauth2_token_client_auth tls_client_auth (RFC 8705) live: an HTTPS
/// IdP on 127.0.0.1 (Kestrel, server certificate of a test CA that nginx
/// verifies) requires a TLS client certificate and accepts only the
/// configured one. The certificate is the internal location's
/// proxy_ssl_certificate (docs/DIRECTIVES.md); the body carries client_id and
/// no credentials. Each IdP request records the thumbprint of its
/// connection's certificate, so the tests compare certificates, count IdP
/// calls and refused handshakes: without a certificate, or with one the IdP
/// does not know, the handshake fails, the IdP did not answer, nginx answers
/// 503 with Retry-After and the request goes no further.
/// </summary>
[TestFixture]
public sealed class TlsClientAuthTests : NginxFixture
{
    private ScriptedSts _idp = null!;
    private TestClientCertificate _gateway = null!;
    private TestClientCertificate _unknown = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        TestCa ca = TestCa.Create();
        string caFile = nginx.WriteFile("tls/ca.pem", ca.CaPem);
        _gateway = TestClientCertificate.Write(nginx, "tls-gateway");
        _unknown = TestClientCertificate.Write(nginx, "tls-unknown");
        _idp = await ScriptedSts.StartAsync(ca.Server, [_gateway.Certificate]);
        _idp.Script = Answer;

        string verify = $"proxy_ssl_verify on; proxy_ssl_trusted_certificate {caFile}; proxy_ssl_session_reuse off;";
        string gatewayCert = $"proxy_ssl_certificate {_gateway.CertFile}; proxy_ssl_certificate_key {_gateway.KeyFile};";
        string unknownCert = $"proxy_ssl_certificate {_unknown.CertFile}; proxy_ssl_certificate_key {_unknown.KeyFile};";
        string echo = nginx.Echo("sub=$oauth2_token_sub client=$oauth2_token_client_id new=$oauth2_token_new_token");
        const string tls = "auth_oauth2_token_client_id tls-gw; auth_oauth2_token_client_auth tls_client_auth;";

        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /_introspect { internal; proxy_pass {{_idp.BaseUrl}}/introspect; {{verify}} {{gatewayCert}} }
                location = /_token { internal; proxy_pass {{_idp.BaseUrl}}/token; {{verify}} {{gatewayCert}} }
                location = /_introspect_bare { internal; proxy_pass {{_idp.BaseUrl}}/introspect; {{verify}} }
                location = /_introspect_unknown { internal; proxy_pass {{_idp.BaseUrl}}/introspect; {{verify}} {{unknownCert}} }
                location = /_token_bare { internal; proxy_pass {{_idp.BaseUrl}}/token; {{verify}} }

                location /tls {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_endpoint /_introspect;
                    {{tls}}
                    {{echo}}
                }
                location /tls-both {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_introspect_endpoint /_introspect;
                    auth_oauth2_token_token_endpoint /_token;
                    auth_oauth2_token_audience backend;
                    {{tls}}
                    {{echo}}
                }
                location /no-cert {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_endpoint /_introspect_bare;
                    {{tls}}
                    {{echo}}
                }
                location /unknown-cert {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_endpoint /_introspect_unknown;
                    {{tls}}
                    {{echo}}
                }
                location /no-cert-exchange {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_token_endpoint /_token_bare;
                    {{tls}}
                    {{echo}}
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    /// <summary>Introspection: active, sub "user-&lt;token&gt;"; exchange: the scripted default (a fresh "tgt." token).</summary>
    private static ScriptedAnswer Answer(ScriptedRequest request) => request.Path == "/introspect"
        ? new ScriptedAnswer(200, new JsonObject
        {
            ["active"] = true,
            ["sub"] = "user-" + request.Field("token"),
            ["client_id"] = "app",
        }.ToJsonString())
        : ScriptedAnswer.Token(ScriptedSts.TargetFor(request.Source ?? "none", request.Number));

    private static string NewToken(string tag) => $"tls-{tag}-{Guid.NewGuid():N}";

    private List<ScriptedRequest> CallsFor(string token) =>
        _idp.Requests.Where(r => r.Field("token") == token || r.Field("subject_token") == token).ToList();

    /// <summary>The request came over a connection with the gateway's certificate and carried only client_id besides the grant's fields.</summary>
    private void AssertTlsClientAuth(ScriptedRequest call)
    {
        Assert.That(call.ClientCertificate, Is.EqualTo(_gateway.Thumbprint), $"{call.Path}: the configured certificate was presented");
        Assert.That(call.Method, Is.EqualTo("POST"));
        Assert.That(call.Header("Authorization"), Is.Null, "tls_client_auth authenticates on the TLS connection only");
        Assert.That(call.Field("client_id"), Is.EqualTo("tls-gw"), "RFC 8705 2: client_id in the body");
        Assert.That(call.Field("client_secret"), Is.Null);
        Assert.That(call.Field("client_assertion"), Is.Null);
        Assert.That(call.Field("client_assertion_type"), Is.Null);
    }

    [Test]
    public async Task Introspection_presents_the_internal_locations_certificate_and_sends_the_client_id()
    {
        string token = NewToken("ok");
        int refused = _idp.RefusedClientCertificates.Count;

        HttpReply reply = await Nginx.GetAsync("/tls", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"sub=user-{token} client=app new="));
        ScriptedRequest call = CallsFor(token).Single();
        Assert.That(call.Path, Is.EqualTo("/introspect"));
        AssertTlsClientAuth(call);
        Assert.That(Form.Pairs(call.Body).Select(p => p.Key).Order(), Is.EqualTo(new[] { "client_id", "token", "token_type_hint" }));
        Assert.That(_idp.RefusedClientCertificates, Has.Count.EqualTo(refused), "no handshake was refused");
    }

    [Test]
    public async Task Introspection_and_exchange_both_present_the_certificate()
    {
        string token = NewToken("both");

        HttpReply reply = await Nginx.GetAsync("/tls-both", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        List<ScriptedRequest> calls = CallsFor(token);
        Assert.That(calls.Select(c => c.Path), Is.EqualTo(new[] { "/introspect", "/token" }));
        foreach (ScriptedRequest call in calls)
        {
            AssertTlsClientAuth(call);
        }

        ScriptedRequest exchange = calls[1];
        Assert.That(exchange.Field("grant_type"), Is.EqualTo("urn:ietf:params:oauth:grant-type:token-exchange"));
        Assert.That(exchange.Field("audience"), Is.EqualTo("backend"));
        Assert.That(reply.Body, Is.EqualTo($"sub=user-{token} client=app new={ScriptedSts.TargetFor(token, exchange.Number)}"));
    }

    /// <summary>
    /// First a successful call with the certificate (a TLS session to the
    /// same host:port exists), then the location without one: the IdP
    /// refuses the handshake, 503 with Retry-After, nothing reached the IdP.
    /// </summary>
    [TestCase("/no-cert", TestName = "Without_a_certificate_the_handshake_fails_and_introspection_is_503")]
    [TestCase("/no-cert-exchange", TestName = "Without_a_certificate_the_handshake_fails_and_the_exchange_is_503")]
    public async Task Without_a_certificate_the_answer_is_503(string path)
    {
        Assert.That((await Nginx.GetAsync("/tls", NewToken("first"))).Status, Is.EqualTo(200));
        string token = NewToken("bare");
        int before = _idp.Count;

        HttpReply reply = await Nginx.GetAsync(path, token);

        AssertDidNotAnswer(reply, token, before);
    }

    [Test]
    public async Task A_certificate_the_idp_does_not_know_is_presented_refused_and_the_answer_is_503()
    {
        string token = NewToken("unknown");
        int before = _idp.Count;
        int refused = _idp.RefusedClientCertificates.Count(t => t == _unknown.Thumbprint);

        HttpReply reply = await Nginx.GetAsync("/unknown-cert", token);

        AssertDidNotAnswer(reply, token, before);
        Assert.That(_idp.RefusedClientCertificates.Count(t => t == _unknown.Thumbprint), Is.GreaterThan(refused),
            "the configured (unknown) certificate was presented, and refused");
        Assert.That(_idp.RefusedClientCertificates, Does.Not.Contain(_gateway.Thumbprint));
    }

    private void AssertDidNotAnswer(HttpReply reply, string token, int before)
    {
        Assert.That(reply.Status, Is.EqualTo(503), reply.ToString());
        Assert.That(reply.Header("Retry-After"), Has.Length.EqualTo(1));
        Assert.That(reply.Challenge, Is.Null, "an IdP outage is no token problem");
        Assert.That(reply.Body, Does.Not.Contain("sub="), "the request went no further");
        Assert.That(CallsFor(token), Is.Empty, "no request reached the IdP");
        Assert.That(_idp.Count, Is.EqualTo(before), "the IdP answered nothing in the meantime");
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*did not answer");
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Not.Contain(token), "the token is never logged");
    }
}
