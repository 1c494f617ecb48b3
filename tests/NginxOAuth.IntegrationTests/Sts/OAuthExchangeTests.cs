using System;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// The OAuth 2.0 exchanges end to end against a real authorization server
/// (OpenIddict 7.8 in-process): ROPC in the seed syntax and as STSExchange
/// ropc, client credentials without a source, RFC 8693 token exchange of a
/// token the server issued; client_secret_basic/post and secrets read from
/// files; every RFC 8693 parameter from options and from variables;
/// request parameters whose values carry form syntax. The target token the
/// backend receives is the server's JWT (signature checked against its
/// JWKS). Client assertions (client_secret_jwt, private_key_jwt with RSA,
/// EC and Ed25519 keys) go to a scripted token endpoint and are verified
/// independently (Microsoft.IdentityModel, OpenSSL for EdDSA).
/// </summary>
[TestFixture]
public sealed class OAuthExchangeTests : NginxFixture
{
    private const string HmacClientSecret = "client-secret-jwt-secret-of-at-least-32-bytes";

    private OpenIddictSts _sts = null!;
    private ScriptedSts _assertSts = null!;
    private RecordingBackend _backend = null!;
    private JsonWebKeySet _jwks = null!;
    private string _actor = null!;

    private readonly StsKey _rsa = StsKey.Create("RS256", "pkjwt-rsa-1");
    private readonly StsKey _ec = StsKey.Create("ES256", "pkjwt-ec-1");
    private readonly StsKey _ed = StsKey.Create("EdDSA", "pkjwt-ed-1");

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _sts = await OpenIddictSts.StartAsync();
        _assertSts = await ScriptedSts.StartAsync();
        _backend = await RecordingBackend.StartAsync();
        _jwks = new JsonWebKeySet(await _sts.GetJwksAsync());
        _actor = await _sts.IssueAccessTokenAsync(scope: "api:read");

        string token = _sts.TokenEndpoint;
        string secretFile = nginx.WriteFile("sts/client_secret", OpenIddictSts.ClientSecret + "\n");
        string passwordFile = nginx.WriteFile("sts/password", OpenIddictSts.ClientSecret + "\r\n");
        string ecJwkFile = nginx.WriteFile("sts/ec.jwk", _ec.PrivateJwk);
        string basic = $"auth=client_secret_basic&client_id={OpenIddictSts.ClientId}&client_secret={OpenIddictSts.ClientSecret}";
        string post = $"auth=client_secret_post&client_id={OpenIddictSts.ClientId}&client_secret={OpenIddictSts.ClientSecret}";
        string backend = $"proxy_set_header Authorization \"Bearer $t\"; proxy_pass {_backend.BaseUrl}/backend;";
        string source = "STSVariables $http_x_source $t;";
        // params= is a form string inside the form string of the options: encoded twice
        string tricky = Uri.EscapeDataString("p1=" + Uri.EscapeDataString("a&b=c d") + "&p2=" + Uri.EscapeDataString("x=y&z"));
        string sttParams = Uri.EscapeDataString("subject_token_type=urn:ietf:params:oauth:token-type:jwt");
        string jwk(StsKey k) => Uri.EscapeDataString(k.PrivateJwk);
        string assertEndpoint(string name) => $"{_assertSts.BaseUrl}/assert/{name}";

