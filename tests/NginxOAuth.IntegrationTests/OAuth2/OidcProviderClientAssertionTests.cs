using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Sts;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>
/// auth_oauth2_token_client_auth client_secret_jwt and private_key_jwt
/// (RS256, PS256, ES256, EdDSA) end to end against oidc-provider
/// (tests/e2e/oidc-provider/idp.mjs): the server knows one gateway client
/// per method (the secret, or the public JWK made here), the module signs
/// the assertions with the managed core, and the server verifies them
/// before it introspects a token it issued (200 and the variables) and
/// exchanges it (the new token is active for the server, issued to that
/// client). The same client with a wrong secret or another key is refused
/// by the server: introspection answers 502 (the IdP did not answer 200),
/// an exchange-only location 401 (exchange refused, invalid_client).
/// </summary>
[TestFixture]
public sealed class OidcProviderClientAssertionTests : NginxFixture
{
    private const string Echo = "client=$oauth2_token_client_id scope=$oauth2_token_scope active=$oauth2_token_active "
        + "sub=$oauth2_token_sub new=$oauth2_token_new_token issued=$oauth2_token_new_issued_token_type";

    private static readonly string[] Algs = ["RS256", "PS256", "ES256", "EdDSA"];

    private OidcProviderServer _idp = null!;
    private readonly Dictionary<string, StsKey> _keys = [];

    private static string ClientOf(string alg) => "gw-key-" + alg.ToLowerInvariant();

    private static string KidOf(string alg) => ClientOf(alg) + "-1";

    /// <summary>The key a JWK of <paramref name="alg"/> is (PS256: RSA, chosen with alg=).</summary>
    private static string KeyType(string alg) => alg == "PS256" ? "RS256" : alg;

    private static string AlgParameter(string alg) => alg == "PS256" ? " alg=PS256" : "";

    /// <summary>The public half of a private JWK (no d, p, q, dp, dq, qi).</summary>
    private static string PublicJwk(string privateJwk)
    {
        JsonObject jwk = JsonNode.Parse(privateJwk)!.AsObject();
        foreach (string member in new[] { "d", "p", "q", "dp", "dq", "qi" })
        {
            jwk.Remove(member);
        }

        return jwk.ToJsonString();
    }

