using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>
/// One nginx (master + 2 workers) with the module loaded, in a fresh temp
/// directory: the test supplies the servers of the http block, the instance
/// writes the whole nginx.conf around them, picks loopback ports, starts
/// nginx as a child, waits until it answers, and on dispose stops it and
/// fails when the error log holds [alert], [crit] or [emerg] lines that the
/// test did not explicitly allow.
/// </summary>
public sealed partial class NginxInstance : IDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(15);

    private readonly INginxHost _host;
    private readonly List<Regex> _allowed = [];
    private HttpClient _client;
    private string _http = "";
    private bool _started;
    private bool _disposed;

    public NginxInstance(string? name = null)
    {
        string dir = System.IO.Directory.CreateTempSubdirectory($"nginx-oauth-{name ?? "test"}-").FullName;
        // workers run as an unprivileged user when the tests run as root:
        // they must be able to reach the temp paths below this directory
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        System.IO.Directory.CreateDirectory(Path.Combine(dir, "tmp"));
        File.SetUnixFileMode(Path.Combine(dir, "tmp"), (UnixFileMode)0b111_101_101);

        _host = TestEnvironment.HostKind == NginxHostKind.Container
            ? new ContainerHost(dir)
            : new LocalProcessHost(dir);
        Port = FreePorts.Next();
        EchoPort = FreePorts.Next();
        _client = NewClient();
    }

    /// <summary>The main port, for the test's first server block.</summary>
    public int Port { get; }

    /// <summary>The built-in echo server: answers 200 with the X-Echo request header as the body.</summary>
    public int EchoPort { get; }

    public INginxHost Host => _host;

    public string Directory => _host.Directory;

    public string ConfigPath => _host.ConfigPath;

    /// <summary>The whole nginx.conf as last written.</summary>
    public string ConfigText { get; private set; } = "";

    public HttpClient Client => _client;

    /// <summary>
    /// A location body that answers 200 with <paramref name="template"/>
    /// expanded: variables in it are evaluated in the content phase, after
    /// auth_jwt ran (a "return 200 ..." would answer in the rewrite phase,
    /// before any access check).
    /// </summary>
    public string Echo(string template) =>
        $"proxy_set_header X-Echo \"{template}\"; proxy_pass http://127.0.0.1:{EchoPort}/echo;";

    /// <summary>Writes a file into the instance directory and returns its absolute path.</summary>
    public string WriteFile(string name, string content)
    {
        string path = Path.Combine(Directory, name);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>Another loopback port, for a second server block.</summary>
    public static int NewPort() => FreePorts.Next();

    /// <summary>Log lines matching <paramref name="pattern"/> do not fail the instance (deliberate alerts/emergs).</summary>
    public void AllowLogLines(string pattern) => _allowed.Add(new Regex(pattern, RegexOptions.CultureInvariant));

    /// <summary>Extra main-context directives (e.g. "env NAME=value;"), written by the next <see cref="Configure"/>.</summary>
    public string MainContext { get; set; } = "";

    /// <summary>worker_processes of the next <see cref="Configure"/> (default 2); start, reload and respawn wait for this many.</summary>
    public int WorkerProcesses { get; set; } = 2;

    /// <summary>Writes nginx.conf with <paramref name="http"/> as the test's part of the http block.</summary>
    public void Configure(string http)
    {
        _http = http;
        ConfigText = BuildConfig(http);
        File.WriteAllText(ConfigPath, ConfigText);
    }

    /// <summary>Writes the configuration, starts nginx and waits until both workers answer.</summary>
    public void Start(string http)
    {
        Configure(http);
        Start();
    }

    public void Start()
    {
        if (_started)
        {
            throw new InvalidOperationException("already started");
        }

        _started = true;
        _host.Start();
        WaitUntil(() => _host.WorkerPids().Count == WorkerProcesses && Probe(), "nginx to start", ReadyTimeout);
    }

    /// <summary>Runs nginx -t on the current nginx.conf.</summary>
    public ConfigTestResult TestConfig() => _host.TestConfig();

    /// <summary>The 1-based line of nginx.conf holding <paramref name="fragment"/> (must be unique).</summary>
    public int LineOf(string fragment)
    {
        string[] lines = ConfigText.Split('\n');
        int[] hits = Enumerable.Range(0, lines.Length).Where(i => lines[i].Contains(fragment, StringComparison.Ordinal)).ToArray();
        if (hits.Length != 1)
        {
            throw new InvalidOperationException($"\"{fragment}\" is on {hits.Length} lines of nginx.conf, expected 1");
        }

        return hits[0] + 1;
    }

    /// <summary>
    /// Reloads (SIGHUP, as nginx -s reload) with <paramref name="http"/> when
    /// given, and waits until a new generation of workers serves.
    /// </summary>
    public void Reload(string? http = null, bool viaCommand = false)
    {
        if (http is not null)
        {
            Configure(http);
        }

        IReadOnlyList<int> old = _host.WorkerPids();
        if (viaCommand)
        {
            ConfigTestResult result = _host.SendCommand("reload");
            Assert.That(result.ExitCode, Is.EqualTo(0), "nginx -s reload: " + result.Output);
        }
        else
        {
            _host.SignalReload();
        }

        WaitUntil(() =>
        {
            IReadOnlyList<int> now = _host.WorkerPids();
            return now.Count == WorkerProcesses && !now.Intersect(old).Any();
        }, "the reload to start new workers", ReadyTimeout);
        RenewClient();
        WaitUntil(Probe, "the new workers to answer", ReadyTimeout);
    }

    /// <summary>Waits until the workers of earlier generations have exited.</summary>
    public void WaitForOldWorkersToExit() =>
        WaitUntil(() => _host.ShuttingDownWorkerPids().Count == 0, "old workers to exit", ReadyTimeout);

    /// <summary>
    /// Reloads with a configuration the master must refuse: waits for the
    /// [emerg] line and returns it; the old workers keep running.
    /// </summary>
    public string ReloadRejected(string http)
    {
        long mark = LogMark();
        IReadOnlyList<int> old = _host.WorkerPids();
        Configure(http);
        _host.SignalReload();

        string emerg = "";
        WaitUntil(() =>
        {
            emerg = ErrorLogSince(mark).Split('\n').FirstOrDefault(l => l.Contains("[emerg]", StringComparison.Ordinal)) ?? "";
            return emerg.Length > 0;
        }, "the master to reject the new configuration", ReadyTimeout);

        Assert.That(_host.WorkerPids(), Is.EquivalentTo(old), "a rejected reload must keep the old workers");
        return emerg;
    }

    /// <summary>Kills one worker with SIGKILL and waits until the master has respawned it.</summary>
    public int KillWorker()
    {
        IReadOnlyList<int> before = _host.WorkerPids();
        int victim = before[0];
        _host.KillWorker(victim);
        WaitUntil(() =>
        {
            IReadOnlyList<int> now = _host.WorkerPids();
            return now.Count == WorkerProcesses && !now.Contains(victim);
        }, "the master to respawn the killed worker", ReadyTimeout);
        RenewClient();
        WaitUntil(Probe, "the workers to answer", ReadyTimeout);
        return victim;
    }

    /// <summary>Stops nginx gracefully (SIGQUIT; SIGKILL fallback). True when it stopped gracefully.</summary>
    public bool Stop() => _host.Stop(TimeSpan.FromSeconds(15));

    public string ErrorLog => File.Exists(_host.ErrorLogPath) ? ReadShared(_host.ErrorLogPath, 0) : "";

    /// <summary>A position in the error log, for <see cref="ErrorLogSince"/>.</summary>
    public long LogMark() => File.Exists(_host.ErrorLogPath) ? new FileInfo(_host.ErrorLogPath).Length : 0;

    public string ErrorLogSince(long mark) => File.Exists(_host.ErrorLogPath) ? ReadShared(_host.ErrorLogPath, mark) : "";

    /// <summary>The raw bytes of the error log after <paramref name="mark"/> (no decoding: a test can look for control or non-ASCII bytes).</summary>
    public byte[] ErrorLogBytesSince(long mark)
    {
        if (!File.Exists(_host.ErrorLogPath))
        {
            return [];
        }

        using var fs = new FileStream(_host.ErrorLogPath, FileMode.Open, FileAccess.Read,
            FileShare.ReadWrite | FileShare.Delete);
        if (mark >= fs.Length)
        {
            return [];
        }

        fs.Seek(mark, SeekOrigin.Begin);
        using var copy = new MemoryStream();
        fs.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>Waits until a line matching <paramref name="pattern"/> is in the log after <paramref name="mark"/>.</summary>
    public string WaitForLogLine(long mark, string pattern, TimeSpan? timeout = null)
    {
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        string found = "";
        WaitUntil(() =>
        {
            found = ErrorLogSince(mark).Split('\n').FirstOrDefault(l => regex.IsMatch(l)) ?? "";
            return found.Length > 0;
        }, $"a log line matching /{pattern}/", timeout ?? TimeSpan.FromSeconds(5));
        return found;
    }

    /// <summary>[alert], [crit] and [emerg] lines in the log (and console) after <paramref name="mark"/> that were not allowed.</summary>
    public IReadOnlyList<string> ProblemLines(long mark = 0)
    {
        string text = ErrorLogSince(mark) + (mark == 0 ? "\n" + _host.ConsoleOutput : "");
        return text.Split('\n')
            .Where(l => ProblemLine().IsMatch(l) && !_allowed.Any(a => a.IsMatch(l)))
            .ToList();
    }

    public void AssertLogClean(long mark = 0)
    {
        IReadOnlyList<string> problems = ProblemLines(mark);
        Assert.That(problems, Is.Empty, $"nginx error log of {Directory} has problems");
    }

    // ---- HTTP ---------------------------------------------------------------

    /// <summary>GET <paramref name="path"/> on <paramref name="port"/> (default: <see cref="Port"/>) with an optional bearer token.</summary>
    public Task<HttpReply> GetAsync(string path, string? token = null, int? port = null,
        Action<HttpRequestMessage>? configure = null) =>
        SendAsync(HttpMethod.Get, path, token, port, configure);

    /// <summary>Sends a request; a <paramref name="timeout"/> shorter than the default makes the client give up early.</summary>
    public async Task<HttpReply> SendAsync(HttpMethod method, string path, string? token = null, int? port = null,
        Action<HttpRequestMessage>? configure = null, TimeSpan? timeout = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(_host.Endpoint(port ?? Port), path));
        if (token is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
        }

        configure?.Invoke(request);

        using var cts = new CancellationTokenSource(timeout ?? RequestTimeout);
        try
        {
            using HttpResponseMessage response = await _client.SendAsync(request, cts.Token).ConfigureAwait(false);
            string body = await response.Content.ReadAsStringAsync(cts.Token).ConfigureAwait(false);
            return new HttpReply(response, body);
        }
        catch (OperationCanceledException e) when (cts.IsCancellationRequested)
        {
            throw new TimeoutException($"{method} {path} got no answer within {(timeout ?? RequestTimeout).TotalSeconds} s", e);
        }
    }

    public void Dispose() => Dispose(assertClean: true);

    /// <summary>Stops nginx without asserting anything (a setup that already failed).</summary>
    public void Abandon() => Dispose(assertClean: false);

    private void Dispose(bool assertClean)
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _client.Dispose();

        bool graceful = _host.Stop(TimeSpan.FromSeconds(15));
        IReadOnlyList<string> problems = ProblemLines();
        _host.Dispose();

        // kept for a look when something went wrong (or when asked to)
        bool keep = TestEnvironment.KeepTempDirs || (_started && (problems.Count > 0 || !graceful));
        if (!keep)
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
                // a worker of another user may still hold a temp file: harmless
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        if (_started && assertClean)
        {
            Assert.That(problems, Is.Empty, $"nginx error log of {Directory} has problems");
            Assert.That(graceful, Is.True, $"nginx in {Directory} did not stop on SIGQUIT");
        }
    }

    // ---- internals ----------------------------------------------------------

    private string BuildConfig(string http)
    {
        string modules = _host.ModulesDir;
        string dir = Directory;
        return $$"""
            # written by NginxOAuth.IntegrationTests
            load_module {{modules}}/{{TestEnvironment.ModuleFile}};

            {{MainContext}}
            daemon off;
            master_process on;
            worker_processes {{WorkerProcesses}};
            error_log {{dir}}/error.log info;
            pid {{dir}}/nginx.pid;

            events {
                worker_connections 4096;
            }

            http {
                access_log off;
                client_body_temp_path {{dir}}/tmp/body;
                proxy_temp_path {{dir}}/tmp/proxy;
                fastcgi_temp_path {{dir}}/tmp/fastcgi;
                uwsgi_temp_path {{dir}}/tmp/uwsgi;
                scgi_temp_path {{dir}}/tmp/scgi;
                default_type text/plain;

                # echo: the body is the X-Echo request header
                server {
                    listen 127.0.0.1:{{EchoPort}};
                    large_client_header_buffers 4 1m;
                    location / {
                        return 200 $http_x_echo;
                    }
                }

            {{Indent(http, "    ")}}
            }

            """;
    }

    private static string Indent(string text, string prefix) =>
        string.Join('\n', text.Replace("\r\n", "\n").Split('\n').Select(l => l.Length == 0 ? l : prefix + l));

    private bool Probe()
    {
        if (!_host.IsRunning)
        {
            throw new InvalidOperationException(
                $"nginx exited.\nconsole:\n{_host.ConsoleOutput}\nerror log:\n{ErrorLog}");
        }

        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_host.Endpoint(EchoPort), "/ready"));
            request.Headers.ConnectionClose = true;
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            using HttpResponseMessage response = _client.Send(request, cts.Token);
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private void WaitUntil(Func<bool> condition, string what, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (!_host.IsRunning)
            {
                throw new InvalidOperationException(
                    $"nginx exited while waiting for {what}.\nconsole:\n{_host.ConsoleOutput}\nerror log:\n{ErrorLog}");
            }

            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException(
                    $"timed out after {timeout.TotalSeconds} s waiting for {what}.\nerror log:\n{Tail(ErrorLog, 4000)}");
            }

            Thread.Sleep(25);
        }
    }

    private void RenewClient()
    {
        HttpClient old = _client;
        _client = NewClient();
        old.Dispose();
    }

    /// <summary>A client like the instance's own (for loops that outlive a reload).</summary>
    public static HttpClient NewClient()
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 512,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(5),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
            AllowAutoRedirect = false,
            MaxResponseHeadersLength = 1024, // KiB
        };
        return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    private static string ReadShared(string path, long offset)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        if (offset > fs.Length)
        {
            return "";
        }

        fs.Seek(offset, SeekOrigin.Begin);
        using var reader = new StreamReader(fs, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    private static string Tail(string text, int max) => text.Length <= max ? text : text[^max..];

    [GeneratedRegex(@"\[(alert|crit|emerg)\]", RegexOptions.CultureInvariant)]
    private static partial Regex ProblemLine();
}