        nginx.Start($$"""
            map $http_authorization $bearer {
                "~^Bearer (?<token>.+)$" $token;
                default "";
            }

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /seed-ropc {
                    STSType ropc;
                    STSROPCEndpoint {{token}};
                    STSROPCEndpointAuth client_secret_basic "client_secret={{OpenIddictSts.ClientSecret}}";
                    STSROPCClientID {{OpenIddictSts.ClientId}};
                    STSROPCUsername alice;
                    {{source}}
                    {{backend}}
                }
                location = /ropc {
                    STSExchange ropc {{token}} "{{post}}&username=bob&scope=api:read";
                    {{source}}
                    {{backend}}
                }
                location = /ropc-secret-file {
                    STSExchange ropc {{token}} "auth=client_secret_basic&client_id={{OpenIddictSts.ClientId}}&client_secret_file={{secretFile}}&username=alice";
                    {{source}}
                    {{backend}}
                }
                location = /cc {
                    STSExchange cc {{token}} "{{basic}}&scope=api:read+api:write";
                    STSVariables $t;
                    {{backend}}
                }
                location = /cc-post {
                    STSExchange cc {{token}} "{{post}}&scope=api:write";
                    STSVariables $t;
                    {{backend}}
                }
                location = /cc-password-file {
                    STSExchange cc {{token}} "auth=basic&username={{OpenIddictSts.ClientId}}&password_file={{passwordFile}}&scope=openid";
                    STSVariables $t;
                    {{backend}}
                }
                location = /otx {
                    STSExchange otx {{token}} "{{basic}}&audience=backend-service&scope=api:read&resource=https://backend.example.test/&resource=https://api.example.test/&requested_token_type=urn:ietf:params:oauth:token-type:access_token";
                    {{source}}
                    {{backend}}
                }
                location = /otx-actor {
                    STSExchange otx {{token}} "{{basic}}&actor_token={{_actor}}&actor_token_type=urn:ietf:params:oauth:token-type:access_token&requested_token_type=urn:ietf:params:oauth:token-type:access_token";
                    {{source}}
                    {{backend}}
                }
                location = /otx-post {
                    STSExchange otx {{token}} "{{post}}&audience=api";
                    {{source}}
                    {{backend}}
                }
                location = /otx-vars {
                    STSExchange otx {{token}} "{{basic}}&audience=$arg_aud&scope=$http_x_scope&resource=$http_x_res1&resource=$http_x_res2&requested_token_type=$arg_rtt&actor_token=$http_x_actor&actor_token_type=urn:ietf:params:oauth:token-type:access_token";
                    {{source}}
                    {{backend}}
                }
                location = /seed-otx {
                    STSType otx;
                    STSOTXEndpoint {{token}};
                    STSOTXEndpointAuth client_secret_post "client_secret={{OpenIddictSts.ClientSecret}}";
                    STSOTXClientID {{OpenIddictSts.ClientId}};
                    STSRequestParameter audience urn:nginx-oauth:backend;
                    STSRequestParameter custom "a&b=c d";
                    STSRequestParameter injected $http_x_custom;
                    {{source}}
                    {{backend}}
                }
                location = /otx-params {
                    STSExchange otx {{token}} "{{basic}}&params={{tricky}}%26p3%3D$http_x_custom";
                    {{source}}
                    {{backend}}
                }
                location = /otx-params-stt {
                    STSExchange otx {{token}} "{{basic}}&params={{sttParams}}";
                    {{source}}
                    {{backend}}
                }
                location = /otx-option-stt {
                    STSExchange otx {{token}} "{{basic}}&subject_token_type=urn:ietf:params:oauth:token-type:jwt";
                    {{source}}
                    {{backend}}
                }
                location = /wrong-secret {
                    STSExchange otx {{token}} "auth=client_secret_basic&client_id={{OpenIddictSts.ClientId}}&client_secret=not-the-secret";
                    {{source}}
                    {{backend}}
                }

                location = /deliver-header {
                    STSExchange otx {{_assertSts.BaseUrl}}/plain "client_id=gw&pass_target=header:X-Target-Token&strip_source=header:X-Source";
                    {{source}}
                    proxy_pass {{_backend.BaseUrl}}/backend;
                }
                location = /deliver-cookie {
                    STSExchange otx {{_assertSts.BaseUrl}}/plain "client_id=gw&pass_target=cookie:tgt&strip_source=cookie:src";
                    STSVariables $cookie_src $t;
                    proxy_pass {{_backend.BaseUrl}}/backend;
                }
                location = /deliver-query {
                    STSExchange otx {{_assertSts.BaseUrl}}/plain "client_id=gw&pass_target=query:access_token&strip_source=query:src";
                    STSVariables $arg_src $t;
                    proxy_pass {{_backend.BaseUrl}}/backend;
                }
                location = /deliver-types {
                    STSExchange otx {{_assertSts.BaseUrl}}/plain "client_id=gw&max_source=64";
                    {{source}}
                    proxy_set_header X-Issued-Type $sts_issued_token_type;
                    proxy_set_header X-Token-Type $sts_token_type;
                    proxy_pass {{_backend.BaseUrl}}/backend;
                }
                location = /deliver-bearer {
                    STSExchange otx {{_assertSts.BaseUrl}}/plain "client_id=gw";
                    STSVariables $bearer $t;
                    STSStripSource authorization;
                    STSPassTarget bearer;
                    proxy_pass {{_backend.BaseUrl}}/backend;
                }

                location = /pkjwt-rs256 {
                    STSExchange otx {{assertEndpoint("rs256")}} "auth=private_key_jwt&client_id=pk-client&jwk={{jwk(_rsa)}}";
                    {{source}}
                    {{backend}}
                }
                location = /pkjwt-es256 {
                    STSExchange otx {{assertEndpoint("es256")}} "auth=private_key_jwt&client_id=pk-client&jwk_file={{ecJwkFile}}&aud=https://sts.example.test/token";
                    {{source}}
                    {{backend}}
                }
                location = /pkjwt-eddsa {
                    STSExchange otx {{assertEndpoint("eddsa")}} "auth=private_key_jwt&client_id=pk-client&jwk={{jwk(_ed)}}&kid=configured-kid";
                    {{source}}
                    {{backend}}
                }
                location = /csjwt {
                    STSExchange otx {{assertEndpoint("hs256")}} "auth=client_secret_jwt&client_id=cs-client&client_secret={{HmacClientSecret}}";
                    {{source}}
                    {{backend}}
                }
            }
            """);
    }

    protected override async Task OnStopping()
    {
        await _sts.DisposeAsync();
        await _assertSts.DisposeAsync();
        await _backend.DisposeAsync();
    }

    private static string NewSource(string tag) => $"src-{tag}-{Guid.NewGuid():N}";

    /// <summary>GET <paramref name="path"/> with the source token in X-Source: the reply and what the backend saw.</summary>
    private async Task<(HttpReply Reply, BackendView? View)> SendAsync(string path, string? source,
        Action<HttpRequestMessage>? configure = null)
    {
        HttpReply reply = await Nginx.GetAsync(path, configure: r =>
        {
            if (source is not null)
            {
                r.Headers.TryAddWithoutValidation("X-Source", source);
            }

            configure?.Invoke(r);
        });
        return (reply, reply.Status == 200 ? BackendView.Parse(reply.Body) : null);
    }

    /// <summary>The target token the backend received as "Authorization: Bearer ...".</summary>
    private static string TargetOf(BackendView view)
    {
        string? authorization = view.Header("Authorization");
        Assert.That(authorization, Does.StartWith("Bearer "), "the backend gets the target token as a bearer token");
        return authorization!["Bearer ".Length..];
    }

    /// <summary>Validates a token of the OpenIddict server (signature by its JWKS, issuer, lifetime) and returns its payload.</summary>
    private async Task<JsonElement> ValidTargetAsync(string jwt)
    {
        TokenValidationResult result = await new JsonWebTokenHandler().ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            ValidIssuer = _sts.BaseUrl + "/",
            ValidateAudience = false,
            IssuerSigningKeys = _jwks.GetSigningKeys(),
            RequireSignedTokens = true,
        });
        Assert.That(result.IsValid, Is.True, $"the target token is a valid token of the server: {result.Exception?.Message}");
        return StsKey.Payload(jwt);
    }

    private StsTokenRequest RequestFor(string source) => _sts.Requests.Single(r => r.SourceToken == source);

    private static string[] Strings(JsonElement payload, string name) =>
        payload.TryGetProperty(name, out JsonElement v)
            ? v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(e => e.GetString()!).ToArray() : [v.GetString()!]
            : [];

    // ---- ROPC ---------------------------------------------------------------

    [Test]
    public async Task Seed_ropc_sends_the_source_as_password_with_client_secret_basic_and_forwards_the_servers_token()
    {
        string source = NewSource("seed-ropc");

        (HttpReply reply, BackendView? view) = await SendAsync("/seed-ropc", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        StsTokenRequest call = RequestFor(source);
        Assert.That(call.GrantType, Is.EqualTo("password"));
        Assert.That(call.Field("username"), Is.EqualTo("alice"));
        Assert.That(call.Field("password"), Is.EqualTo(source));
        Assert.That(call.Authorization, Is.EqualTo("Basic " + Convert.ToBase64String(
            Encoding.UTF8.GetBytes($"{OpenIddictSts.ClientId}:{OpenIddictSts.ClientSecret}"))));
        Assert.That(call.Field("client_secret"), Is.Null, "the secret goes in the header only");
        Assert.That(call.Status, Is.EqualTo(200), call.ResponseBody);

        string target = TargetOf(view!);
        Assert.That(target, Is.EqualTo(call.Response!.Value.GetProperty("access_token").GetString()), "the token the server issued");
        JsonElement payload = await ValidTargetAsync(target);
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("alice"));
        Assert.That(payload.GetProperty("src").GetString(), Is.EqualTo(OpenIddictSts.SourceHash(source)));
    }

    [Test]
    public async Task Ropc_exchange_with_client_secret_post_and_a_scope()
    {
        string source = NewSource("ropc");

        (HttpReply reply, BackendView? view) = await SendAsync("/ropc", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        StsTokenRequest call = RequestFor(source);
        Assert.That(call.Authorization, Is.Null);
        Assert.That(Form.One(call.Body, "client_id"), Is.EqualTo(OpenIddictSts.ClientId));
        Assert.That(Form.One(call.Body, "client_secret"), Is.EqualTo(OpenIddictSts.ClientSecret));
        Assert.That(Form.One(call.Body, "grant_type"), Is.EqualTo("password"));
        Assert.That(Form.One(call.Body, "username"), Is.EqualTo("bob"));
        Assert.That(Form.One(call.Body, "password"), Is.EqualTo(source));
        JsonElement payload = await ValidTargetAsync(TargetOf(view!));
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("bob"));
        Assert.That(payload.GetProperty("src").GetString(), Is.EqualTo(OpenIddictSts.SourceHash(source)));
    }

    [Test]
    public async Task Client_secret_read_from_a_file_authenticates()
    {
        string source = NewSource("secret-file");

        (HttpReply reply, BackendView? view) = await SendAsync("/ropc-secret-file", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(RequestFor(source).Authorization, Is.EqualTo("Basic " + Convert.ToBase64String(
            Encoding.UTF8.GetBytes($"{OpenIddictSts.ClientId}:{OpenIddictSts.ClientSecret}"))), "the file's trailing newline is not part of the secret");
        Assert.That((await ValidTargetAsync(TargetOf(view!))).GetProperty("sub").GetString(), Is.EqualTo("alice"));
    }

    [Test]
    public async Task Source_with_form_syntax_and_spaces_arrives_intact_as_the_password()
    {
        string source = "tok en&grant_type=client_credentials+x%20=y/;" + Guid.NewGuid().ToString("N")[..8];

        (HttpReply reply, BackendView? view) = await SendAsync("/ropc", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        StsTokenRequest call = RequestFor(source);
        Assert.That(Form.All(call.Body, "grant_type"), Is.EqualTo(new[] { "password" }));
        Assert.That(Form.One(call.Body, "password"), Is.EqualTo(source));
        Assert.That((await ValidTargetAsync(TargetOf(view!))).GetProperty("src").GetString(), Is.EqualTo(OpenIddictSts.SourceHash(source)),
            "the server hashed exactly the source");
    }

    [Test]
    public async Task Request_body_of_a_POST_reaches_the_backend_whole_after_the_exchange()
    {
        string source = NewSource("post-body");
        byte[] body = System.Security.Cryptography.RandomNumberGenerator.GetBytes(200 * 1024);

        HttpReply reply = await Nginx.SendAsync(HttpMethod.Post, "/ropc", configure: r =>
        {
            r.Headers.TryAddWithoutValidation("X-Source", source);
            r.Content = new ByteArrayContent(body);
        });

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        BackendView view = BackendView.Parse(reply.Body);
        Assert.That(view.Method, Is.EqualTo("POST"));
        Assert.That((view.BodyLength, view.BodySha256),
            Is.EqualTo(((long)body.Length, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(body)))));
        Assert.That((await ValidTargetAsync(TargetOf(view))).GetProperty("src").GetString(), Is.EqualTo(OpenIddictSts.SourceHash(source)));
        Assert.That(RequestFor(source).Field("password"), Is.EqualTo(source), "the STS got the exchange's own body");
    }

    // ---- client credentials -----------------------------------------------

    [Test]
    public async Task Client_credentials_needs_no_source_and_forwards_a_token_of_the_client()
    {
        int before = _sts.Requests.Count(r => r.GrantType == "client_credentials" && r.Authorization is not null);

        (HttpReply reply, BackendView? view) = await SendAsync("/cc", null);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        StsTokenRequest call = _sts.Requests.Where(r => r.GrantType == "client_credentials" && r.Authorization is not null).Last();
        Assert.That(_sts.Requests.Count(r => r.GrantType == "client_credentials" && r.Authorization is not null), Is.EqualTo(before + 1));
        Assert.That(Form.Pairs(call.Body).Select(p => p.Key), Is.EquivalentTo(new[] { "grant_type", "scope" }));
        Assert.That(call.Field("scope"), Is.EqualTo("api:read api:write"));
        JsonElement payload = await ValidTargetAsync(TargetOf(view!));
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo(OpenIddictSts.ClientId));
        Assert.That(payload.GetProperty("scope").GetString(), Is.EqualTo("api:read api:write"));
    }

    [Test]
    public async Task Client_credentials_with_client_secret_post()
    {
        (HttpReply reply, BackendView? view) = await SendAsync("/cc-post", null);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        StsTokenRequest call = _sts.Requests.Last(r => r.GrantType == "client_credentials" && r.Field("scope") == "api:write");
        Assert.That(call.Authorization, Is.Null);
        Assert.That(call.Field("client_secret"), Is.EqualTo(OpenIddictSts.ClientSecret));
        Assert.That((await ValidTargetAsync(TargetOf(view!))).GetProperty("scope").GetString(), Is.EqualTo("api:write"));
    }

    [Test]
    public async Task Basic_password_read_from_a_file_authenticates()
    {
        (HttpReply reply, BackendView? view) = await SendAsync("/cc-password-file", null);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        StsTokenRequest call = _sts.Requests.Last(r => r.GrantType == "client_credentials" && r.Field("scope") == "openid");
        Assert.That(call.Authorization, Is.EqualTo("Basic " + Convert.ToBase64String(
            Encoding.UTF8.GetBytes($"{OpenIddictSts.ClientId}:{OpenIddictSts.ClientSecret}"))), "CR LF at the end of the file is dropped");
        Assert.That((await ValidTargetAsync(TargetOf(view!))).GetProperty("sub").GetString(), Is.EqualTo(OpenIddictSts.ClientId));
    }

    // ---- RFC 8693 -------------------------------------------------------------

    [Test]
    public async Task Token_exchange_of_a_servers_token_sends_every_configured_parameter_and_keeps_the_subject()
    {
        string subject = await _sts.IssueAccessTokenAsync(username: "bob", password: "bobs-password-otx");

        (HttpReply reply, BackendView? view) = await SendAsync("/otx", subject);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        StsTokenRequest call = RequestFor(subject);
        Assert.That(call.Status, Is.EqualTo(200), call.ResponseBody);
        Assert.That(Form.One(call.Body, "grant_type"), Is.EqualTo(OpenIddictSts.TokenExchangeGrant));
        Assert.That(Form.One(call.Body, "subject_token"), Is.EqualTo(subject));
        Assert.That(Form.One(call.Body, "subject_token_type"), Is.EqualTo(OpenIddictSts.AccessTokenType), "the default");
        Assert.That(Form.One(call.Body, "audience"), Is.EqualTo("backend-service"));
        Assert.That(Form.One(call.Body, "scope"), Is.EqualTo("api:read"));
        Assert.That(Form.All(call.Body, "resource"), Is.EqualTo(new[] { "https://backend.example.test/", "https://api.example.test/" }));
        Assert.That(Form.One(call.Body, "requested_token_type"), Is.EqualTo(OpenIddictSts.AccessTokenType));
        Assert.That(Form.One(call.Body, "actor_token"), Is.Null);
        Assert.That(call.Authorization, Does.StartWith("Basic "));

        string target = TargetOf(view!);
        Assert.That(target, Is.Not.EqualTo(subject));
        JsonElement payload = await ValidTargetAsync(target);
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("bob"));
        Assert.That(payload.GetProperty("src").GetString(), Is.EqualTo(OpenIddictSts.SourceHash("bobs-password-otx")));
        Assert.That(payload.GetProperty("act_client").GetString(), Is.EqualTo(OpenIddictSts.ClientId));
        Assert.That(payload.GetProperty("scope").GetString(), Is.EqualTo("api:read"));
        Assert.That(Strings(payload, "aud"), Is.EquivalentTo(new[] { "https://backend.example.test/", "https://api.example.test/" }));
        Assert.That(Strings(payload, "requested_audience"), Is.EqualTo(new[] { "backend-service" }));
    }

    [Test]
    public async Task Token_exchange_with_an_actor_token_from_the_options()
    {
        string subject = await _sts.IssueAccessTokenAsync(username: "bob", password: "bob-actor");

        (HttpReply reply, BackendView? view) = await SendAsync("/otx-actor", subject);

        StsTokenRequest call = RequestFor(subject);
        Assert.That(Form.One(call.Body, "actor_token"), Is.EqualTo(_actor));
        Assert.That(Form.One(call.Body, "actor_token_type"), Is.EqualTo(OpenIddictSts.AccessTokenType));
        Assert.That(Form.One(call.Body, "requested_token_type"), Is.EqualTo(OpenIddictSts.AccessTokenType));
        Assert.That(Form.One(call.Body, "audience"), Is.Null);
        Assert.That(reply.Status, Is.EqualTo(200), reply + " / STS: " + call.ResponseBody);
        Assert.That((await ValidTargetAsync(TargetOf(view!))).GetProperty("sub").GetString(), Is.EqualTo("bob"));
    }

    [Test]
    public async Task Token_exchange_with_client_secret_post()
    {
        string subject = await _sts.IssueAccessTokenAsync(username: "alice", password: "alice-otx-post");

        (HttpReply reply, BackendView? view) = await SendAsync("/otx-post", subject);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        StsTokenRequest call = RequestFor(subject);
        Assert.That(call.Authorization, Is.Null);
        Assert.That(Form.One(call.Body, "client_id"), Is.EqualTo(OpenIddictSts.ClientId));
        Assert.That(Form.One(call.Body, "client_secret"), Is.EqualTo(OpenIddictSts.ClientSecret));
        JsonElement payload = await ValidTargetAsync(TargetOf(view!));
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("alice"));
        Assert.That(Strings(payload, "aud"), Is.EqualTo(new[] { "api" }));
    }

    [Test]
    public async Task Token_exchange_parameters_from_variables_are_this_requests_values()
    {
        string subject = await _sts.IssueAccessTokenAsync(username: "alice", password: "alice-otx-vars");
        string actor = await _sts.IssueAccessTokenAsync();

        (HttpReply reply, BackendView? view) = await SendAsync(
            "/otx-vars?aud=urn:nginx-oauth:backend&rtt=urn:ietf:params:oauth:token-type:access_token", subject, r =>
            {
                r.Headers.TryAddWithoutValidation("X-Scope", "api:read api:write");
                r.Headers.TryAddWithoutValidation("X-Res1", "https://api.example.test/");
                r.Headers.TryAddWithoutValidation("X-Res2", "https://backend.example.test/");
                r.Headers.TryAddWithoutValidation("X-Actor", actor);
            });

        StsTokenRequest call = RequestFor(subject);
        Assert.That(Form.One(call.Body, "audience"), Is.EqualTo("urn:nginx-oauth:backend"));
        Assert.That(Form.One(call.Body, "scope"), Is.EqualTo("api:read api:write"), "a space in a variable's value arrives as a space");
        Assert.That(Form.All(call.Body, "resource"), Is.EqualTo(new[] { "https://api.example.test/", "https://backend.example.test/" }));
        Assert.That(Form.One(call.Body, "requested_token_type"), Is.EqualTo(OpenIddictSts.AccessTokenType));
        Assert.That(Form.One(call.Body, "actor_token"), Is.EqualTo(actor));
        Assert.That(Form.One(call.Body, "actor_token_type"), Is.EqualTo(OpenIddictSts.AccessTokenType));
        Assert.That(reply.Status, Is.EqualTo(200), reply + " / STS: " + call.ResponseBody);
        JsonElement payload = await ValidTargetAsync(TargetOf(view!));
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("alice"));
        Assert.That(payload.GetProperty("scope").GetString(), Is.EqualTo("api:read api:write"));
        Assert.That(Strings(payload, "requested_audience"), Is.EqualTo(new[] { "urn:nginx-oauth:backend" }));
    }

    [Test]
    public async Task Token_exchange_variables_of_two_requests_do_not_mix()
    {
        string subject1 = await _sts.IssueAccessTokenAsync(username: "alice", password: "alice-vars-1");
        string subject2 = await _sts.IssueAccessTokenAsync(username: "bob", password: "bob-vars-2");
        string actor = await _sts.IssueAccessTokenAsync();
        void Headers(HttpRequestMessage r, string scope, string res)
        {
            r.Headers.TryAddWithoutValidation("X-Scope", scope);
            r.Headers.TryAddWithoutValidation("X-Res1", res);
            r.Headers.TryAddWithoutValidation("X-Actor", actor);
        }

        var replies = await Task.WhenAll(
            SendAsync("/otx-vars?aud=api", subject1, r => Headers(r, "api:read", "https://api.example.test/")),
            SendAsync("/otx-vars?aud=backend-service", subject2, r => Headers(r, "api:write", "https://backend.example.test/")));

        Assert.That(replies.Select(r => r.Reply.Status), Is.All.EqualTo(200));
        StsTokenRequest one = RequestFor(subject1), two = RequestFor(subject2);
        Assert.That((one.Field("audience"), one.Field("scope"), one.Field("resource")),
            Is.EqualTo(("api", "api:read", "https://api.example.test/")));
        Assert.That((two.Field("audience"), two.Field("scope"), two.Field("resource")),
            Is.EqualTo(("backend-service", "api:write", "https://backend.example.test/")));
        Assert.That(Form.All(one.Body, "resource"), Has.Length.EqualTo(1), "an empty variable sends no resource");
        Assert.That((await ValidTargetAsync(TargetOf(replies[0].View!))).GetProperty("sub").GetString(), Is.EqualTo("alice"));
        Assert.That((await ValidTargetAsync(TargetOf(replies[1].View!))).GetProperty("sub").GetString(), Is.EqualTo("bob"));
    }

    // ---- request parameters ---------------------------------------------------

    [Test]
    public async Task Seed_request_parameters_with_form_syntax_in_their_values_arrive_intact()
    {
        string subject = await _sts.IssueAccessTokenAsync(username: "bob", password: "bob-seed-otx");
        const string hostile = "a&grant_type=x&subject_token=evil";

        (HttpReply reply, BackendView? view) = await SendAsync("/seed-otx", subject,
            r => r.Headers.TryAddWithoutValidation("X-Custom", hostile));

        StsTokenRequest call = RequestFor(subject);
        Assert.That(Form.One(call.Body, "custom"), Is.EqualTo("a&b=c d"));
        Assert.That(Form.One(call.Body, "injected"), Is.EqualTo(hostile), "a variable's value is one parameter value");
        Assert.That(Form.All(call.Body, "grant_type"), Is.EqualTo(new[] { OpenIddictSts.TokenExchangeGrant }), "no injected grant_type");
        Assert.That(Form.All(call.Body, "subject_token"), Is.EqualTo(new[] { subject }), "no injected subject_token");
        Assert.That(Form.One(call.Body, "audience"), Is.EqualTo("urn:nginx-oauth:backend"));
        Assert.That(Form.One(call.Body, "client_id"), Is.EqualTo(OpenIddictSts.ClientId));
        Assert.That(Form.One(call.Body, "client_secret"), Is.EqualTo(OpenIddictSts.ClientSecret));
        Assert.That(reply.Status, Is.EqualTo(200), reply + " / STS: " + call.ResponseBody);
        JsonElement payload = await ValidTargetAsync(TargetOf(view!));
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("bob"));
        Assert.That(Strings(payload, "requested_audience"), Is.EqualTo(new[] { "urn:nginx-oauth:backend" }));
    }

    [Test]
    public async Task Params_option_values_with_form_syntax_arrive_intact_and_a_variable_cannot_inject()
    {
        string subject = await _sts.IssueAccessTokenAsync(username: "alice", password: "alice-params");
        const string hostile = "v&grant_type=password&scope=api:write";

        (HttpReply reply, _) = await SendAsync("/otx-params", subject, r => r.Headers.TryAddWithoutValidation("X-Custom", hostile));

        StsTokenRequest call = RequestFor(subject);
        Assert.That(Form.One(call.Body, "p1"), Is.EqualTo("a&b=c d"));
        Assert.That(Form.One(call.Body, "p2"), Is.EqualTo("x=y&z"));
        Assert.That(Form.One(call.Body, "p3"), Is.EqualTo(hostile));
        Assert.That(Form.All(call.Body, "grant_type"), Is.EqualTo(new[] { OpenIddictSts.TokenExchangeGrant }));
        Assert.That(Form.All(call.Body, "scope"), Is.Empty, "no injected scope");
        Assert.That(reply.Status, Is.EqualTo(200), reply + " / STS: " + call.ResponseBody);
    }

    [TestCase("/otx-params-stt", TestName = "Subject_token_type_in_params_replaces_the_default")]
    [TestCase("/otx-option-stt", TestName = "Subject_token_type_option_replaces_the_default")]
    public async Task Subject_token_type_replaced(string path)
    {
        string subject = await _sts.IssueAccessTokenAsync(username: "alice", password: "alice-stt" + path);

        (HttpReply reply, _) = await SendAsync(path, subject);

        StsTokenRequest call = RequestFor(subject);
        Assert.That(Form.All(call.Body, "subject_token_type"), Is.EqualTo(new[] { "urn:ietf:params:oauth:token-type:jwt" }),
            "sent once, with the configured value");
        // OpenIddict refuses a subject token type it does not issue: the STS's 400 is the client's 401
        Assert.That((call.Status, call.Response?.GetProperty("error").GetString()), Is.EqualTo((400, "invalid_request")), call.ResponseBody);
        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
    }

    // ---- refusals -------------------------------------------------------------

    [Test]
    public async Task Wrong_client_secret_is_401_and_the_info_log_has_the_sts_error_code()
    {
        string subject = await _sts.IssueAccessTokenAsync(username: "alice", password: "alice-wrong-secret");

        (HttpReply reply, _) = await SendAsync("/wrong-secret", subject);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        StsTokenRequest call = RequestFor(subject);
        Assert.That(call.Response?.GetProperty("error").GetString(), Is.EqualTo("invalid_client"));
        string line = Nginx.WaitForLogLine(TestLogMark, "sts: rejected: .*\"invalid_client\"");
        Assert.That(StsLog.LevelOf(line), Is.EqualTo("info"), line);
        Assert.That(line, Does.Contain($"answered {call.Status} "));
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Not.Contain(subject).And.Not.Contain("not-the-secret"));
    }

    // ---- where the target goes, where the source is taken from --------------------

    private string PlainTarget(string source) =>
        ScriptedSts.TargetFor(source, _assertSts.Requests.Single(r => r.Path == "/plain" && r.Source == source).Number);

    [Test]
    public async Task Target_in_a_header_and_the_source_header_removed()
    {
        string source = NewSource("deliver-header");

        (HttpReply reply, BackendView? view) = await SendAsync("/deliver-header", source,
            r => r.Headers.TryAddWithoutValidation("X-Target-Token", "forged-by-the-client"));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(view!.Header("X-Target-Token"), Is.EqualTo(PlainTarget(source)), "the client's own X-Target-Token is replaced");
        Assert.That(view.Has("X-Source"), Is.False);
    }

    [Test]
    public async Task Target_in_a_cookie_and_the_source_cookie_removed()
    {
        string source = NewSource("deliver-cookie");

        (HttpReply reply, BackendView? view) = await SendAsync("/deliver-cookie", null,
            r => r.Headers.TryAddWithoutValidation("Cookie", $"a=1;tgt=forged; src={source}; b=2"));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(view!.Header("Cookie"), Is.EqualTo($"a=1; b=2; tgt={PlainTarget(source)}"),
            "the source cookie and the client's own target cookie are gone, the target is the last cookie");
    }

    [Test]
    public async Task Target_in_a_query_argument_and_the_source_argument_removed()
    {
        string source = NewSource("deliver-query");

        (HttpReply reply, BackendView? view) = await SendAsync($"/deliver-query?x=1&access_token=forged&src={source}&y=2", null);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(view!.Query, Is.EqualTo($"?x=1&y=2&access_token={PlainTarget(source)}"),
            "the source argument and the client's own access_token are gone");
    }

    [Test]
    public async Task The_answers_token_types_are_variables_and_a_cache_hit_keeps_them()
    {
        string source = NewSource("types");

        for (int i = 0; i < 2; i++)
        {
            (HttpReply reply, BackendView? view) = await SendAsync("/deliver-types", source);

            Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
            Assert.That(view!.Header("X-Issued-Type"), Is.EqualTo("urn:ietf:params:oauth:token-type:access_token"));
            Assert.That(view.Header("X-Token-Type"), Is.EqualTo("Bearer"));
        }

        Assert.That(_assertSts.Requests.Count(r => r.Path == "/plain" && r.Source == source), Is.EqualTo(1),
            "the second request was a cache hit");
    }

    [Test]
    public async Task A_source_longer_than_max_source_is_401_without_a_call()
    {
        string source = NewSource("long") + new string('x', 64);

        (HttpReply reply, _) = await SendAsync("/deliver-types", source);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(_assertSts.Requests.Any(r => r.Source == source), Is.False);
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Contain($"(source token {source.Length} bytes)"));
    }

    [Test]
    public async Task Bearer_source_replaced_by_the_bearer_target()
    {
        string source = NewSource("deliver-bearer");

        HttpReply reply = await Nginx.GetAsync("/deliver-bearer", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        BackendView view = BackendView.Parse(reply.Body);
        Assert.That(view.Headers.Single(h => h.Key.Equals("Authorization", StringComparison.OrdinalIgnoreCase)).Value,
            Is.EqualTo(new[] { "Bearer " + PlainTarget(source) }), "one Authorization: the target's");
    }

    // ---- client assertions ----------------------------------------------------

    private ScriptedRequest AssertionCall(string name, string source) =>
        _assertSts.Requests.Single(r => r.Path == "/assert/" + name && r.Source == source);

    /// <summary>Checks an RFC 7523 client assertion's claims; returns its header.</summary>
    private static JsonElement CheckAssertionClaims(ScriptedRequest call, JsonElement payload, string clientId, string audience)
    {
        Assert.That(call.Field("client_assertion_type"), Is.EqualTo("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
        Assert.That(call.Field("client_secret"), Is.Null);
        Assert.That(call.Header("Authorization"), Is.Null);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.That(payload.GetProperty("iss").GetString(), Is.EqualTo(clientId));
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo(clientId));
        Assert.That(payload.GetProperty("aud").GetString(), Is.EqualTo(audience));
        Assert.That(payload.GetProperty("jti").GetString(), Has.Length.GreaterThanOrEqualTo(16));
        long iat = payload.GetProperty("iat").GetInt64();
        Assert.That(iat, Is.InRange(now - 60, now + 5));
        Assert.That(payload.GetProperty("exp").GetInt64(), Is.EqualTo(iat + 60));
        return StsKey.Header(call.Field("client_assertion")!);
    }

    [TestCase("rs256", TestName = "Private_key_jwt_with_an_inline_RSA_JWK_signs_a_valid_assertion")]
    [TestCase("es256", TestName = "Private_key_jwt_with_an_EC_JWK_file_and_an_explicit_aud_signs_a_valid_assertion")]
    [TestCase("eddsa", TestName = "Private_key_jwt_with_an_Ed25519_JWK_and_a_configured_kid_signs_a_valid_assertion")]
    public async Task Private_key_jwt(string name)
    {
        (StsKey key, string audience, string kid) = name switch
        {
            "rs256" => (_rsa, $"{_assertSts.BaseUrl}/assert/rs256", _rsa.Kid),
            "es256" => (_ec, "https://sts.example.test/token", _ec.Kid),
            _ => (_ed, $"{_assertSts.BaseUrl}/assert/eddsa", "configured-kid"),
        };
        string source1 = NewSource("pk1-" + name), source2 = NewSource("pk2-" + name);

        (HttpReply reply, BackendView? view) = await SendAsync("/pkjwt-" + name, source1);
        (HttpReply reply2, _) = await SendAsync("/pkjwt-" + name, source2);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply2.Status, Is.EqualTo(200), reply2.ToString());
        ScriptedRequest call = AssertionCall(name, source1);
        Assert.That(TargetOf(view!), Is.EqualTo(ScriptedSts.TargetFor(source1, call.Number)));
        string assertion = call.Field("client_assertion")!;
        JsonElement payload = await key.AssertSignedAsync(assertion);
        JsonElement header = CheckAssertionClaims(call, payload, "pk-client", audience);
        Assert.That(header.GetProperty("alg").GetString(), Is.EqualTo(key.Alg));
        Assert.That(header.GetProperty("kid").GetString(), Is.EqualTo(kid));
        Assert.That(call.Field("client_id"), Is.Null.Or.EqualTo("pk-client"));

        JsonElement second = StsKey.Payload(AssertionCall(name, source2).Field("client_assertion")!);
        Assert.That(second.GetProperty("jti").GetString(), Is.Not.EqualTo(payload.GetProperty("jti").GetString()),
            "every assertion has its own jti");
    }

    [Test]
    public async Task Client_secret_jwt_signs_an_HS256_assertion_with_the_secret()
    {
        string source = NewSource("csjwt");

        (HttpReply reply, _) = await SendAsync("/csjwt", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        ScriptedRequest call = AssertionCall("hs256", source);
        string assertion = call.Field("client_assertion")!;
        string audience = $"{_assertSts.BaseUrl}/assert/hs256";
        TokenValidationResult result = await new JsonWebTokenHandler().ValidateTokenAsync(assertion, new TokenValidationParameters
        {
            IssuerSigningKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(HmacClientSecret)),
            ValidAlgorithms = ["HS256"],
            ValidIssuer = "cs-client",
            ValidAudience = audience,
            RequireExpirationTime = true,
        });
        Assert.That(result.IsValid, Is.True, result.Exception?.Message);
        JsonElement header = CheckAssertionClaims(call, StsKey.Payload(assertion), "cs-client", audience);
        Assert.That(header.GetProperty("alg").GetString(), Is.EqualTo("HS256"));
        Assert.That(header.TryGetProperty("kid", out _), Is.False, "no kid unless configured");

        Assert.That((await new JsonWebTokenHandler().ValidateTokenAsync(assertion, new TokenValidationParameters
        {
            IssuerSigningKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(HmacClientSecret + "x")),
            ValidateIssuer = false,
            ValidateAudience = false,
        })).IsValid, Is.False, "the check can fail");
    }
}
