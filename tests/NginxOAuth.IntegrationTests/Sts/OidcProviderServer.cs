using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>A token endpoint request oidc-provider reported (one "REQUEST" line of idp.mjs).</summary>
public sealed record OidcProviderRequest(string Method, string Path, string? Authorization, string? ClientId,
    IReadOnlyDictionary<string, string> Params, int Status, string? Error)
{
    public string? Param(string name) => Params.TryGetValue(name, out string? v) ? v : null;
}

/// <summary>
/// A real authorization server: oidc-provider from the npm registry
/// (tests/e2e/oidc-provider/idp.mjs, installed into build/e2e-oidc-provider
/// on first use) run by node on 127.0.0.1.  Client credentials, RFC 7662
/// introspection, RFC 7009 revocation and the RFC 8693 exchange of its own
/// access tokens; clients authenticate with client_secret_basic
/// (<see cref="GatewayClientId"/>, <see cref="AppClientId"/>), client_secret_jwt
/// (<see cref="SecretJwtClientId"/>) or private_key_jwt (<see cref="KeyJwtClientId"/>,
/// whose RSA key pair is made here for each start: <see cref="PrivateJwk"/>).
/// <see cref="StartAsync"/> ignores the test when node/npm are missing or the
/// package cannot be installed.
/// </summary>
public sealed class OidcProviderServer : IAsyncDisposable, IDisposable
{
    public const string GatewayClientId = "my-gateway";
    public const string GatewayClientSecret = "gw-secret";
    public const string AppClientId = "app";
    public const string AppClientSecret = "app-secret";
    public const string SecretJwtClientId = "jwt-secret-client";
    public const string SecretJwtClientSecret = "jwt-secret-client-secret-0123456789abcdef0123456789";
    public const string KeyJwtClientId = "jwt-key-client";
    public const string GatewaySecretJwtClientId = "gw-secret-jwt";
    public const string GatewaySecretJwtClientSecret = "gw-secret-jwt-secret-0123456789abcdef0123456789abcdef";
    public const string KeyId = "jwt-key-client-1";
    public const string ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    public const string TokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange";
    public const string AccessTokenType = "urn:ietf:params:oauth:token-type:access_token";

    private static readonly object _installLock = new();
    private static string? _installed;

