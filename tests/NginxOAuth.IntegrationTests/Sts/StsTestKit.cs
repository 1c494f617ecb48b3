using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NginxOAuth.IntegrationTests.Harness;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>A form body as sent: every pair in order (names may repeat), decoded.</summary>
public static class Form
{
    public static IReadOnlyList<KeyValuePair<string, string>> Pairs(string body) =>
        body.Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair =>
            {
                int eq = pair.IndexOf('=', StringComparison.Ordinal);
                string name = eq < 0 ? pair : pair[..eq];
                string value = eq < 0 ? "" : pair[(eq + 1)..];
                return new KeyValuePair<string, string>(WebUtility.UrlDecode(name), WebUtility.UrlDecode(value));
            })
            .ToList();

    /// <summary>Every value of <paramref name="name"/>, in order.</summary>
    public static string[] All(string body, string name) =>
        Pairs(body).Where(p => p.Key == name).Select(p => p.Value).ToArray();

    /// <summary>The only value of <paramref name="name"/> (null when absent; throws when repeated).</summary>
    public static string? One(string body, string name) => All(body, name) switch
    {
        [] => null,
        [var v] => v,
        var many => throw new InvalidOperationException($"\"{name}\" is sent {many.Length} times: {body}"),
    };
}

/// <summary>
/// A request <see cref="ScriptedSts"/> received; <paramref name="ClientCertificate"/> is the
/// SHA-256 thumbprint of the TLS client certificate of its connection (null: none).
/// </summary>
public sealed record ScriptedRequest(int Number, string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body,
    string? ClientCertificate = null)
{
    public string? Field(string name) => Form.One(Body, name);

    public string? Header(string name) => Headers.TryGetValue(name, out string? v) ? v : null;

    /// <summary>The password of a password grant, the subject_token of an exchange.</summary>
    public string? Source => Field("grant_type") == "password" ? Field("password") : Field("subject_token");
}

/// <summary>What <see cref="ScriptedSts"/> answers a request.</summary>
public sealed record ScriptedAnswer(int Status, string Body, TimeSpan Delay = default)
{
    /// <summary>A token response with <paramref name="token"/>.</summary>
    public static ScriptedAnswer Token(string token, long expiresIn = 3600, TimeSpan delay = default) =>
        new(200, new JsonObject
        {
            ["access_token"] = token,
            ["token_type"] = "Bearer",
            ["expires_in"] = expiresIn,
            ["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token",
        }.ToJsonString(), delay);
}

/// <summary>
/// A token endpoint whose answers the test scripts (Kestrel on 127.0.0.1,
/// plain HTTP or HTTPS with a test certificate): every request is recorded
/// with its raw body; the default answer, after <see cref="Delay"/>, is a
/// fresh token per call: "tgt.&lt;source&gt;.&lt;call number&gt;", so two
/// calls never give the same target and a target names its source.
/// Counts requests received, in progress and answered. Over HTTPS it can
/// require a TLS client certificate: only the ones it was given are
/// accepted (the handshake fails otherwise), and each request records
/// the certificate of its connection.
/// </summary>
public sealed class ScriptedSts : IAsyncDisposable
{
    private WebApplication _app = null!;
    private readonly ConcurrentQueue<ScriptedRequest> _requests = new();
    private readonly ConcurrentQueue<string> _refusedCertificates = new();
    private HashSet<string> _acceptedCertificates = new(StringComparer.OrdinalIgnoreCase);
    private int _number;
    private int _inProgress;
    private int _maxInProgress;
    private int _answered;

    private ScriptedSts()
    {
    }

    public int Port { get; private set; }

    public bool Https { get; private set; }

    public string BaseUrl => $"{(Https ? "https" : "http")}://127.0.0.1:{Port}";

    /// <summary>The default answer's delay.</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Overrides the default answer (null: the default).</summary>
    public Func<ScriptedRequest, ScriptedAnswer>? Script { get; set; }

    public IReadOnlyList<ScriptedRequest> Requests => _requests.ToList();

    public int Count => _requests.Count;

    public int InProgress => Volatile.Read(ref _inProgress);

    /// <summary>The most requests it held at one time (answers overlapping).</summary>
    public int MaxInProgress => Volatile.Read(ref _maxInProgress);

    public int Answered => Volatile.Read(ref _answered);

    public int Calls(string source) => _requests.Count(r => r.Source == source);

    /// <summary>SHA-256 thumbprints of client certificates presented but not accepted (their handshake failed).</summary>
    public IReadOnlyList<string> RefusedClientCertificates => _refusedCertificates.ToList();

