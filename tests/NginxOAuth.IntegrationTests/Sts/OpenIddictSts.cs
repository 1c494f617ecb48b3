using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>A token request <see cref="OpenIddictSts"/> received, and its answer.</summary>
public sealed record StsTokenRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body,
    int Status, string ResponseBody)
{
    /// <summary>The decoded form fields of the body.</summary>
    public IReadOnlyDictionary<string, string> Form => FakeIdp.ParseForm(Body);

    public string? Field(string name) => Form.TryGetValue(name, out string? v) ? v : null;

    public string? Authorization => Headers.TryGetValue("Authorization", out string? v) ? v : null;

    public string? GrantType => Field("grant_type");

    /// <summary>The source token: the password of a password grant, the subject_token of an exchange.</summary>
    public string? SourceToken => GrantType == GrantTypes.Password ? Field("password") : Field("subject_token");

    /// <summary>The answer parsed (null when not JSON).</summary>
    public JsonElement? Response
    {
        get
        {
            try
            {
                return JsonDocument.Parse(ResponseBody).RootElement.Clone();
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }
}

/// <summary>The answer of a token request made through <see cref="OpenIddictSts.PostTokenAsync"/>.</summary>
public sealed record TokenReply(int Status, string Body)
{
    public JsonElement Json => JsonDocument.Parse(Body).RootElement.Clone();

    public string? Get(string name) =>
        Json.TryGetProperty(name, out JsonElement v) ? (v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText()) : null;

    public string AccessToken => Get("access_token") ?? throw new InvalidOperationException("no access_token: " + Body);

    public string? Error => Get("error");
}

/// <summary>
/// A real authorization server in-process: OpenIddict.Server.AspNetCore 7.8
/// in degraded mode (no database) on Kestrel at 127.0.0.1 (ephemeral port),
/// plain HTTP.  Token endpoint <see cref="TokenEndpoint"/> with the password
/// grant (ROPC), client credentials and RFC 8693 token exchange; JWS access
/// tokens signed by an ephemeral RSA key published at <see cref="JwksUrl"/>.
/// <para>
/// Clients (checked by our ValidateTokenRequestContext handler, as degraded
/// mode requires): confidential <see cref="ClientId"/>/<see cref="ClientSecret"/>
/// (client_secret_basic or client_secret_post), public <see cref="PublicClientId"/>
/// (no secret; no client credentials).  Password grant: username alice or bob
/// (any when <see cref="AcceptAnyUser"/>), the password is the source token
/// (non-empty); the token has sub = username and src = <see cref="SourceHash"/>
/// of the password.  Token exchange: the subject_token must be an access token
/// of this server (OpenIddict validates it itself: signature, lifetime, type);
/// the new token keeps its sub and src, carries act_client = the client, scope =
/// the requested scope, requested_audience / requested_resource = the request's,
/// and aud = the requested resources when there are any (OpenIddict's rule),
/// else the requested audiences, else "api".  Degraded mode needs no handler
/// for the subject token: OpenIddict validates it before our handler runs
/// (a garbage or forged one is invalid_grant) and hands us its principal;
/// the tokens carry both clients as presenters, so either may exchange them.
/// </para>
/// Every token request is recorded with its form, headers and answer (except
/// the ones the helpers make for themselves).
/// </summary>
public sealed class OpenIddictSts : IAsyncDisposable, IDisposable
{
    public const string ClientId = "sts-client";
    public const string ClientSecret = "sts-secret";
    public const string PublicClientId = "public-client";
    public const string TokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange";
    public const string AccessTokenType = "urn:ietf:params:oauth:token-type:access_token";
    public const string TokenPath = "/connect/token";

    /// <summary>The audiences, resources and scopes the server accepts in a request.</summary>
    public static readonly string[] Audiences = ["backend-service", "api", "urn:nginx-oauth:backend"];
    public static readonly string[] Resources = ["https://backend.example.test/", "https://api.example.test/"];
    public static readonly string[] Scopes = ["api:read", "api:write", "openid", "profile"];

    private const string HelperHeader = "X-Sts-Helper";

    private WebApplication _app = null!;
    private readonly ConcurrentQueue<StsTokenRequest> _requests = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(90) };

    private OpenIddictSts()
    {
    }

    public int Port { get; private set; }

    /// <summary>http://127.0.0.1:port (also the issuer).</summary>
    public string BaseUrl => $"http://127.0.0.1:{Port}";

    public string TokenEndpoint => BaseUrl + TokenPath;

    public string JwksUrl => BaseUrl + "/.well-known/jwks";

    /// <summary>Lifetime (expires_in) of the tokens issued from now on.</summary>
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromSeconds(3600);

    /// <summary>The password grant accepts any username (not only alice and bob).</summary>
    public bool AcceptAnyUser { get; set; }

    public IReadOnlyList<StsTokenRequest> Requests => _requests.ToList();

    /// <summary>Token requests received (the helpers' own not counted).</summary>
    public int Count => _requests.Count;

    /// <summary>Password grants whose password, or exchanges whose subject_token, was <paramref name="sourceToken"/>.</summary>
    public int Calls(string sourceToken) => _requests.Count(r => r.SourceToken == sourceToken);

    public void ResetCounts() => _requests.Clear();

    /// <summary>The "src" claim for a password: 16 hex digits of SHA-256.</summary>
    public static string SourceHash(string password) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(password)))[..16];

    public static async Task<OpenIddictSts> StartAsync()
    {
        var sts = new OpenIddictSts();
        (sts._app, sts.Port) = await LoopbackKestrel.StartAsync(sts.ConfigureServices, sts.ConfigurePipeline).ConfigureAwait(false);
        // A fixed issuer (the port is known only now): tokens keep one iss whatever Host header
        // a proxy sends, so a token issued here directly can be exchanged through nginx.
        sts._app.Services.GetRequiredService<IOptionsMonitor<OpenIddictServerOptions>>().CurrentValue.Issuer = new Uri(sts.BaseUrl + "/");
        return sts;
    }

    /// <summary>
    /// A real access token of this server obtained through its own token endpoint:
    /// the password grant when <paramref name="username"/> is given (password
    /// <paramref name="password"/>, default "pw-" + username), else client credentials.
    /// </summary>
    public async Task<string> IssueAccessTokenAsync(string clientId = ClientId, string? username = null, string? password = null,
        string? scope = null)
    {
        var form = new Dictionary<string, string>(StringComparer.Ordinal);
        if (username is not null)
        {
            form["grant_type"] = GrantTypes.Password;
            form["username"] = username;
            form["password"] = password ?? "pw-" + username;
        }
        else
        {
            form["grant_type"] = GrantTypes.ClientCredentials;
        }

        if (scope is not null)
        {
            form["scope"] = scope;
        }

        TokenReply reply = clientId == ClientId
            ? await PostTokenAsync(form, basic: (ClientId, ClientSecret), helper: true).ConfigureAwait(false)
            : await PostTokenAsync(new Dictionary<string, string>(form) { ["client_id"] = clientId }, helper: true).ConfigureAwait(false);
        if (reply.Status != 200)
        {
            throw new InvalidOperationException($"the token endpoint answered {reply.Status}: {reply.Body}");
        }

        return reply.AccessToken;
    }

    /// <summary>POSTs <paramref name="form"/> to the token endpoint, with HTTP Basic when <paramref name="basic"/> is given.</summary>
    public async Task<TokenReply> PostTokenAsync(IReadOnlyDictionary<string, string> form, (string User, string Password)? basic = null,
        bool helper = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, TokenEndpoint) { Content = new FormUrlEncodedContent(form) };
        if (basic is { } b)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes(Uri.EscapeDataString(b.User) + ":" + Uri.EscapeDataString(b.Password))));
        }

        if (helper)
        {
            request.Headers.Add(HelperHeader, "1");
        }

        using HttpResponseMessage response = await _http.SendAsync(request).ConfigureAwait(false);
        return new TokenReply((int)response.StatusCode, await response.Content.ReadAsStringAsync().ConfigureAwait(false));
    }

    /// <summary>The server's public signing keys (JWKS JSON, as its JWKS endpoint serves them).</summary>
    public Task<string> GetJwksAsync() => _http.GetStringAsync(JwksUrl);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _http.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private void ConfigureServices(IServiceCollection services)
    {
        services.AddOpenIddict().AddServer(options =>
        {
            options.SetTokenEndpointUris(TokenPath.TrimStart('/'))
                .SetConfigurationEndpointUris(".well-known/openid-configuration")
                .SetJsonWebKeySetEndpointUris(".well-known/jwks");
            options.AllowPasswordFlow().AllowClientCredentialsFlow().AllowTokenExchangeFlow();
            options.EnableDegradedMode();
            options.AddEphemeralEncryptionKey().AddEphemeralSigningKey();
            options.DisableAccessTokenEncryption();
            options.RegisterScopes(Scopes).RegisterAudiences(Audiences).RegisterResources(Resources);
            options.UseAspNetCore().DisableTransportSecurityRequirement();

            options.AddEventHandler<OpenIddictServerEvents.ValidateTokenRequestContext>(builder =>
                builder.UseInlineHandler(context =>
                {
                    ValidateClient(context);
                    return default;
                }));
            options.AddEventHandler<OpenIddictServerEvents.HandleTokenRequestContext>(builder =>
                builder.UseInlineHandler(context =>
                {
                    HandleToken(context);
                    return default;
                }));
        });
    }

    private void ConfigurePipeline(WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            if (context.Request.Path != TokenPath)
            {
                await next(context).ConfigureAwait(false);
                return;
            }

            context.Request.EnableBuffering();
            string body;
            using (var reader = new StreamReader(context.Request.Body, Encoding.UTF8, leaveOpen: true))
            {
                body = await reader.ReadToEndAsync().ConfigureAwait(false);
            }

            context.Request.Body.Position = 0;
            Stream original = context.Response.Body;
            using var captured = new MemoryStream();
            context.Response.Body = captured;
            try
            {
                await next(context).ConfigureAwait(false);
            }
            finally
            {
                context.Response.Body = original;
            }

            string responseBody = Encoding.UTF8.GetString(captured.ToArray());
            if (!context.Request.Headers.ContainsKey(HelperHeader))
            {
                _requests.Enqueue(new StsTokenRequest(context.Request.Method, context.Request.Path.Value ?? "",
                    context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
                    body, context.Response.StatusCode, responseBody));
            }

            captured.Position = 0;
            await captured.CopyToAsync(original).ConfigureAwait(false);
        });
        app.UseAuthentication();
    }

    /// <summary>Degraded mode validates no client: this is the client registry.</summary>
    private static void ValidateClient(OpenIddictServerEvents.ValidateTokenRequestContext context)
    {
        switch (context.ClientId)
        {
            case ClientId when context.ClientSecret == ClientSecret:
                return;
            case ClientId:
                context.Reject(Errors.InvalidClient, "The client secret is not valid.");
                return;
            case PublicClientId when string.IsNullOrEmpty(context.ClientSecret):
                if (context.Request.IsClientCredentialsGrantType())
                {
                    context.Reject(Errors.UnauthorizedClient, "A public client cannot use client credentials.");
                }

                return;
            case PublicClientId:
                context.Reject(Errors.InvalidClient, "The public client has no secret.");
                return;
            default:
                context.Reject(Errors.InvalidClient, "The client is not known.");
                return;
        }
    }

    private void HandleToken(OpenIddictServerEvents.HandleTokenRequestContext context)
    {
        OpenIddictRequest request = context.Request;
        var identity = new ClaimsIdentity(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme, Claims.Name, Claims.Role);

        if (request.IsPasswordGrantType())
        {
            string username = request.Username ?? "";
            if (!AcceptAnyUser && username is not "alice" and not "bob" || username.Length == 0)
            {
                context.Reject(Errors.InvalidGrant, "The user is not known.");
                return;
            }

            if (string.IsNullOrEmpty(request.Password))
            {
                context.Reject(Errors.InvalidGrant, "The password (the source token) is empty.");
                return;
            }

            identity.SetClaim(Claims.Subject, username).SetClaim(Claims.Name, username)
                .SetClaim("src", SourceHash(request.Password));
        }
        else if (request.IsClientCredentialsGrantType())
        {
            identity.SetClaim(Claims.Subject, context.ClientId);
        }
        else if (request.IsTokenExchangeGrantType())
        {
            ClaimsPrincipal? subject = context.SubjectTokenPrincipal;
            if (subject is null)
            {
                context.Reject(Errors.InvalidGrant, "The subject token is not valid.");
                return;
            }

            identity.SetClaim(Claims.Subject, subject.GetClaim(Claims.Subject))
                .SetClaim(Claims.Name, subject.GetClaim(Claims.Name))
                .SetClaim("src", subject.GetClaim("src"))
                .SetClaim("act_client", context.ClientId);
            if (request.Resources is { Length: > 0 } resources)
            {
                identity.SetClaims("requested_resource", [.. resources.OfType<string>()]);
            }

            if (request.Audiences is { Length: > 0 } audiences)
            {
                identity.SetClaims("requested_audience", [.. audiences.OfType<string>()]);
            }
        }
        else
        {
            context.Reject(Errors.UnsupportedGrantType, "The grant type is not supported.");
            return;
        }

        identity.SetScopes(request.GetScopes());
        identity.SetAudiences(request.Audiences is { Length: > 0 } a ? [.. a.OfType<string>()] : ["api"]);
        identity.SetResources(request.GetResources());
        // the clients that may exchange the token later (ValidateAuthorizedParty checks presenters and audiences)
        identity.SetPresenters(ClientId, PublicClientId);
        identity.SetDestinations(_ => [Destinations.AccessToken]);

        var principal = new ClaimsPrincipal(identity);
        principal.SetAccessTokenLifetime(AccessTokenLifetime);
        context.SignIn(principal);
    }
}
