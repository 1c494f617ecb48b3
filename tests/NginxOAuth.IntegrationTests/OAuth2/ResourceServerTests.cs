using System.Linq;
using System.Text.Json;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>
/// The full RFC 8693 request (every parameter from variables, the cache key
/// over them, a required issued_token_type), the resource-server answers
/// (RFC 6750 challenges, resource_metadata, the RFC 9728 document) and
/// $oauth2_token_claim_*.
/// </summary>
[TestFixture]
public sealed class ResourceServerTests : NginxFixture
{
    private const string Metadata = "https://api.example/.well-known/oauth-protected-resource";
    private FakeIdp _idp = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeIdp.StartAsync();
        nginx.Start($$"""
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret s;
            auth_oauth2_token_introspect_cache zone=rs_i:1m;
            auth_oauth2_token_exchange_cache zone=rs_x:1m;
            map $oauth2_token_sub $is_admin { ~admin 1; default 0; }

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /_introspect { internal; proxy_pass {{_idp.BaseUrl}}/introspect; }
                location = /_token { internal; proxy_pass {{_idp.BaseUrl}}/token; }
                auth_oauth2_token_introspect_endpoint /_introspect;
                auth_oauth2_token_token_endpoint /_token;

                location /vars {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_audience $arg_aud;
                    auth_oauth2_token_scope "$arg_scope extra";
                    auth_oauth2_token_resource https://fixed.example/;
                    auth_oauth2_token_resource $arg_res;
                    auth_oauth2_token_requested_token_type $arg_rtt;
                    auth_oauth2_token_subject_token_type urn:ietf:params:oauth:token-type:$arg_stt;
                    auth_oauth2_token_actor_token $http_x_actor;
                    auth_oauth2_token_actor_token_type urn:ietf:params:oauth:token-type:jwt;
                    {{nginx.Echo("new=$oauth2_token_new_token issued=$oauth2_token_new_issued_token_type")}}
                }
                location /issued-ok {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_issued_token_type urn:ietf:params:oauth:token-type:access_token;
                    {{nginx.Echo("ok")}}
                }
                location /issued-jwt {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_requested_token_type urn:ietf:params:oauth:token-type:jwt;
                    auth_oauth2_token_issued_token_type urn:ietf:params:oauth:token-type:jwt;
                    {{nginx.Echo("never")}}
                }
                location /mcp {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_resource_metadata {{Metadata}};
                    auth_oauth2_token_require $is_admin error=403;
                    auth_oauth2_token_challenge_scope "mcp:admin mcp:read";
                    {{nginx.Echo("mcp")}}
                }
                location /plain {
                    auth_oauth2_token_introspect on;
                    {{nginx.Echo("plain")}}
                }
                location = /.well-known/oauth-protected-resource {
                    auth_oauth2_token_protected_resource resource=https://api.example/mcp
                        authorization_server=https://as.example authorization_server=https://as2.example
                        scope=mcp:read scope=mcp:admin "resource_name=The \"MCP\" API";
                }
                location /claims {
                    auth_oauth2_token_introspect on;
                    {{nginx.Echo("role=$oauth2_token_claim_role groups=$oauth2_token_claim_groups ext=$oauth2_token_claim_ext")}}
                }
                location /nested {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_allow_nested delimiter=__;
                    {{nginx.Echo("tenant=$oauth2_token_claim_ext__tenant missing=$oauth2_token_claim_ext__none")}}
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    private IdpRequest[] ExchangesOf(string token) =>
        _idp.Requests("/token").Where(r => r.Form.TryGetValue("subject_token", out string? t) && t == token).ToArray();

    [Test]
    public async Task Every_RFC_8693_parameter_takes_variables_and_is_form_encoded()
    {
        HttpReply reply = await Nginx.GetAsync("/vars?aud=svc%20a&scope=read&res=https://r.example/x&rtt=urn:rt&stt=id_token",
            "rs-vars", configure: r => r.Headers.Add("X-Actor", "actor tok+&="));
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());

        IdpRequest call = ExchangesOf("rs-vars").Single();
        var form = StsForm(call.Body);
        Assert.That(form.Where(p => p.Key == "resource").Select(p => p.Value),
            Is.EqualTo(new[] { "https://fixed.example/", "https://r.example/x" }), "resource repeats, in order");
        Assert.That(form.Where(p => p.Key != "resource"), Is.EquivalentTo(new[]
        {
            Pair("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            Pair("subject_token", "rs-vars"),
            Pair("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
            Pair("audience", "svc%20a"),
            Pair("scope", "read extra"),
            Pair("requested_token_type", "urn:rt"),
            Pair("actor_token", "actor tok+&="),
            Pair("actor_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        }));
        Assert.That(call.Body, Does.Contain("actor_token=actor+tok%2B%26%3D"), "form-encoded");
        Assert.That(reply.Body, Is.EqualTo("new=x.rs-vars.svc%20a.read_extra issued=urn:ietf:params:oauth:token-type:access_token"));
    }

    private static System.Collections.Generic.KeyValuePair<string, string> Pair(string k, string v) => new(k, v);

    private static System.Collections.Generic.List<System.Collections.Generic.KeyValuePair<string, string>> StsForm(string body) =>
        body.Split('&').Select(p => p.Split('=', 2))
            .Select(p => Pair(System.Net.WebUtility.UrlDecode(p[0]), System.Net.WebUtility.UrlDecode(p[1]))).ToList();

    [Test]
    public async Task Empty_variables_leave_their_parameters_out()
    {
        Assert.That((await Nginx.GetAsync("/vars?stt=access_token", "rs-empty")).Status, Is.EqualTo(200));
        var names = StsForm(ExchangesOf("rs-empty").Single().Body).Select(p => p.Key).ToArray();
        Assert.That(names, Is.EquivalentTo(new[] { "grant_type", "subject_token", "subject_token_type", "scope", "resource" }),
            "no audience, requested_token_type, actor_token; no actor_token_type without an actor_token (RFC 8693 2.1)");
    }

    [Test]
    public async Task The_cache_key_covers_every_parameter_value()
    {
        string[] queries =
        [
            "aud=a&stt=x", "aud=a&stt=x", "aud=b&stt=x", "aud=a&stt=y", "aud=a&stt=x&scope=s", "aud=a&stt=x&res=r",
            "aud=a&stt=x&rtt=t",
        ];
        foreach (string q in queries)
        {
            Assert.That((await Nginx.GetAsync("/vars?" + q, "rs-key")).Status, Is.EqualTo(200));
        }
        Assert.That(ExchangesOf("rs-key"), Has.Length.EqualTo(6), "the repeat is a hit; every changed value is a miss");

        await Nginx.GetAsync("/vars?aud=a&stt=x", "rs-key", configure: r => r.Headers.Add("X-Actor", "act"));
        Assert.That(ExchangesOf("rs-key"), Has.Length.EqualTo(7), "the actor token is in the key");
    }

    [Test]
    public async Task A_required_issued_token_type_accepts_that_type_and_refuses_another_with_502()
    {
        Assert.That((await Nginx.GetAsync("/issued-ok", "rs-iss1")).Status, Is.EqualTo(200));
        HttpReply refused = await Nginx.GetAsync("/issued-jwt", "rs-iss2");
        Assert.That(refused.Status, Is.EqualTo(502));
        Assert.That(refused.Body, Does.Not.Contain("never"));
        Nginx.WaitForLogLine(TestLogMark, "\\[error\\].*issued a token of type \"urn:ietf:params:oauth:token-type:access_token\", not \"urn:ietf:params:oauth:token-type:jwt\"");
    }

    [Test]
    public async Task A_missing_token_gets_a_challenge_with_resource_metadata()
    {
        HttpReply reply = await Nginx.GetAsync("/mcp");
        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo($"Bearer resource_metadata=\"{Metadata}\""));
    }

    [Test]
    public async Task An_inactive_token_gets_invalid_token_with_resource_metadata()
    {
        HttpReply reply = await Nginx.GetAsync("/mcp", "inactive-rs");
        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo($"Bearer error=\"invalid_token\", resource_metadata=\"{Metadata}\""));
    }

    [Test]
    public async Task A_failed_require_gets_insufficient_scope_with_the_scope()
    {
        HttpReply reply = await Nginx.GetAsync("/mcp", "rs-bob");
        Assert.That(reply.Status, Is.EqualTo(403));
        Assert.That(reply.Challenge, Is.EqualTo(
            $"Bearer error=\"insufficient_scope\", scope=\"mcp:admin mcp:read\", resource_metadata=\"{Metadata}\""));
        Assert.That((await Nginx.GetAsync("/mcp", "rs-admin")).Status, Is.EqualTo(200));
    }

    [Test]
    public async Task Without_metadata_the_challenges_are_plain_RFC_6750()
    {
        Assert.That((await Nginx.GetAsync("/plain")).Challenge, Is.EqualTo("Bearer"));
        Assert.That((await Nginx.GetAsync("/plain", "inactive-plain")).Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
    }

    [Test]
    public async Task The_protected_resource_metadata_document_is_RFC_9728_JSON()
    {
        HttpReply reply = await Nginx.GetAsync("/.well-known/oauth-protected-resource");
        Assert.That(reply.Status, Is.EqualTo(200));
        Assert.That(reply.Header("Content-Type").Single(), Is.EqualTo("application/json"));
        using JsonDocument doc = JsonDocument.Parse(reply.Body);
        JsonElement root = doc.RootElement;
        Assert.That(root.GetProperty("resource").GetString(), Is.EqualTo("https://api.example/mcp"));
        Assert.That(root.GetProperty("authorization_servers").EnumerateArray().Select(e => e.GetString()),
            Is.EqualTo(new[] { "https://as.example", "https://as2.example" }));
        Assert.That(root.GetProperty("scopes_supported").EnumerateArray().Select(e => e.GetString()),
            Is.EqualTo(new[] { "mcp:read", "mcp:admin" }));
        Assert.That(root.GetProperty("bearer_methods_supported").EnumerateArray().Select(e => e.GetString()),
            Is.EqualTo(new[] { "header" }));
        Assert.That(root.GetProperty("resource_name").GetString(), Is.EqualTo("The \"MCP\" API"));

        HttpReply post = await Nginx.SendAsync(System.Net.Http.HttpMethod.Post, "/.well-known/oauth-protected-resource");
        Assert.That(post.Status, Is.EqualTo(405));
    }

    [Test]
    public async Task Any_claim_of_the_introspection_answer_is_a_variable()
    {
        HttpReply reply = await Nginx.GetAsync("/claims", "nested-admin");
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("role=admin groups=a,b ext={\"tenant\":\"t1\",\"a.b\":\"dot\"}"));
    }

    [Test]
    public async Task Nested_claim_paths_as_for_jwt()
    {
        HttpReply reply = await Nginx.GetAsync("/nested", "nested-user");
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("tenant=t1 missing="));
    }
}
