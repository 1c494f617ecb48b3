using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO.Compression;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>What a <see cref="FakeHttpServer"/> path answers.</summary>
public sealed record FakeResponse(int Status, string Body, string ContentType = "application/json",
    TimeSpan Delay = default, bool Gzip = false, IReadOnlyDictionary<string, string>? Headers = null,
    bool Truncated = false, byte[]? Raw = null)
{
    public static FakeResponse Json(string body) => new(200, body);

    public static FakeResponse Error(int status, string body = "{\"error\":\"server_error\"}") => new(status, body);

    public static FakeResponse Garbage() => new(200, "<html>this is not JSON {{{", "text/html");

    public static FakeResponse Delayed(TimeSpan delay, string body) => new(200, body, Delay: delay);

    /// <summary>Announces the whole body but closes the connection after half of it.</summary>
    public static FakeResponse Cut(string body) => new(200, body, Truncated: true);

    /// <summary>Exactly these body bytes (e.g. invalid UTF-8), as application/json.</summary>
    public static FakeResponse Bytes(byte[] body) => new(200, "", Raw: body);

    /// <summary>The body gzip-compressed with Content-Encoding: gzip.</summary>
    public static FakeResponse Compressed(string body) => new(200, body, Gzip: true);
}

/// <summary>A request the fake server received.</summary>
public sealed record FakeRequest(string Method, string Path, string Query, IReadOnlyDictionary<string, string> Headers);

/// <summary>
/// A small in-process HTTP server (Kestrel on 127.0.0.1, port chosen by
/// the kernel) standing in for a key server or identity provider: tests set
/// what each path answers and read what it received.
/// </summary>
public sealed class FakeHttpServer : IAsyncDisposable, IDisposable
{
    private WebApplication _app = null!;
    private readonly ConcurrentDictionary<string, FakeResponse> _routes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _counts = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<FakeRequest> _requests = new();

    private FakeHttpServer()
    {
    }

    public int Port { get; private set; }

    /// <summary>http://127.0.0.1:port</summary>
    public string BaseUrl => $"http://127.0.0.1:{Port}";

    public static async Task<FakeHttpServer> StartAsync()
    {
        var server = new FakeHttpServer();
        (server._app, server.Port) = await LoopbackKestrel.StartAsync(server.HandleAsync).ConfigureAwait(false);
        return server;
    }

    /// <summary>Sets what <paramref name="path"/> answers from now on.</summary>
    public void Set(string path, FakeResponse response) => _routes[path] = response;

    /// <summary>How many requests <paramref name="path"/> received.</summary>
    public int Count(string path) => _counts.TryGetValue(path, out int n) ? n : 0;

    public IReadOnlyList<FakeRequest> Requests(string path) => _requests.Where(r => r.Path == path).ToList();

    public void ResetCounts()
    {
        _counts.Clear();
        _requests.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task HandleAsync(HttpContext context)
    {
        string path = context.Request.Path.Value ?? "/";
        _counts.AddOrUpdate(path, 1, (_, n) => n + 1);
        _requests.Enqueue(new FakeRequest(context.Request.Method, path, context.Request.QueryString.Value ?? "",
            context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase)));

        if (!_routes.TryGetValue(path, out FakeResponse? response))
        {
            context.Response.StatusCode = 404;
            return;
        }

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

        byte[] body = response.Raw ?? Encoding.UTF8.GetBytes(response.Body);
        if (response.Gzip)
        {
            using var compressed = new System.IO.MemoryStream();
            using (var gz = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            {
                gz.Write(body);
            }

            body = compressed.ToArray();
            context.Response.Headers.ContentEncoding = "gzip";
        }

        context.Response.StatusCode = response.Status;
        context.Response.ContentType = response.ContentType;
        context.Response.ContentLength = body.Length;
        if (response.Headers is not null)
        {
            foreach (KeyValuePair<string, string> h in response.Headers)
            {
                context.Response.Headers[h.Key] = h.Value;
            }
        }

        try
        {
            if (response.Truncated)
            {
                await context.Response.Body.WriteAsync(body.AsMemory(0, body.Length / 2), CancellationToken.None).ConfigureAwait(false);
                await context.Response.Body.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                await Task.Delay(200).ConfigureAwait(false); // let the headers and half the body leave
                context.Abort();
                return;
            }

            await context.Response.Body.WriteAsync(body, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is System.IO.IOException or OperationCanceledException)
        {
            // nginx gave up (proxy_read_timeout): nothing to do
        }
    }
}