    protected override async Task StartNginx(NginxInstance nginx)
    {
        foreach (string alg in Algs)
        {
            _keys[alg] = StsKey.Create(KeyType(alg), KidOf(alg));
        }

        _idp = await OidcProviderServer.StartAsync(
            Algs.Select(alg => (ClientOf(alg), alg, PublicJwk(_keys[alg].PrivateJwk))).ToList());

        string echo = nginx.Echo(Echo);
        string aud = _idp.BaseUrl; // the issuer: an audience oidc-provider accepts at every endpoint
        var clients = new Dictionary<string, string>
        {
            ["secret-jwt"] = $"auth_oauth2_token_client_id {OidcProviderServer.GatewaySecretJwtClientId}; "
                + $"auth_oauth2_token_client_secret \"{OidcProviderServer.GatewaySecretJwtClientSecret}\"; "
                + $"auth_oauth2_token_client_auth client_secret_jwt aud={aud};",
            ["wrong-secret-jwt"] = $"auth_oauth2_token_client_id {OidcProviderServer.GatewaySecretJwtClientId}; "
                + "auth_oauth2_token_client_secret \"not-the-secret-of-gw-secret-jwt-0123456789abcdef0123\"; "
                + $"auth_oauth2_token_client_auth client_secret_jwt aud={aud};",
        };
        foreach (string alg in Algs)
        {
            string key = nginx.WriteFile($"keys/{alg}.jwk", _keys[alg].PrivateJwk);
            // another key of the same type and kid: the server cannot verify its signatures
            string wrong = nginx.WriteFile($"keys/wrong-{alg}.jwk", StsKey.Create(KeyType(alg), KidOf(alg)).PrivateJwk);
            clients[alg.ToLowerInvariant()] = $"auth_oauth2_token_client_id {ClientOf(alg)}; "
                + $"auth_oauth2_token_client_auth private_key_jwt key={key}{AlgParameter(alg)} aud={aud};";
            clients["wrong-" + alg.ToLowerInvariant()] = $"auth_oauth2_token_client_id {ClientOf(alg)}; "
                + $"auth_oauth2_token_client_auth private_key_jwt key={wrong}{AlgParameter(alg)} aud={aud};";
        }

        // /i/<client>: introspection; /x/<client>: introspection then exchange; /xo/<client>: exchange only
        string locations = string.Join("\n", clients.Select(c => $$"""
                location /i/{{c.Key}} { auth_oauth2_token_introspect on; {{c.Value}} {{echo}} }
                location /x/{{c.Key}} {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_audience backend-service;
                    auth_oauth2_token_scope api:read;
                    {{c.Value}}
                    {{echo}}
                }
                location /xo/{{c.Key}} {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_audience backend-service;
                    {{c.Value}}
                    {{echo}}
                }
            """));

        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /_introspect { internal; proxy_pass {{_idp.IntrospectionEndpoint}}; }
                location = /_token { internal; proxy_pass {{_idp.TokenEndpoint}}; }
                auth_oauth2_token_introspect_endpoint /_introspect;
                auth_oauth2_token_token_endpoint /_token;

            {{locations}}
            }
            """);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    /// <summary>oidc-provider's record of the introspection (or exchange) of <paramref name="token"/>.</summary>
    private Task<OidcProviderRequest?> RecordAsync(string path, string token) => Poll.UntilAsync(
        () => _idp.Requests.LastOrDefault(r => r.Path == path
            && r.Param(path == "/token" ? "subject_token" : "token") == token),
        r => r is not null, $"oidc-provider's record of {path} for the token");

    /// <summary>The server saw an assertion of <paramref name="alg"/> (kid when given), no Authorization, no secret.</summary>
    private static void AssertAssertion(OidcProviderRequest seen, string alg, string? kid)
    {
        Assert.That(seen.Authorization, Is.Null, "the JWT methods send no Authorization header");
        Assert.That(seen.Param("client_id"), Is.Null.Or.EqualTo(seen.ClientId));
        Assert.That(seen.Param("client_secret"), Is.Null, "the secret never travels");
        Assert.That(seen.Param("client_assertion_type"), Is.EqualTo(OidcProviderServer.ClientAssertionType));
        string assertion = seen.Param("client_assertion") ?? "";
        Assert.That(assertion.Split('.'), Has.Length.EqualTo(3), "a compact JWS");
        JsonElement header = StsKey.Header(assertion);
        Assert.That(header.GetProperty("alg").GetString(), Is.EqualTo(alg));
        if (kid is not null)
        {
            Assert.That(header.GetProperty("kid").GetString(), Is.EqualTo(kid));
        }
    }

    private static (string Location, string ClientId, string Alg, string? Kid) Method(string name) => name switch
    {
        "secret-jwt" => (name, OidcProviderServer.GatewaySecretJwtClientId, "HS256", null),
        _ => (name, ClientOf(Algs.Single(a => a.Equals(name, StringComparison.OrdinalIgnoreCase))),
            Algs.Single(a => a.Equals(name, StringComparison.OrdinalIgnoreCase)),
            KidOf(Algs.Single(a => a.Equals(name, StringComparison.OrdinalIgnoreCase)))),
    };

    [TestCase("secret-jwt")]
    [TestCase("rs256")]
    [TestCase("ps256")]
    [TestCase("es256")]
    [TestCase("eddsa")]
    public async Task A_token_of_the_server_is_introspected_active_with_the_assertion_the_server_verified(string name)
    {
        (string location, string clientId, string alg, string? kid) = Method(name);
        string token = await _idp.GetSourceAccessTokenAsync("api:read");

        HttpReply reply = await Nginx.GetAsync("/i/" + location, token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"client={OidcProviderServer.AppClientId} scope=api:read active=1 sub= new= issued="));
        OidcProviderRequest seen = (await RecordAsync("/token/introspection", token))!;
        Assert.That(seen.Status, Is.EqualTo(200));
        Assert.That(seen.ClientId, Is.EqualTo(clientId), "the server authenticated this client");
        AssertAssertion(seen, alg, kid);
    }

    [TestCase("secret-jwt")]
    [TestCase("rs256")]
    [TestCase("ps256")]
    [TestCase("es256")]
    [TestCase("eddsa")]
    public async Task A_token_of_the_server_is_exchanged_by_the_client_the_assertion_authenticates(string name)
    {
        (string location, string clientId, string alg, string? kid) = Method(name);
        string token = await _idp.GetSourceAccessTokenAsync();

        HttpReply reply = await Nginx.GetAsync("/x/" + location, token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Does.StartWith($"client={OidcProviderServer.AppClientId} scope=api:read api:write active=1 sub= new="));
        Assert.That(reply.Body, Does.EndWith(" issued=urn:ietf:params:oauth:token-type:access_token"));
        string issued = reply.Body.Split("new=")[1].Split(' ')[0];
        Assert.That(issued, Is.Not.Empty.And.Not.EqualTo(token));

        (int status, string body) = await _idp.PostTokenAsync(new Dictionary<string, string> { ["token"] = issued },
            basic: (OidcProviderServer.GatewayClientId, OidcProviderServer.GatewayClientSecret), path: "/token/introspection");
        Assert.That(status, Is.EqualTo(200), body);
        JsonElement introspected = JsonDocument.Parse(body).RootElement;
        Assert.That(introspected.GetProperty("active").GetBoolean(), Is.True, body);
        Assert.That(introspected.GetProperty("client_id").GetString(), Is.EqualTo(clientId), body);
        Assert.That(introspected.GetProperty("aud").GetString(), Is.EqualTo("backend-service"), body);
        Assert.That(introspected.GetProperty("sub").GetString(), Is.EqualTo(OidcProviderServer.AppClientId), body);
        Assert.That(introspected.GetProperty("scope").GetString(), Is.EqualTo("api:read"), body);

        OidcProviderRequest introspection = (await RecordAsync("/token/introspection", token))!;
        OidcProviderRequest exchange = (await RecordAsync("/token", token))!;
        foreach (OidcProviderRequest seen in new[] { introspection, exchange })
        {
            Assert.That(seen.Status, Is.EqualTo(200), seen.Path);
            Assert.That(seen.ClientId, Is.EqualTo(clientId), seen.Path);
            AssertAssertion(seen, alg, kid);
        }

        Assert.That(exchange.Param("grant_type"), Is.EqualTo(OidcProviderServer.TokenExchangeGrant));
        Assert.That(exchange.Param("client_assertion"), Is.Not.EqualTo(introspection.Param("client_assertion")),
            "a fresh assertion (jti) per call: the server refuses a replayed one");
    }

    [TestCase("wrong-secret-jwt", "HS256")]
    [TestCase("wrong-rs256", "RS256")]
    [TestCase("wrong-ps256", "PS256")]
    [TestCase("wrong-es256", "ES256")]
    [TestCase("wrong-eddsa", "EdDSA")]
    public async Task A_wrong_secret_or_key_is_refused_by_the_server_and_nginx_never_answers_200(string location, string alg)
    {
        string token = await _idp.GetSourceAccessTokenAsync();

        HttpReply introspected = await Nginx.GetAsync("/i/" + location, token);
        HttpReply exchanged = await Nginx.GetAsync("/xo/" + location, token);

        Assert.That(introspected.Status, Is.EqualTo(502), "introspection: the IdP answered other than 200: " + introspected);
        Assert.That(introspected.Body, Does.Not.Contain("client="), "the backend is not reached");
        Assert.That(exchanged.Status, Is.EqualTo(401), "exchange refused (invalid_client): " + exchanged);
        Assert.That(exchanged.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        Assert.That(exchanged.Body, Does.Not.Contain("client="), "the backend is not reached");
        foreach (string path in new[] { "/token/introspection", "/token" })
        {
            OidcProviderRequest seen = (await RecordAsync(path, token))!;
            Assert.That(seen.Status, Is.EqualTo(401), path);
            Assert.That(seen.Error, Is.EqualTo("invalid_client"), path);
            AssertAssertion(seen, alg, null);
        }

        string log = Nginx.ErrorLogSince(TestLogMark);
        Assert.That(log, Does.Not.Contain(token), "the token is never logged");
    }
}
