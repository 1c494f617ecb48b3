using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using NginxOAuth.IntegrationTests.Harness;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>A request the fake IdP received, with its form body.</summary>
public sealed record IdpRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body)
{
    /// <summary>The decoded form fields of the body.</summary>
    public IReadOnlyDictionary<string, string> Form => FakeIdp.ParseForm(Body);

    public string? Header(string name) => Headers.TryGetValue(name, out string? v) ? v : null;
}

/// <summary>
/// An RFC 7662 introspection endpoint (/introspect), an RFC 8693 token
/// endpoint (/token) and a backend (/backend, echoes the Authorization it
/// received, and X-User-Sub; also every /api/... path) on Kestrel at 127.0.0.1;
/// /oauth2/introspect and /oauth2/token (the seed configurations) are the
/// same. What each answers depends on the token:
/// <list type="bullet">
/// <item>introspection: "inactive*" active false; "garbage*" HTML; "noactive*" no active member;
/// "stractive*" "active":"true"; "huge*" a 70 KiB body; "empty*" an empty 200; "err*" HTTP 500;
/// "slow*" 3 s delay; "exp&lt;N&gt;-*" exp = now + N; "nested*" also an "ext" object; anything else active with sub "user-&lt;token&gt;".</item>
/// <item>exchange: "noat*" no access_token; "badgrant*" 400 invalid_grant; "notype*" no type;
/// "ttl&lt;N&gt;-*" expires_in N; else "x.&lt;token&gt;.&lt;audience&gt;.&lt;scope&gt;", expires_in 3600.</item>
/// </list>
/// Tests count calls per path and per token.
/// </summary>
public sealed class FakeIdp : IAsyncDisposable
{
    private WebApplication _app = null!;
    private readonly ConcurrentQueue<IdpRequest> _requests = new();
    private readonly ConcurrentDictionary<string, bool> _revoked = new();

    private FakeIdp()
    {
    }

    public int Port { get; private set; }

    public string BaseUrl => $"http://127.0.0.1:{Port}";

    public static async Task<FakeIdp> StartAsync()
    {
        var idp = new FakeIdp();
        (idp._app, idp.Port) = await LoopbackKestrel.StartAsync(idp.HandleAsync).ConfigureAwait(false);
        return idp;
    }

    public IReadOnlyList<IdpRequest> Requests(string path) => _requests.Where(r => r.Path == path).ToList();

    /// <summary>Introspection answers "active": false for this token from now on (any token, a JWT too).</summary>
    public void Revoke(string token) => _revoked[token] = true;

    /// <summary>Introspection or exchange calls for <paramref name="token"/>.</summary>
    public int Calls(string path, string token) =>
        _requests.Count(r => r.Path == path && FieldOf(r, path) == token);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    public static IReadOnlyDictionary<string, string> ParseForm(string body)
    {
        var form = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string pair in body.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=', StringComparison.Ordinal);
            string name = eq < 0 ? pair : pair[..eq];
            string value = eq < 0 ? "" : pair[(eq + 1)..];
            form[WebUtility.UrlDecode(name)] = WebUtility.UrlDecode(value);
        }

