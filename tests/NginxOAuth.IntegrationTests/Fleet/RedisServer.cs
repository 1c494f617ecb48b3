using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Fleet;

/// <summary>
/// A real redis-server (the Debian package; <c>./build.sh test</c> installs
/// it) on a free loopback port with its own temporary directory and no
/// persistence, killed and restarted on the same port by the tests. Its
/// contents are read with <see cref="RespClient"/>, a raw RESP client.
/// </summary>
public sealed class RedisServer : IDisposable
{
    private const string Binary = "/usr/bin/redis-server";

    private readonly string _dir;
    private readonly string? _password;
    private Process? _process;

    private RedisServer(string? password)
    {
        if (!File.Exists(Binary))
        {
            Assert.Fail($"{Binary} is missing: apt-get install redis-server (./build.sh test installs it)");
        }

        Port = FreePorts.Next();
        _password = password;
        _dir = Path.Combine(Path.GetTempPath(), "nox-redis-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    public int Port { get; }

    public bool Running => _process is { HasExited: false };

    public static RedisServer Start(string? password = null)
    {
        var redis = new RedisServer(password);
        redis.Restart();
        return redis;
    }

    /// <summary>Starts it (again, empty) on its port and waits until it answers PING.</summary>
    public void Restart()
    {
        if (Running)
        {
            throw new InvalidOperationException("redis-server is running");
        }

        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _dir,
        };
        foreach (string a in new[]
                 {
                     "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", _dir,
                     "--daemonize", "no", "--loglevel", "warning", "--databases", "4",
                 })
        {
            psi.ArgumentList.Add(a);
        }

        if (_password is not null)
        {
            psi.ArgumentList.Add("--requirepass");
            psi.ArgumentList.Add(_password);
        }

        _process = Process.Start(psi) ?? throw new InvalidOperationException("redis-server did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var c = Connect();
                if (Equals(c.Command("PING"), "PONG"))
                {
                    return;
                }
            }
            catch (Exception e) when (e is SocketException or IOException)
            {
            }

            if (sw.Elapsed > TimeSpan.FromSeconds(30) || _process.HasExited)
            {
                Assert.Fail($"redis-server on port {Port} did not answer PING");
            }

            Thread.Sleep(100);
        }
    }

    /// <summary>SIGKILL: no goodbye to the connections nginx keeps.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit();
        }
    }

    public RespClient Connect()
    {
        var c = new RespClient(Port);
        if (_password is not null)
        {
            c.Command("AUTH", _password);
        }

        return c;
    }

    /// <summary>Every key of database <paramref name="db"/> (KEYS *).</summary>
    public List<string> Keys(int db = 0)
    {
        using RespClient c = Connect();
        c.Command("SELECT", db.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var keys = new List<string>();
        if (c.Command("KEYS", "*") is object?[] items)
        {
            foreach (object? k in items)
            {
                keys.Add(Encoding.Latin1.GetString((byte[])k!));
            }
        }

        return keys;
    }

    /// <summary>The raw value of a key, or null.</summary>
    public byte[]? Get(string key, int db = 0)
    {
        using RespClient c = Connect();
        c.Command("SELECT", db.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return c.Command("GET", key) as byte[];
    }

    /// <summary>The remaining lifetime of a key in ms (PTTL: -1 none, -2 no key).</summary>
    public long Pttl(string key, int db = 0)
    {
        using RespClient c = Connect();
        c.Command("SELECT", db.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return (long)c.Command("PTTL", key)!;
    }

    public void FlushAll()
    {
        using RespClient c = Connect();
        c.Command("FLUSHALL");
    }

    public void Dispose()
    {
        Kill();
        _process?.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// A minimal RESP2 client for the tests: commands as arrays of bulk
/// strings; replies as string (simple), long (integer), byte[] (bulk),
/// null, object?[] (array); an error reply throws.
/// </summary>
public sealed class RespClient : IDisposable
{
    private readonly TcpClient _tcp;
    private readonly BufferedStream _stream;

    public RespClient(int port)
    {
        _tcp = new TcpClient();
        _tcp.Connect("127.0.0.1", port);
        _tcp.ReceiveTimeout = 10000;
        _tcp.SendTimeout = 10000;
        _stream = new BufferedStream(_tcp.GetStream());
    }

    public object? Command(params string[] args)
    {
        var sb = new MemoryStream();
        void W(string s)
        {
            byte[] b = Encoding.UTF8.GetBytes(s);
            sb.Write(b);
        }

        W($"*{args.Length}\r\n");
        foreach (string a in args)
        {
            byte[] b = Encoding.UTF8.GetBytes(a);
            W($"${b.Length}\r\n");
            sb.Write(b);
            W("\r\n");
        }

        _stream.Write(sb.ToArray());
        _stream.Flush();
        return Read();
    }

    private object? Read()
    {
        int type = _stream.ReadByte();
        string line = ReadLine();
        switch (type)
        {
            case '+':
                return line;
            case '-':
                throw new InvalidOperationException("redis: " + line);
            case ':':
                return long.Parse(line, System.Globalization.CultureInfo.InvariantCulture);
            case '$':
                int len = int.Parse(line, System.Globalization.CultureInfo.InvariantCulture);
                if (len < 0)
                {
                    return null;
                }

                byte[] data = new byte[len + 2];
                _stream.ReadExactly(data);
                return data.AsSpan(0, len).ToArray();
            case '*':
                int n = int.Parse(line, System.Globalization.CultureInfo.InvariantCulture);
                if (n < 0)
                {
                    return null;
                }

                var items = new object?[n];
                for (int i = 0; i < n; i++)
                {
                    items[i] = Read();
                }

                return items;
            default:
                throw new IOException($"not RESP: type byte {type}");
        }
    }

    private string ReadLine()
    {
        var sb = new StringBuilder();
        while (true)
        {
            int b = _stream.ReadByte();
            if (b < 0)
            {
                throw new IOException("redis closed the connection");
            }

            if (b == '\r')
            {
                _stream.ReadByte();
                return sb.ToString();
            }

            sb.Append((char)b);
        }
    }

    public void Dispose()
    {
        _stream.Dispose();
        _tcp.Dispose();
    }
}
