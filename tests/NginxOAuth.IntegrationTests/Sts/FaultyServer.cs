using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>What a <see cref="FaultyServer"/> does with a connection.</summary>
public enum FaultKind
{
    /// <summary>Waits <see cref="Fault.Delay"/>, then answers 200 with <see cref="Fault.Body"/> (JSON).</summary>
    Delay,

    /// <summary>Reads the request, then resets the connection (RST: linger on with timeout 0, close).</summary>
    Reset,

    /// <summary>Reads the request and never answers (until the server is disposed).</summary>
    Hang,

    /// <summary>Answers bytes that are not HTTP, then closes.</summary>
    Garbage,

    /// <summary>Answers 200 with a JSON body of exactly <see cref="Fault.Size"/> bytes.</summary>
    HugeBody,

    /// <summary>Announces a Content-Length larger than the bytes it sends, then closes (FIN).</summary>
    Truncated,

    /// <summary>A chunked body whose last (zero) chunk never comes: one chunk, then close.</summary>
    ChunkedWithoutLastChunk,

    /// <summary>Answers <see cref="Fault.Status"/> with <see cref="Fault.Body"/> (JSON), then closes.</summary>
    Status,
}

/// <summary>A <see cref="FaultyServer"/> mode; build one with the static methods.</summary>
public sealed record Fault(FaultKind Kind, TimeSpan Delay = default, int Status = 200, string Body = "", long Size = 0)
{
    /// <summary>The body of a normal answer: a token response.</summary>
    public const string TokenJson =
        "{\"access_token\":\"faulty-server-token\",\"token_type\":\"Bearer\",\"expires_in\":3600,"
        + "\"issued_token_type\":\"urn:ietf:params:oauth:token-type:access_token\"}";

    public static Fault Delayed(TimeSpan delay, string json = TokenJson) => new(FaultKind.Delay, delay, 200, json);

    public static Fault Reset() => new(FaultKind.Reset);

    public static Fault Hang() => new(FaultKind.Hang);

    public static Fault Garbage() => new(FaultKind.Garbage);

    public static Fault HugeBody(long bytes) => new(FaultKind.HugeBody, Size: bytes);

    public static Fault Truncated(string json = TokenJson) => new(FaultKind.Truncated, Body: json);

    public static Fault ChunkedWithoutLastChunk(string json = TokenJson) => new(FaultKind.ChunkedWithoutLastChunk, Body: json);

    public static Fault WithStatus(int status, string body = "{\"error\":\"server_error\"}") => new(FaultKind.Status, Status: status, Body: body);

    /// <summary>The non-HTTP bytes <see cref="FaultKind.Garbage"/> sends.</summary>
    public static byte[] GarbageBytes { get; } = [0x00, 0xff, 0x13, 0x37, .. "GARBAGE\r\nnot http at all {{{\r\n\r\n"u8];
}