    /// <summary>The SHA-256 thumbprint <see cref="ScriptedRequest.ClientCertificate"/> holds for <paramref name="certificate"/>.</summary>
    public static string Thumbprint(X509Certificate2 certificate) => certificate.GetCertHashString(HashAlgorithmName.SHA256);

    public static string TargetFor(string source, int number) => $"tgt.{source}.{number}";

    /// <summary>
    /// Starts it: plain HTTP, or HTTPS with <paramref name="certificate"/>;
    /// with <paramref name="requireClientCertificates"/> as well, every TLS
    /// handshake must present one of those client certificates (compared by
    /// thumbprint; no chain is built, so self-signed ones do).
    /// </summary>
    public static async Task<ScriptedSts> StartAsync(X509Certificate2? certificate = null,
        IEnumerable<X509Certificate2>? requireClientCertificates = null)
    {
        if (requireClientCertificates is not null && certificate is null)
        {
            throw new ArgumentException("a client certificate needs HTTPS", nameof(requireClientCertificates));
        }

        var sts = new ScriptedSts { Https = certificate is not null };
        sts._acceptedCertificates = new HashSet<string>((requireClientCertificates ?? []).Select(Thumbprint), StringComparer.OrdinalIgnoreCase);
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(o =>
        {
            o.Listen(IPAddress.Loopback, 0, listen =>
            {
                if (certificate is not null && requireClientCertificates is not null)
                {
                    listen.UseHttps(https =>
                    {
                        https.ServerCertificate = certificate;
                        https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
                        https.CheckCertificateRevocation = false;
                        https.ClientCertificateValidation = sts.AcceptClientCertificate;
                    });
                }
                else if (certificate is not null)
                {
                    listen.UseHttps(certificate);
                }
            });
            o.AddServerHeader = false;
        });
        builder.Services.AddLogging(l => l.ClearProviders());
        sts._app = builder.Build();
        sts._app.Run(sts.HandleAsync);
        await sts._app.StartAsync().ConfigureAwait(false);
        string address = sts._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        sts.Port = new Uri(address).Port;
        return sts;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    private bool AcceptClientCertificate(X509Certificate2 certificate, X509Chain? chain, System.Net.Security.SslPolicyErrors errors)
    {
        string thumbprint = Thumbprint(certificate);
        if (_acceptedCertificates.Contains(thumbprint))
        {
            return true;
        }

        _refusedCertificates.Enqueue(thumbprint);
        return false;
    }

    private async Task HandleAsync(HttpContext context)
    {
        int now = Interlocked.Increment(ref _inProgress);
        int max;
        while (now > (max = Volatile.Read(ref _maxInProgress)) && Interlocked.CompareExchange(ref _maxInProgress, now, max) != max)
        {
        }

        try
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            string body = await reader.ReadToEndAsync().ConfigureAwait(false);
            var request = new ScriptedRequest(Interlocked.Increment(ref _number), context.Request.Method,
                context.Request.Path.Value ?? "",
                context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase), body,
                context.Connection.ClientCertificate is { } presented ? Thumbprint(presented) : null);
            _requests.Enqueue(request);

            ScriptedAnswer answer = Script?.Invoke(request)
                ?? ScriptedAnswer.Token(TargetFor(request.Source ?? "none", request.Number), delay: Delay);
            if (answer.Delay > TimeSpan.Zero)
            {
                await Task.Delay(answer.Delay, context.RequestAborted).ConfigureAwait(false);
            }

            byte[] bytes = Encoding.UTF8.GetBytes(answer.Body);
            context.Response.StatusCode = answer.Status;
            context.Response.ContentType = "application/json";
            context.Response.ContentLength = bytes.Length;
            await context.Response.Body.WriteAsync(bytes, CancellationToken.None).ConfigureAwait(false);
            Interlocked.Increment(ref _answered);
        }
        catch (OperationCanceledException)
        {
            // nginx gave up (its timeout)
        }
        finally
        {
            Interlocked.Decrement(ref _inProgress);
        }
    }
}

