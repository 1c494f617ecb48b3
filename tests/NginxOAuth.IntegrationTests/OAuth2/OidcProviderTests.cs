using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>
/// End to end against a real authorization server: oidc-provider from the
/// npm registry (tests/e2e/oidc-provider, installed into build/ on first use,
/// listening on 127.0.0.1 only) issues client-credentials tokens, answers
/// RFC 7662 introspection and RFC 7009 revocation, and exchanges tokens
/// (RFC 8693 grant registered in idp.mjs). Ignored when node/npm are missing
/// or the package cannot be installed.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class OidcProviderTests : NginxFixture
{
    private Process? _idp;
    private int _idpPort;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(15) };

    private string IdpUrl => $"http://127.0.0.1:{_idpPort}";

    protected override async Task StartNginx(NginxInstance nginx)
    {
        string dir = Sts.OidcProviderServer.Install();
        _idpPort = NginxInstance.NewPort();
        _idp = Process.Start(new ProcessStartInfo("node", ["idp.mjs", _idpPort.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        }) ?? throw new InvalidOperationException("node did not start");
        _idp.OutputDataReceived += (_, _) => { };
        _idp.ErrorDataReceived += (_, _) => { };
        _idp.BeginOutputReadLine();
        _idp.BeginErrorReadLine();
        await WaitForIdpAsync();

        string secret = nginx.WriteFile("client_secret", "gw-secret\n");
        string echo = nginx.Echo("client=$oauth2_token_client_id scope=$oauth2_token_scope active=$oauth2_token_active "
            + "new=$oauth2_token_new_token type=$oauth2_token_new_token_type issued=$oauth2_token_new_issued_token_type");
        string jwtEcho = nginx.Echo("sub=$jwt_claim_sub client=$jwt_claim_client_id");
        nginx.Start($$"""
            auth_oauth2_token_client_id my-gateway;
            auth_oauth2_token_client_secret_file {{secret}};

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /_introspect { internal; proxy_pass {{IdpUrl}}/token/introspection; }
                location = /_token { internal; proxy_pass {{IdpUrl}}/token; }
                auth_oauth2_token_introspect_endpoint /_introspect;
                auth_oauth2_token_token_endpoint /_token;

                location /introspect { auth_oauth2_token_introspect on; {{echo}} }
                location /jwt {
                    auth_jwt "e2e";
                    auth_jwt_discovery {{IdpUrl}};
                    {{jwtEcho}}
                }
                location /cached {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=e2e:1m max_ttl=60s;
                    {{echo}}
                }
                location /both {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_audience backend-service;
                    auth_oauth2_token_scope api:read;
                    {{echo}}
                }
            }
            """);
    }

    protected override Task OnStopping()
    {
        if (_idp is { HasExited: false })
        {
            _idp.Kill(entireProcessTree: true);
            _idp.WaitForExit(5000);
        }

        _idp?.Dispose();
        _http.Dispose();
        return Task.CompletedTask;
    }

    private async Task WaitForIdpAsync()
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (_idp!.HasExited)
            {
                throw new InvalidOperationException($"oidc-provider exited with {_idp.ExitCode}");
            }

            try
            {
                using HttpResponseMessage r = await _http.GetAsync($"{IdpUrl}/.well-known/openid-configuration");
                if (r.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("oidc-provider did not answer within 30 s");
    }

    private async Task<JsonElement> PostFormAsync(string path, string user, string password,
        Dictionary<string, string> form)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, IdpUrl + path)
        {
            Content = new FormUrlEncodedContent(form),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        using HttpResponseMessage response = await _http.SendAsync(request);
        string body = await response.Content.ReadAsStringAsync();
        Assert.That(response.IsSuccessStatusCode, Is.True, $"{path}: {(int)response.StatusCode} {body}");
        return body.Length == 0 ? default : JsonDocument.Parse(body).RootElement.Clone();
    }

    private async Task<string> AppTokenAsync(string scope = "api:read api:write") =>
        (await PostFormAsync("/token", "app", "app-secret", new()
        {
            ["grant_type"] = "client_credentials",
            ["scope"] = scope,
        })).GetProperty("access_token").GetString()!;

    private Task RevokeAsync(string token) =>
        PostFormAsync("/token/revocation", "app", "app-secret", new() { ["token"] = token });

    [Test]
    public async Task Jwt_access_token_of_the_server_is_verified_with_keys_found_by_discovery()
    {
        string jwt = (await PostFormAsync("/token", "app", "app-secret", new()
        {
            ["grant_type"] = "client_credentials",
            ["scope"] = "api:read",
            ["resource"] = "https://api.nginx-oauth.test",
        })).GetProperty("access_token").GetString()!;
        Assert.That(jwt.Split('.'), Has.Length.EqualTo(3), "a JWT access token");

        HttpReply reply = await Nginx.GetAsync("/jwt", jwt);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Does.Contain("client=app"));
        Assert.That((await Nginx.GetAsync("/jwt", await AppTokenAsync())).Status, Is.EqualTo(401),
            "an opaque token is no JWT");
    }

    [Test]
    public async Task Token_issued_by_the_server_is_introspected_as_active()
    {
        string token = await AppTokenAsync("api:read");

        HttpReply reply = await Nginx.GetAsync("/introspect", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Does.StartWith("client=app scope=api:read active=1 new= type="));
    }

    [Test]
    public async Task Unknown_token_is_inactive_for_the_server()
    {
        HttpReply reply = await Nginx.GetAsync("/introspect", "not-a-token-the-server-issued");

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
    }

    [Test]
    public async Task Revoked_token_is_refused_at_once_without_cache_and_after_max_ttl_with_it()
    {
        string token = await AppTokenAsync();
        Assert.That((await Nginx.GetAsync("/introspect", token)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/cached", token)).Status, Is.EqualTo(200));

        await RevokeAsync(token);

        Assert.That((await Nginx.GetAsync("/introspect", token)).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/cached", token)).Status, Is.EqualTo(200),
            "a cached introspection outlives revocation until max_ttl (documented)");
    }

    [Test]
    public async Task Exchanged_token_is_a_new_active_token_of_the_server()
    {
        string token = await AppTokenAsync();

        HttpReply reply = await Nginx.GetAsync("/both", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        string issued = reply.Body.Split("new=")[1].Split(' ')[0];
        Assert.That(issued, Is.Not.Empty.And.Not.EqualTo(token));
        Assert.That(reply.Body, Does.EndWith(" type=Bearer issued=urn:ietf:params:oauth:token-type:access_token"));

        JsonElement introspected = await PostFormAsync("/token/introspection", "my-gateway", "gw-secret",
            new() { ["token"] = issued });
        Assert.That(introspected.GetProperty("active").GetBoolean(), Is.True);
        Assert.That(introspected.GetProperty("scope").GetString(), Is.EqualTo("api:read"), "scope reduced by the exchange");
    }

    [Test]
    public async Task Exchange_of_a_revoked_token_fails_closed()
    {
        string token = await AppTokenAsync();
        await RevokeAsync(token);

        HttpReply reply = await Nginx.GetAsync("/both", token);

        Assert.That(reply.Status, Is.EqualTo(401), "introspection refuses it before any exchange");
    }
}
