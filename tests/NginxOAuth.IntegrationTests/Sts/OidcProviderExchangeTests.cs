using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// RFC 8693 through nginx against a second real authorization server,
/// oidc-provider (npm, tests/e2e/oidc-provider), with the two JWT client
/// authentication methods: the module signs a client_secret_jwt (HS256) or
/// private_key_jwt (RS256, the client's registered key) assertion, the
/// server accepts it and exchanges a token it issued; the backend receives
/// the new token, which the server's introspection vouches for.
/// </summary>
[TestFixture]
public sealed class OidcProviderExchangeTests : NginxFixture
{
    private OidcProviderServer _idp = null!;
    private RecordingBackend _backend = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await OidcProviderServer.StartAsync();
        _backend = await RecordingBackend.StartAsync();

        string jwkFile = nginx.WriteFile("sts/client.jwk", _idp.PrivateJwk);
        string backend = $"proxy_set_header Authorization \"Bearer $t\"; proxy_pass {_backend.BaseUrl}/backend;";

        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /private-key-jwt {
                    STSExchange otx {{_idp.TokenEndpoint}} "auth=private_key_jwt&client_id={{OidcProviderServer.KeyJwtClientId}}&jwk_file={{jwkFile}}&kid={{OidcProviderServer.KeyId}}&audience=backend-service&scope=api:read";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /client-secret-jwt {
                    STSExchange otx {{_idp.TokenEndpoint}} "auth=client_secret_jwt&client_id={{OidcProviderServer.SecretJwtClientId}}&client_secret={{OidcProviderServer.SecretJwtClientSecret}}&audience=backend-service&scope=api:read";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
                location = /wrong-secret-jwt {
                    STSExchange otx {{_idp.TokenEndpoint}} "auth=client_secret_jwt&client_id={{OidcProviderServer.SecretJwtClientId}}&client_secret=not-the-secret-of-this-client-0123456789abcdef&audience=backend-service";
                    STSVariables $http_x_source $t;
                    {{backend}}
                }
            }
            """);
    }

    protected override async Task OnStopping()
    {
        await _backend.DisposeAsync();
        await _idp.DisposeAsync();
    }

    [TestCase("/private-key-jwt", OidcProviderServer.KeyJwtClientId)]
    [TestCase("/client-secret-jwt", OidcProviderServer.SecretJwtClientId)]
    public async Task Exchange_with_a_client_assertion_gives_the_backend_a_token_the_server_vouches_for(string path, string client)
    {
        string subject = await _idp.GetSourceAccessTokenAsync();

        HttpReply reply = await Nginx.GetAsync(path, configure: r => r.Headers.TryAddWithoutValidation("X-Source", subject));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        BackendView seen = BackendView.Parse(reply.Body);
        string? authorization = seen.Header("Authorization");
        Assert.That(authorization, Does.StartWith("Bearer "), reply.Body);
        string target = authorization!["Bearer ".Length..];
        Assert.That(target, Is.Not.EqualTo(subject));

        (int status, string body) = await _idp.PostTokenAsync(new Dictionary<string, string> { ["token"] = target },
            basic: (OidcProviderServer.GatewayClientId, OidcProviderServer.GatewayClientSecret), path: "/token/introspection");
        JsonElement introspected = JsonDocument.Parse(body).RootElement;
        Assert.That(status, Is.EqualTo(200), body);
        Assert.That(introspected.GetProperty("active").GetBoolean(), Is.True, body);
        Assert.That(introspected.GetProperty("client_id").GetString(), Is.EqualTo(client), body);
        Assert.That(introspected.GetProperty("aud").GetString(), Is.EqualTo("backend-service"), body);
        Assert.That(introspected.GetProperty("sub").GetString(), Is.EqualTo(OidcProviderServer.AppClientId), body);
        Assert.That(introspected.GetProperty("scope").GetString(), Is.EqualTo("api:read"), body);

        // the server saw an assertion and no Authorization header
        OidcProviderRequest? seenByIdp = await Poll.UntilAsync(
            () => _idp.Requests.LastOrDefault(r => r.Param("subject_token") == subject),
            r => r is not null, "oidc-provider's record of the exchange");
        Assert.That(seenByIdp!.ClientId, Is.EqualTo(client));
        Assert.That(seenByIdp.Param("client_assertion_type"), Is.EqualTo(OidcProviderServer.ClientAssertionType));
        Assert.That(seenByIdp.Authorization, Is.Null);
        Assert.That(seenByIdp.Status, Is.EqualTo(200));
    }

    [Test]
    public async Task An_assertion_the_server_refuses_is_401_and_the_backend_is_not_reached()
    {
        string subject = await _idp.GetSourceAccessTokenAsync();
        int before = _backend.Count;

        HttpReply reply = await Nginx.GetAsync("/wrong-secret-jwt", configure: r => r.Headers.TryAddWithoutValidation("X-Source", subject));

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(_backend.Count, Is.EqualTo(before));
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Contain("\"invalid_client\""));
    }
}