/// <summary>What <see cref="RecordingBackend"/> saw of one request (its answer's body).</summary>
public sealed record BackendView(string Method, string Path, string Query, IReadOnlyDictionary<string, string[]> Headers,
    long BodyLength = 0, string BodySha256 = "")
{
    public static BackendView Parse(string json) => JsonSerializer.Deserialize<BackendView>(json)
        ?? throw new InvalidOperationException("not a backend view: " + json);

    public string? Header(string name) =>
        Headers.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value is { } v
            ? string.Join(", ", v) : null;

    public bool Has(string name) => Headers.Keys.Any(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// The upstream behind the exchanging locations: answers every request
/// 200 with a JSON view of it (method, path, query, every header), so the
/// test reads exactly what the backend received; counts requests.
/// </summary>
public sealed class RecordingBackend : IAsyncDisposable
{
    private WebApplication _app = null!;
    private int _count;

    public int Port { get; private set; }

    public string BaseUrl => $"http://127.0.0.1:{Port}";

    public int Count => Volatile.Read(ref _count);

    public static async Task<RecordingBackend> StartAsync()
    {
        var backend = new RecordingBackend();
        (backend._app, backend.Port) = await LoopbackKestrel.StartAsync(backend.HandleAsync).ConfigureAwait(false);
        return backend;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _count);
        using var received = new MemoryStream();
        await context.Request.Body.CopyToAsync(received).ConfigureAwait(false);
        var view = new BackendView(context.Request.Method, context.Request.Path.Value ?? "", context.Request.QueryString.Value ?? "",
            context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.Select(v => v ?? "").ToArray(), StringComparer.OrdinalIgnoreCase),
            received.Length, Convert.ToHexStringLower(SHA256.HashData(received.ToArray())));
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(view);
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body).ConfigureAwait(false);
    }
}

/// <summary>A test CA and a server certificate for 127.0.0.1 it issued (made in C#).</summary>
public sealed class TestCa
{
    private TestCa(X509Certificate2 ca, X509Certificate2 server)
    {
        Ca = ca;
        Server = server;
    }

    public X509Certificate2 Ca { get; }

    /// <summary>CN=127.0.0.1, SAN IP 127.0.0.1, serverAuth, with its private key.</summary>
    public X509Certificate2 Server { get; }

    public string CaPem => Ca.ExportCertificatePem() + "\n";

    public static TestCa Create()
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using RSA caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=NginxOAuth STS test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        X509Certificate2 ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddYears(1));

        using RSA serverKey = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        using X509Certificate2 issued = request.Create(ca, now.AddDays(-1), now.AddMonths(6), serial);
        // a certificate with an exportable key: Kestrel's TLS needs the key with the certificate
        X509Certificate2 server = X509CertificateLoader.LoadPkcs12(issued.CopyWithPrivateKey(serverKey).Export(X509ContentType.Pfx), null);
        return new TestCa(ca, server);
    }
}

/// <summary>
/// A self-signed TLS client certificate (ECDSA P-256, clientAuth) written
/// as PEM files for nginx's cert= and key=; <see cref="Certificate"/> is
/// its public part, for the STS to accept.
/// </summary>
public sealed record TestClientCertificate(X509Certificate2 Certificate, string CertFile, string KeyFile)
{
    /// <summary>What <see cref="ScriptedRequest.ClientCertificate"/> holds for it.</summary>
    public string Thumbprint => ScriptedSts.Thumbprint(Certificate);

    /// <summary>CN=<paramref name="name"/>, files sts/<paramref name="name"/>.pem and .key in the instance directory.</summary>
    public static TestClientCertificate Write(NginxInstance nginx, string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 withKey = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(7));
        X509Certificate2 certificate = X509CertificateLoader.LoadCertificate(withKey.RawData);
        return new TestClientCertificate(certificate,
            nginx.WriteFile($"sts/{name}.pem", withKey.ExportCertificatePem() + "\n"),
            nginx.WriteFile($"sts/{name}.key", key.ExportPkcs8PrivateKeyPem() + "\n"));
    }
}

/// <summary>The "sts:" lines of the error log, and checks that a secret never reached it.</summary>
public static class StsLog
{
    private static readonly Regex Level = new(@"\[(debug|info|notice|warn|error|crit|alert|emerg)\]", RegexOptions.CultureInvariant);

    /// <summary>The module's own lines ("sts: ...") written after <paramref name="mark"/>.</summary>
    public static IReadOnlyList<string> Lines(NginxInstance nginx, long mark) =>
        nginx.ErrorLogSince(mark).Split('\n').Where(l => l.Contains(" sts: ", StringComparison.Ordinal)).ToList();

    /// <summary>The level of a log line ("error", "info" ...).</summary>
    public static string LevelOf(string line) => Level.Match(line) is { Success: true } m ? m.Groups[1].Value : "";

    /// <summary>Waits for the module's lines after <paramref name="mark"/> until one matches <paramref name="pattern"/>; returns all of them.</summary>
    public static async Task<IReadOnlyList<string>> WaitAsync(NginxInstance nginx, long mark, string pattern)
    {
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        return await Poll.UntilAsync(() => Lines(nginx, mark), lines => lines.Any(regex.IsMatch),
            $"an sts log line matching /{pattern}/", TimeSpan.FromSeconds(10)).ConfigureAwait(false);
    }
}
