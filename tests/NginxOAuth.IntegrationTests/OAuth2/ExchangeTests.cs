using System;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>
/// auth_oauth2_token_exchange alone and after introspection: the request the
/// token endpoint receives, the Authorization the upstream receives, the
/// variables, and failures (500) that never let the request through.
/// </summary>
[TestFixture]
public sealed class ExchangeTests : NginxFixture
{
    private FakeIdp _idp = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeIdp.StartAsync();
        string backend = $"proxy_pass {_idp.BaseUrl}/backend;";
        nginx.Start($$"""
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret s;
            map $oauth2_token_sub $is_admin { ~admin 1; default 0; }

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /_introspect { internal; proxy_pass {{_idp.BaseUrl}}/introspect; }
                location = /_token { internal; proxy_pass {{_idp.BaseUrl}}/token; }

                auth_oauth2_token_token_endpoint /_token;

                location /x {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_audience "backend service";
                    auth_oauth2_token_scope "api:read api:write";
                    proxy_set_header X-User-Sub "$oauth2_token_new_token_type|$oauth2_token_active";
                    {{backend}}
                }
                location /x-plain {
                    auth_oauth2_token_exchange on;
                    {{nginx.Echo("new=$oauth2_token_new_token type=$oauth2_token_new_token_type issued=$oauth2_token_new_issued_token_type")}}
                }
                location /both {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_endpoint /_introspect;
                    auth_oauth2_token_require $is_admin error=403;
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_audience aud;
                    proxy_set_header X-User-Sub $oauth2_token_sub;
                    {{backend}}
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    [Test]
    public async Task Exchanged_token_replaces_the_upstream_authorization()
    {
        HttpReply reply = await Nginx.GetAsync("/x", "tok-ex1");

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo(
            "authorization=Bearer x.tok-ex1.backend service.api:read_api:write;"
            + "sub=Bearer|"),
            "the upstream sees only the new token; $oauth2_token_active is empty without introspection");
    }

    [Test]
    public async Task Exchange_request_is_a_form_POST_with_every_RFC_8693_parameter()
    {
        Assert.That((await Nginx.GetAsync("/x", "tok-ex2")).Status, Is.EqualTo(200));

        IdpRequest call = _idp.Requests("/token").Single(r => r.Form["subject_token"] == "tok-ex2");
        Assert.That(call.Method, Is.EqualTo("POST"));
        Assert.That(call.Header("Content-Type"), Is.EqualTo("application/x-www-form-urlencoded"));
        Assert.That(call.Header("Authorization"), Is.EqualTo("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("gw:s"))));
        Assert.That(call.Form["grant_type"], Is.EqualTo("urn:ietf:params:oauth:grant-type:token-exchange"));
        Assert.That(call.Form["subject_token_type"], Is.EqualTo("urn:ietf:params:oauth:token-type:access_token"));
        Assert.That(call.Form["audience"], Is.EqualTo("backend service"));
        Assert.That(call.Form["scope"], Is.EqualTo("api:read api:write"));
        Assert.That(call.Body, Does.Not.Contain(" "), "every value is form-encoded");
    }

    [Test]
    public async Task Exchange_without_audience_and_scope_sends_neither()
    {
        HttpReply reply = await Nginx.GetAsync("/x-plain", "tok-ex3");

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo(
            "new=x.tok-ex3.. type=Bearer issued=urn:ietf:params:oauth:token-type:access_token"));
        IdpRequest call = _idp.Requests("/token").Single(r => r.Form["subject_token"] == "tok-ex3");
        Assert.That(call.Form.ContainsKey("audience"), Is.False);
        Assert.That(call.Form.ContainsKey("scope"), Is.False);
    }

    [Test]
    public async Task Exchange_without_a_token_is_401_and_asks_nobody()
    {
        int before = _idp.Requests("/token").Count;
        HttpReply reply = await Nginx.GetAsync("/x");

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer"));
        Assert.That(_idp.Requests("/token"), Has.Count.EqualTo(before));
    }

    [TestCase("noat-1", "no \"access_token\" in the response", TestName = "Exchange_response_without_access_token_is_500")]
    [TestCase("badgrant-1", "failed: rc 0, status 400", TestName = "Exchange_refused_by_the_IdP_is_500")]
    public async Task Exchange_failure_is_500_with_an_error_line(string token, string logged)
    {
        HttpReply reply = await Nginx.GetAsync("/x", token);

        Assert.That(reply.Status, Is.EqualTo(500), reply.ToString());
        string line = Nginx.WaitForLogLine(TestLogMark, "\\[error\\].*token exchange.*" + System.Text.RegularExpressions.Regex.Escape(logged));
        Assert.That(line, Does.Not.Contain(token));
    }

    [Test]
    public async Task Exchange_response_without_a_token_type_passes_with_a_warning()
    {
        HttpReply reply = await Nginx.GetAsync("/x-plain", "notype-1");

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("new=x.notype-1.. type= issued="));
        Nginx.WaitForLogLine(TestLogMark, "\\[warn\\].*returned no token_type");
    }

    [Test]
    public async Task Both_modes_introspect_then_require_then_exchange()
    {
        HttpReply reply = await Nginx.GetAsync("/both", "tok-admin-b");

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("authorization=Bearer x.tok-admin-b.aud.;sub=user-tok-admin-b"));
        Assert.That(_idp.Calls("/introspect", "tok-admin-b"), Is.EqualTo(1));
        Assert.That(_idp.Calls("/token", "tok-admin-b"), Is.EqualTo(1));
    }

    [Test]
    public async Task Both_modes_never_exchange_an_inactive_token()
    {
        HttpReply reply = await Nginx.GetAsync("/both", "inactive-b");

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        Assert.That(_idp.Calls("/token", "inactive-b"), Is.Zero);
    }

    [Test]
    public async Task Both_modes_never_exchange_when_require_fails()
    {
        HttpReply reply = await Nginx.GetAsync("/both", "tok-user-b");

        Assert.That(reply.Status, Is.EqualTo(403));
        Assert.That(_idp.Calls("/introspect", "tok-user-b"), Is.EqualTo(1));
        Assert.That(_idp.Calls("/token", "tok-user-b"), Is.Zero);
    }

    [Test]
    public async Task Concurrent_exchanges_keep_their_own_tokens()
    {
        HttpReply[] replies = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Nginx.GetAsync("/x-plain", $"tok-cx{i}")));

        for (int i = 0; i < replies.Length; i++)
        {
            Assert.That(replies[i].Body, Does.StartWith($"new=x.tok-cx{i}.. "), replies[i].ToString());
        }
    }
}