    private readonly Process _process;
    private readonly RSA _rsa;
    private readonly ConcurrentQueue<OidcProviderRequest> _requests = new();
    private readonly ConcurrentQueue<string> _output = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(15) };

    private OidcProviderServer(Process process, RSA rsa, int port)
    {
        _process = process;
        _rsa = rsa;
        Port = port;
        PrivateKey = new RsaSecurityKey(rsa) { KeyId = KeyId };
    }

    public int Port { get; }

    /// <summary>http://127.0.0.1:port, also the issuer.</summary>
    public string BaseUrl => $"http://127.0.0.1:{Port}";

    public string TokenEndpoint => BaseUrl + "/token";

    public string IntrospectionEndpoint => BaseUrl + "/token/introspection";

    /// <summary>The private key of <see cref="KeyJwtClientId"/> (RS256, kid <see cref="KeyId"/>).</summary>
    public RsaSecurityKey PrivateKey { get; }

    /// <summary>The same key as a private JWK (JSON with d, p, q, ...), e.g. for a key file.</summary>
    public string PrivateJwk => JsonSerializer.Serialize(Jwk(_rsa, includePrivate: true));

    /// <summary>The public JWK the server registered for <see cref="KeyJwtClientId"/>.</summary>
    public string PublicJwk => JsonSerializer.Serialize(Jwk(_rsa, includePrivate: false));

    /// <summary>Token and introspection requests the server reported, in order.</summary>
    public IReadOnlyList<OidcProviderRequest> Requests => _requests.ToList();

    /// <summary>Everything node printed (stdout and stderr).</summary>
    public IReadOnlyList<string> Output => _output.ToList();

    public static Task<OidcProviderServer> StartAsync() => StartAsync([]);

    /// <summary>
    /// Starts it with a private_key_jwt client per entry of
    /// <paramref name="keyClients"/> (client id, the alg it must sign with,
    /// its public JWK), besides the fixed clients (IDP_KEY_CLIENTS of idp.mjs).
    /// </summary>
    public static async Task<OidcProviderServer> StartAsync(
        IReadOnlyList<(string ClientId, string Alg, string PublicJwk)> keyClients)
    {
        string dir = Install();
        int port = NginxInstance.NewPort();
        var rsa = RSA.Create(2048);
        var info = new ProcessStartInfo("node", ["idp.mjs", port.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.Environment["IDP_CLIENT_JWK"] = JsonSerializer.Serialize(Jwk(rsa, includePrivate: false));
        if (keyClients.Count > 0)
        {
            info.Environment["IDP_KEY_CLIENTS"] = "[" + string.Join(",", keyClients.Select(c =>
                $"{{\"client_id\":{JsonSerializer.Serialize(c.ClientId)},\"alg\":{JsonSerializer.Serialize(c.Alg)},\"jwk\":{c.PublicJwk}}}")) + "]";
        }

        Process process = Process.Start(info) ?? throw new InvalidOperationException("node did not start");
        var server = new OidcProviderServer(process, rsa, port);
        process.OutputDataReceived += (_, e) => server.OnOutput(e.Data);
        process.ErrorDataReceived += (_, e) => server.OnOutput(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitReadyAsync().ConfigureAwait(false);
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return server;
    }

    /// <summary>A client-credentials access token of <see cref="AppClientId"/>: a source token the server knows.</summary>
    public async Task<string> GetSourceAccessTokenAsync(string scope = "api:read api:write")
    {
        (int status, string body) = await PostTokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["scope"] = scope,
        }, basic: (AppClientId, AppClientSecret)).ConfigureAwait(false);
        if (status != 200)
        {
            throw new InvalidOperationException($"oidc-provider answered {status}: {body}");
        }

        return JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
    }

    /// <summary>A client_secret_jwt assertion (HS256 with <see cref="SecretJwtClientSecret"/>); audience default the token endpoint.</summary>
    public string ClientSecretJwtAssertion(string? audience = null, TimeSpan? lifetime = null) =>
        Assertion(SecretJwtClientId, new SigningCredentials(
            new SymmetricSecurityKey(Encoding.UTF8.GetBytes(SecretJwtClientSecret)), SecurityAlgorithms.HmacSha256),
            audience, lifetime);

    /// <summary>A private_key_jwt assertion (RS256 with <see cref="PrivateKey"/>); audience default the token endpoint.</summary>
    public string PrivateKeyJwtAssertion(string? audience = null, TimeSpan? lifetime = null) =>
        Assertion(KeyJwtClientId, new SigningCredentials(PrivateKey, SecurityAlgorithms.RsaSha256), audience, lifetime);

    private string Assertion(string clientId, SigningCredentials credentials, string? audience, TimeSpan? lifetime)
    {
        DateTime now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = clientId,
            Audience = audience ?? TokenEndpoint,
            Subject = new ClaimsIdentity([new Claim("sub", clientId), new Claim("jti", Guid.NewGuid().ToString("N"))]),
            IssuedAt = now,
            NotBefore = now,
            Expires = now + (lifetime ?? TimeSpan.FromMinutes(2)),
            SigningCredentials = credentials,
        });
    }

    /// <summary>POSTs a form to the token endpoint (HTTP Basic when <paramref name="basic"/> is given).</summary>
    public async Task<(int Status, string Body)> PostTokenAsync(IReadOnlyDictionary<string, string> form,
        (string User, string Password)? basic = null, string? path = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, BaseUrl + (path ?? "/token")) { Content = new FormUrlEncodedContent(form) };
        if (basic is { } b)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes($"{b.User}:{b.Password}")));
        }

        using HttpResponseMessage response = await _http.SendAsync(request).ConfigureAwait(false);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync().ConfigureAwait(false));
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }

        _process.Dispose();
        _rsa.Dispose();
        _http.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>
    /// Copies package.json and idp.mjs to build/e2e-oidc-provider and runs npm
    /// install there once per test run (one at a time); ignores the test when it cannot.
    /// </summary>
    public static string Install()
    {
        lock (_installLock)
        {
            if (_installed is not null)
            {
                return _installed;
            }

            string source = Path.Combine(TestEnvironment.RepoRoot, "tests", "e2e", "oidc-provider");
            string dir = Path.Combine(TestEnvironment.RepoRoot, "build", "e2e-oidc-provider");
            Directory.CreateDirectory(dir);
            foreach (string file in new[] { "package.json", "idp.mjs" })
            {
                File.Copy(Path.Combine(source, file), Path.Combine(dir, file), overwrite: true);
            }

            if (Run("node", dir, "--version").Code != 0 || Run("npm", dir, "--version").Code != 0)
            {
                Assert.Ignore("node and npm are needed for the oidc-provider end-to-end tests");
            }

            if (!File.Exists(Path.Combine(dir, "node_modules", "oidc-provider", "package.json")))
            {
                (int code, string output) = Run("npm", dir, "install", "--no-audit", "--no-fund", "--loglevel=error");
                if (code != 0)
                {
                    Assert.Ignore("npm install oidc-provider failed: " + output);
                }
            }

            return _installed = dir;
        }
    }

    private static (int Code, string Output) Run(string file, string dir, params string[] args)
    {
        try
        {
            using Process p = Process.Start(new ProcessStartInfo(file, args)
            {
                WorkingDirectory = dir,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            })!;
            Task<string> stdout = p.StandardOutput.ReadToEndAsync();
            Task<string> stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(180_000))
            {
                p.Kill(entireProcessTree: true);
                return (-1, "timed out");
            }

            return (p.ExitCode, stdout.Result + stderr.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
    }

    private void OnOutput(string? line)
    {
        if (line is null)
        {
            return;
        }

        _output.Enqueue(line);
        if (!line.StartsWith("REQUEST ", StringComparison.Ordinal))
        {
            return;
        }

        try
        {
            JsonElement r = JsonDocument.Parse(line["REQUEST ".Length..]).RootElement;
            var parameters = r.GetProperty("params").EnumerateObject()
                .ToDictionary(p => p.Name, p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText(),
                    StringComparer.Ordinal);
            _requests.Enqueue(new OidcProviderRequest(r.GetProperty("method").GetString()!, r.GetProperty("path").GetString()!,
                r.GetProperty("authorization").GetString(), r.GetProperty("clientId").GetString(), parameters,
                r.GetProperty("status").GetInt32(), r.GetProperty("error").GetString()));
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            _output.Enqueue("(unparsed REQUEST line: " + e.Message + ")");
        }
    }

    private async Task WaitReadyAsync()
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"oidc-provider exited with {_process.ExitCode}: {string.Join('\n', _output)}");
            }

            try
            {
                using HttpResponseMessage r = await _http.GetAsync(BaseUrl + "/.well-known/openid-configuration").ConfigureAwait(false);
                if (r.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        throw new TimeoutException("oidc-provider did not answer within 30 s");
    }

    private static Dictionary<string, string> Jwk(RSA rsa, bool includePrivate)
    {
        RSAParameters p = rsa.ExportParameters(includePrivate);
        var jwk = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["kty"] = "RSA",
            ["kid"] = KeyId,
            ["use"] = "sig",
            ["alg"] = "RS256",
            ["n"] = Base64UrlEncoder.Encode(p.Modulus),
            ["e"] = Base64UrlEncoder.Encode(p.Exponent),
        };
        if (includePrivate)
        {
            jwk["d"] = Base64UrlEncoder.Encode(p.D);
            jwk["p"] = Base64UrlEncoder.Encode(p.P);
            jwk["q"] = Base64UrlEncoder.Encode(p.Q);
            jwk["dp"] = Base64UrlEncoder.Encode(p.DP);
            jwk["dq"] = Base64UrlEncoder.Encode(p.DQ);
            jwk["qi"] = Base64UrlEncoder.Encode(p.InverseQ);
        }

        return jwk;
    }
}
