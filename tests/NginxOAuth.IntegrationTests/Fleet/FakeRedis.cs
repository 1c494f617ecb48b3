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

    /// <summary>
    /// A tiny Redis: SET stores, GET answers the value or a null (or
    /// <see cref="FakeRedis.UnknownKeyValue"/>), anything else +OK; the
    /// misbehaviour is asked for (<see cref="FakeRedis.DropConnections"/>,
    /// <see cref="FakeRedis.HoldReplies"/>).
    /// </summary>
    Store,
}

/// <summary>A command the fake received: on its n-th accepted connection (1, 2 ...).</summary>
public sealed record FakeRedisCommand(int Connection, string Name, string Key);

/// <summary>
/// A TCP server on a free loopback port that speaks just enough (or
/// nothing) of Redis to misbehave in one <see cref="FakeRedisMode"/>;
/// counts the connections it accepted and records every whole command
/// (RESP arrays of bulk strings) with the connection it came on.
/// </summary>
public sealed class FakeRedis : IDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _clients = [];
    private readonly List<FakeRedisCommand> _commands = [];
    private readonly Dictionary<string, byte[]> _store = new(StringComparer.Ordinal);
    private readonly HashSet<int> _drop = [];
    private string _dropWith = "";
    private TaskCompletionSource _hold = CompletedGate();
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

    /// <summary>Store mode: what GET answers for a key it does not hold (null: a null bulk).</summary>
    public string? UnknownKeyValue { get; set; }

    /// <summary>Every whole command received so far.</summary>
    public IReadOnlyList<FakeRedisCommand> Commands
    {
        get
        {
            lock (_commands)
            {
                return [.. _commands];
            }
        }
    }

    /// <summary>
    /// Store mode: every connection accepted so far closes when its next
    /// command arrives, after writing <paramref name="partialReply"/> (as
    /// if Redis had closed it while idle and the client had not seen it yet).
    /// </summary>
    public void DropConnections(string partialReply = "")
    {
        lock (_drop)
        {
            _dropWith = partialReply;
            for (int i = 1; i <= Connections; i++)
            {
                _drop.Add(i);
            }
        }
    }

    /// <summary>Store mode: replies wait until <see cref="ReleaseReplies"/>.</summary>
    public void HoldReplies() => Volatile.Write(ref _hold, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public void ReleaseReplies() => Volatile.Read(ref _hold).TrySetResult();

    private static TaskCompletionSource CompletedGate()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }

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

            int number = Interlocked.Increment(ref _connections);
            lock (_clients)
            {
                _clients.Add(client);
            }

            _ = Task.Run(() => ServeAsync(client, number));
        }
    }

    private async Task ServeAsync(TcpClient client, int number)
    {
        NetworkStream s = client.GetStream();
        byte[] buf = new byte[65536];
        var pending = new List<byte>();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                int n = await s.ReadAsync(buf, _stop.Token).ConfigureAwait(false);
                if (n <= 0)
                {
                    return;
                }

                pending.AddRange(buf.AsSpan(0, n));

                while (TryParse(pending, out List<byte[]> args))
                {
                    string name = args.Count > 0 ? Encoding.ASCII.GetString(args[0]).ToUpperInvariant() : "";
                    string key = args.Count > 1 ? Encoding.Latin1.GetString(args[1]) : "";
                    lock (_commands)
                    {
                        _commands.Add(new FakeRedisCommand(number, name, key));
                    }

                    (string reply, bool close) = await ReplyAsync(name, key, args, number).ConfigureAwait(false);
                    if (reply.Length > 0)
                    {
                        await s.WriteAsync(Encoding.Latin1.GetBytes(reply), _stop.Token).ConfigureAwait(false);
                    }

                    if (close)
                    {
                        client.Close();
                        return;
                    }
                }
            }
        }
        catch (Exception)
        {
            // the client went away, or we stopped
        }
    }

    /// <summary>The reply to one command ("": none, hang) and whether the connection closes after it.</summary>
    private async Task<(string Reply, bool Close)> ReplyAsync(string name, string key, List<byte[]> args, int number)
    {
        switch (Mode)
        {
            case FakeRedisMode.Garbage:
                return ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", false);
            case FakeRedisMode.Hang:
                return ("", false);
            case FakeRedisMode.Close:
                return ("", true);
            case FakeRedisMode.HugeBulk:
                return ("$2000000000\r\nxxxx", false);
            case FakeRedisMode.ForeignValue:
                return (name == "GET" ? "$48\r\n" + new string('A', 48) + "\r\n" : "+OK\r\n", false);
            case FakeRedisMode.Array:
                return ("*2\r\n$1\r\na\r\n$1\r\nb\r\n", false);
        }

        string? drop = null;
        lock (_drop)
        {
            if (_drop.Remove(number))
            {
                drop = _dropWith;
            }
        }

        if (drop is not null)
        {
            return (drop, true);
        }

        await Volatile.Read(ref _hold).Task.WaitAsync(_stop.Token).ConfigureAwait(false);

        byte[]? value = null;
        lock (_store)
        {
            if (name == "SET" && args.Count > 2)
            {
                _store[key] = args[2];
                return ("+OK\r\n", false);
            }

            if (name == "GET")
            {
                value = _store.GetValueOrDefault(key);
            }
        }

        if (name != "GET")
        {
            return ("+OK\r\n", false);
        }

        if (value is null)
        {
            return (UnknownKeyValue is null ? "$-1\r\n" : $"${UnknownKeyValue.Length}\r\n{UnknownKeyValue}\r\n", false);
        }

        return ($"${value.Length}\r\n{Encoding.Latin1.GetString(value)}\r\n", false);
    }

    /// <summary>One whole command (an array of bulk strings) off the front of <paramref name="b"/>.</summary>
    private static bool TryParse(List<byte> b, out List<byte[]> args)
    {
        args = [];
        int p = 0;
        if (!Line(b, ref p, '*', out int count))
        {
            return false;
        }

        for (int i = 0; i < count; i++)
        {
            if (!Line(b, ref p, '$', out int len) || b.Count < p + len + 2)
            {
                return false;
            }

            args.Add(b.GetRange(p, len).ToArray());
            p += len + 2;
        }

        b.RemoveRange(0, p);
        return true;
    }

    private static bool Line(List<byte> b, ref int p, char type, out int value)
    {
        value = 0;
        int eol = p;
        while (eol + 1 < b.Count && !(b[eol] == '\r' && b[eol + 1] == '\n'))
        {
            eol++;
        }

        if (eol + 1 >= b.Count)
        {
            return false;
        }

        if (b[p] != type)
        {
            throw new System.IO.InvalidDataException("not a command of arrays of bulk strings");
        }

        value = int.Parse(Encoding.ASCII.GetString(b.GetRange(p + 1, eol - p - 1).ToArray()), System.Globalization.CultureInfo.InvariantCulture);
        p = eol + 2;
        return true;
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

        Volatile.Read(ref _hold).TrySetResult();
        _stop.Dispose();
    }
}