/// <summary>
/// A raw TCP server on 127.0.0.1 (ephemeral port) for transport faults: each
/// accepted connection gets the current <see cref="Mode"/>, one request per
/// connection (every answer says Connection: close).  Counts accepted
/// connections and keeps the raw requests it read.
/// </summary>
public sealed class FaultyServer : IAsyncDisposable, IDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<string> _requests = new();
    private readonly ConcurrentDictionary<Task, byte> _connections = new();
    private readonly Task _acceptLoop;
    private int _accepted;
    private int _answered;

    private FaultyServer(Fault mode)
    {
        Mode = mode;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start(64);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    /// <summary>http://127.0.0.1:port</summary>
    public string BaseUrl => $"http://127.0.0.1:{Port}";

    /// <summary>What the next connections get; set it per test.</summary>
    public Fault Mode { get; set; }

    /// <summary>Connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _accepted);

    /// <summary>Connections that got an answer (or a reset) so far; a hanging one does not count.</summary>
    public int Answered => Volatile.Read(ref _answered);

    /// <summary>The raw requests read (head and body as text), in arrival order.</summary>
    public IReadOnlyList<string> Requests => _requests.ToList();

    /// <summary>Starts listening on 127.0.0.1 with an ephemeral port.</summary>
    public static FaultyServer Start(Fault? mode = null) => new(mode ?? Fault.WithStatus(200, Fault.TokenJson));

    /// <summary>
    /// A loopback port where nothing listens (a connection is refused): the
    /// kernel hands out a free port, the listener closes at once.
    /// </summary>
    public static int RefusedPort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    public void ResetCounts()
    {
        Interlocked.Exchange(ref _accepted, 0);
        Interlocked.Exchange(ref _answered, 0);
        _requests.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        try
        {
            await _acceptLoop.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        try
        {
            await Task.WhenAll(_connections.Keys).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or IOException or SocketException)
        {
        }

        _stop.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _accepted);
            Fault mode = Mode;
            Task connection = Task.Run(() => ServeAsync(socket, mode));
            _connections[connection] = 0;
            _ = connection.ContinueWith(t => _connections.TryRemove(t, out _), TaskScheduler.Default);
        }
    }

    private async Task ServeAsync(Socket socket, Fault mode)
    {
        CancellationToken stop = _stop.Token;
        try
        {
            using var stream = new NetworkStream(socket, ownsSocket: false);
            _requests.Enqueue(await ReadRequestAsync(stream, stop).ConfigureAwait(false));

            switch (mode.Kind)
            {
                case FaultKind.Hang:
                    await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
                    return;

                case FaultKind.Reset:
                    socket.LingerState = new LingerOption(true, 0);
                    Interlocked.Increment(ref _answered);
                    socket.Close();
                    return;

                case FaultKind.Delay:
                    await Task.Delay(mode.Delay, stop).ConfigureAwait(false);
                    await WriteAsync(stream, Response(200, mode.Body), stop).ConfigureAwait(false);
                    break;

                case FaultKind.Garbage:
                    await WriteAsync(stream, Fault.GarbageBytes, stop).ConfigureAwait(false);
                    break;

                case FaultKind.HugeBody:
                    await WriteHugeAsync(stream, mode.Size, stop).ConfigureAwait(false);
                    break;

                case FaultKind.Truncated:
                {
                    byte[] body = Encoding.UTF8.GetBytes(mode.Body);
                    string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        + $"Content-Length: {body.Length + 100}\r\n\r\n";
                    await WriteAsync(stream, [.. Encoding.ASCII.GetBytes(head), .. body], stop).ConfigureAwait(false);
                    break;
                }

                case FaultKind.ChunkedWithoutLastChunk:
                {
                    byte[] body = Encoding.UTF8.GetBytes(mode.Body);
                    string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        + "Transfer-Encoding: chunked\r\n\r\n" + body.Length.ToString("x", System.Globalization.CultureInfo.InvariantCulture) + "\r\n";
                    await WriteAsync(stream, [.. Encoding.ASCII.GetBytes(head), .. body, .. "\r\n"u8], stop).ConfigureAwait(false);
                    break;
                }

                case FaultKind.Status:
                    await WriteAsync(stream, Response(mode.Status, mode.Body), stop).ConfigureAwait(false);
                    break;
            }

            Interlocked.Increment(ref _answered);
            socket.Shutdown(SocketShutdown.Send);
            // let the peer read everything before the close (a close with unread input would reset)
            await DrainAsync(stream, stop).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            // the client went away, or the server is stopping
        }
        finally
        {
            socket.Dispose();
        }
    }

    private static byte[] Response(int status, string body)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(body);
        string head = $"HTTP/1.1 {status} {ReasonPhrase(status)}\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + $"Content-Length: {bytes.Length}\r\n\r\n";
        return [.. Encoding.ASCII.GetBytes(head), .. bytes];
    }

    private static string ReasonPhrase(int status) => status switch
    {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };

    private static async Task WriteAsync(NetworkStream stream, byte[] bytes, CancellationToken stop)
    {
        await stream.WriteAsync(bytes, stop).ConfigureAwait(false);
        await stream.FlushAsync(stop).ConfigureAwait(false);
    }

    /// <summary>A valid JSON token response of exactly <paramref name="size"/> bytes (padded access_token).</summary>
    private static async Task WriteHugeAsync(NetworkStream stream, long size, CancellationToken stop)
    {
        byte[] prefix = "{\"access_token\":\""u8.ToArray();
        byte[] suffix = "\"}"u8.ToArray();
        long pad = Math.Max(0, size - prefix.Length - suffix.Length);
        long total = prefix.Length + pad + suffix.Length;
        string head = $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {total}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), stop).ConfigureAwait(false);
        await stream.WriteAsync(prefix, stop).ConfigureAwait(false);
        byte[] block = Enumerable.Repeat((byte)'a', 64 * 1024).ToArray();
        while (pad > 0)
        {
            int n = (int)Math.Min(block.Length, pad);
            await stream.WriteAsync(block.AsMemory(0, n), stop).ConfigureAwait(false);
            pad -= n;
        }

        await stream.WriteAsync(suffix, stop).ConfigureAwait(false);
        await stream.FlushAsync(stop).ConfigureAwait(false);
    }

    /// <summary>Reads the head and (by Content-Length) the body of one request.</summary>
    private static async Task<string> ReadRequestAsync(NetworkStream stream, CancellationToken stop)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        var buffer = new List<byte>();
        byte[] chunk = new byte[8192];
        int headEnd = -1;
        long contentLength = 0;
        while (true)
        {
            int n;
            try
            {
                n = await stream.ReadAsync(chunk, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!stop.IsCancellationRequested)
            {
                break; // a client that never finishes its request still gets the fault
            }

            if (n == 0)
            {
                break;
            }

            buffer.AddRange(chunk.AsSpan(0, n));
            if (headEnd < 0)
            {
                headEnd = IndexOf(buffer, "\r\n\r\n"u8);
                if (headEnd >= 0)
                {
                    string head = Encoding.ASCII.GetString(buffer.GetRange(0, headEnd).ToArray());
                    foreach (string line in head.Split("\r\n"))
                    {
                        if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                        {
                            _ = long.TryParse(line["Content-Length:".Length..].Trim(), out contentLength);
                        }
                    }
                }
            }

            if (headEnd >= 0 && buffer.Count >= headEnd + 4 + contentLength)
            {
                break;
            }
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static async Task DrainAsync(NetworkStream stream, CancellationToken stop)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        byte[] sink = new byte[4096];
        try
        {
            while (await stream.ReadAsync(sink, timeout.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static int IndexOf(List<byte> haystack, ReadOnlySpan<byte> needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Count; i++)
        {
            int j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j])
            {
                j++;
            }

            if (j == needle.Length)
            {
                return i;
            }
        }

        return -1;
    }
}
