using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;

namespace NginxOAuth.IntegrationTests.Fleet;

/// <summary>How a <see cref="FakeRedis"/> answers a command.</summary>
public enum FakeRedisMode
{
    /// <summary>Bytes that are not RESP (an HTTP answer).</summary>
    Garbage,

    /// <summary>Reads and never answers, never closes.</summary>
    Hang,

    /// <summary>Closes the connection as soon as a command arrives.</summary>
    Close,

    /// <summary>A bulk string that claims 2 GB.</summary>
    HugeBulk,

    /// <summary>A well-formed bulk string that is not an entry of ours.</summary>
    ForeignValue,

    /// <summary>An array reply (RESP, but not what GET answers).</summary>
    Array,
}

/// <summary>
/// A TCP server on a free loopback port that speaks just enough (or
/// nothing) of Redis to misbehave in one <see cref="FakeRedisMode"/>;
/// counts the connections it accepted.
/// </summary>
public sealed class FakeRedis : IDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _clients = [];
    private int _connections;

    public FakeRedis(FakeRedisMode mode)
    {
        Mode = mode;
        Port = FreePorts.Next();
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Start();
        _ = Task.Run(AcceptAsync);
    }

    public int Port { get; }

    public FakeRedisMode Mode { get; }

    public int Connections => Volatile.Read(ref _connections);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception)
            {
                return;
            }

            Interlocked.Increment(ref _connections);
            lock (_clients)
            {
                _clients.Add(client);
            }

            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        NetworkStream s = client.GetStream();
        byte[] buf = new byte[65536];
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                int n = await s.ReadAsync(buf, _stop.Token).ConfigureAwait(false);
                if (n <= 0)
                {
                    return;
                }

                string reply;
                switch (Mode)
                {
                    case FakeRedisMode.Garbage:
                        reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
                        break;
                    case FakeRedisMode.Hang:
                        continue;
                    case FakeRedisMode.Close:
                        client.Close();
                        return;
                    case FakeRedisMode.HugeBulk:
                        reply = "$2000000000\r\nxxxx";
                        break;
                    case FakeRedisMode.ForeignValue:
                        reply = Encoding.ASCII.GetString(buf, 0, n).StartsWith("*2", StringComparison.Ordinal)
                            ? "$48\r\n" + new string('A', 48) + "\r\n"
                            : "+OK\r\n";
                        break;
                    default:
                        reply = "*2\r\n$1\r\na\r\n$1\r\nb\r\n";
                        break;
                }

                byte[] bytes = Encoding.ASCII.GetBytes(reply);
                await s.WriteAsync(bytes, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // the client went away, or we stopped
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_clients)
        {
            foreach (TcpClient c in _clients)
            {
                c.Dispose();
            }
        }

        _stop.Dispose();
    }
}