        return form;
    }

    private static string? FieldOf(IdpRequest r, string path) =>
        r.Form.TryGetValue(path == "/token" ? "subject_token" : "token", out string? t) ? t : null;

    private async Task HandleAsync(HttpContext context)
    {
        string path = context.Request.Path.Value ?? "/";
        if (path.StartsWith("/oauth2/", StringComparison.Ordinal))
        {
            path = path["/oauth2".Length..]; // the seed configurations' IdP paths
        }

        string body;
        using (var reader = new StreamReader(context.Request.Body, Encoding.UTF8))
        {
            body = await reader.ReadToEndAsync().ConfigureAwait(false);
        }

        var request = new IdpRequest(context.Request.Method, path,
            context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
            body);
        _requests.Enqueue(request);

        FakeResponse response = path switch
        {
            "/introspect" when _revoked.ContainsKey(request.Form.TryGetValue("token", out string? r) ? r : "") =>
                FakeResponse.Json("{\"active\":false}"),
            "/introspect" => Introspect(request.Form.TryGetValue("token", out string? t) ? t : ""),
            "/token" => Exchange(request.Form),
            _ when path == "/backend" || path.StartsWith("/api/", StringComparison.Ordinal) => FakeResponse.Json(
                "authorization=" + (request.Header("Authorization") ?? "") + ";sub=" + (request.Header("X-User-Sub") ?? "")),
            _ => new FakeResponse(404, ""),
        };

        if (response.Delay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(response.Delay, context.RequestAborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        byte[] bytes = Encoding.UTF8.GetBytes(response.Body);
        context.Response.StatusCode = response.Status;
        context.Response.ContentType = response.ContentType;
        context.Response.ContentLength = bytes.Length;
        try
        {
            await context.Response.Body.WriteAsync(bytes, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // nginx gave up
        }
    }

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private static FakeResponse Introspect(string token)
    {
        if (token.StartsWith("inactive", StringComparison.Ordinal))
        {
            return FakeResponse.Json("{\"active\":false}");
        }

        if (token.StartsWith("garbage", StringComparison.Ordinal))
        {
            return FakeResponse.Garbage();
        }

        if (token.StartsWith("noactive", StringComparison.Ordinal))
        {
            return FakeResponse.Json("{\"sub\":\"x\"}");
        }

        if (token.StartsWith("stractive", StringComparison.Ordinal))
        {
            return FakeResponse.Json("{\"active\":\"true\"}");
        }

        if (token.StartsWith("huge", StringComparison.Ordinal))
        {
            return FakeResponse.Json("{\"active\":true,\"pad\":\"" + new string('x', 70 * 1024) + "\"}");
        }

        if (token.StartsWith("empty", StringComparison.Ordinal))
        {
            return FakeResponse.Json("");
        }

        if (token.StartsWith("err", StringComparison.Ordinal))
        {
            return FakeResponse.Error(500);
        }

        long exp = Now + 3600;
        if (token.StartsWith("exp", StringComparison.Ordinal) && token.IndexOf('-', StringComparison.Ordinal) is > 3 and int dash
            && long.TryParse(token[3..dash], out long seconds))
        {
            exp = Now + seconds;
        }

        string json = "{\"active\":true,\"sub\":\"user-" + token + "\",\"scope\":\"read write\",\"client_id\":\"app-1\","
            + "\"exp\":" + exp + ",\"role\":\"" + (token.Contains("admin", StringComparison.Ordinal) ? "admin" : "user")
            + "\",\"groups\":[\"a\",\"b\"]"
            + (token.StartsWith("nested", StringComparison.Ordinal) ? ",\"ext\":{\"tenant\":\"t1\",\"a.b\":\"dot\"}" : "")
            + "}";
        return token.StartsWith("slow", StringComparison.Ordinal)
            ? FakeResponse.Delayed(TimeSpan.FromSeconds(3), json)
            : FakeResponse.Json(json);
    }

    private static FakeResponse Exchange(IReadOnlyDictionary<string, string> form)
    {
        string token = form.TryGetValue("subject_token", out string? t) ? t : "";
        string audience = form.TryGetValue("audience", out string? a) ? a : "";
        string scope = form.TryGetValue("scope", out string? s) ? s : "";

        if (token.StartsWith("noat", StringComparison.Ordinal))
        {
            return FakeResponse.Json("{\"token_type\":\"Bearer\"}");
        }

        if (token.StartsWith("badgrant", StringComparison.Ordinal))
        {
            return FakeResponse.Error(400, "{\"error\":\"invalid_grant\"}");
        }

        long ttl = 3600;
        if (token.StartsWith("ttl", StringComparison.Ordinal) && token.IndexOf('-', StringComparison.Ordinal) is > 3 and int dash
            && long.TryParse(token[3..dash], out long seconds))
        {
            ttl = seconds;
        }

        string issued = "x." + token + "." + audience + "." + scope.Replace(' ', '_');
        string type = token.StartsWith("notype", StringComparison.Ordinal)
            ? ""
            : ",\"issued_token_type\":\"urn:ietf:params:oauth:token-type:access_token\",\"token_type\":\"Bearer\"";
        return FakeResponse.Json("{\"access_token\":\"" + issued + "\"" + type + ",\"expires_in\":" + ttl + "}");
    }
}
