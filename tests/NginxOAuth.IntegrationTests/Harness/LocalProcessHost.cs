using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>
/// nginx as a child process of the test run: <c>nginx -p dir -c dir/nginx.conf
/// -e dir/error.log</c> with <c>daemon off; master_process on;</c>, so the
/// master never detaches and the real fork/reload paths run.
/// </summary>
public sealed class LocalProcessHost : INginxHost
{
    // masters still running when the test host exits are killed
    private static readonly ConcurrentDictionary<int, byte> _running = new();

    private readonly StringBuilder _console = new();
    private Process? _master;

    static LocalProcessHost()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (int pid in _running.Keys)
            {
                Posix.Kill(pid, Posix.SIGKILL);
            }
        };
    }

    public LocalProcessHost(string directory)
    {
        Directory = directory;
    }

    public string Directory { get; }

    public string ModulesDir => TestEnvironment.ModulesDir;

    public string ConfigPath => Path.Combine(Directory, "nginx.conf");

    public string ErrorLogPath => Path.Combine(Directory, "error.log");

    public bool IsRunning => _master is { HasExited: false };

    public string ConsoleOutput
    {
        get
        {
            lock (_console)
            {
                return _console.ToString();
            }
        }
    }

    public int MasterPid => _master?.Id ?? throw new InvalidOperationException("nginx is not started");

    public void Start()
    {
        if (_master is not null)
        {
            throw new InvalidOperationException("nginx is already started");
        }

        ProcessStartInfo psi = NginxStartInfo();
        _master = new Process { StartInfo = psi, EnableRaisingEvents = true };
        _master.OutputDataReceived += (_, e) => AppendConsole(e.Data);
        _master.ErrorDataReceived += (_, e) => AppendConsole(e.Data);
        _master.Start();
        _running[_master.Id] = 0;
        _master.BeginOutputReadLine();
        _master.BeginErrorReadLine();
    }

    public IReadOnlyList<int> WorkerPids() => NginxProcesses.Workers(MasterPid);

    public IReadOnlyList<int> ShuttingDownWorkerPids() => NginxProcesses.ShuttingDownWorkers(MasterPid);

    public void SignalReload() => NginxProcesses.Reload(MasterPid);

    public void KillWorker(int pid) => NginxProcesses.KillWorker(pid);

    public bool Stop(TimeSpan grace)
    {
        if (_master is null || _master.HasExited)
        {
            return true;
        }

        var workers = new List<int>(Posix.Children(_master.Id, "nginx: "));

        Posix.Kill(_master.Id, Posix.SIGQUIT);
        bool graceful = _master.WaitForExit(grace);

        if (!graceful)
        {
            Posix.Kill(_master.Id, Posix.SIGKILL);
            _master.WaitForExit(TimeSpan.FromSeconds(5));
        }

        // workers of a killed master would linger: make sure none is left
        foreach (int pid in workers)
        {
            if (Posix.IsAlive(pid))
            {
                if (graceful)
                {
                    Thread.Sleep(200);
                }

                if (Posix.IsAlive(pid))
                {
                    graceful = false;
                    Posix.Kill(pid, Posix.SIGKILL);
                }
            }
        }

        _master.WaitForExit(); // drains the output readers
        _running.TryRemove(_master.Id, out _);
        return graceful;
    }

    public ConfigTestResult TestConfig() => RunNginx("-t");

    public ConfigTestResult SendCommand(string signal) => RunNginx("-s", signal);

    private ConfigTestResult RunNginx(params string[] args)
    {
        ProcessStartInfo psi = NginxStartInfo();
        foreach (string arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = new Process { StartInfo = psi };
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        if (!process.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"nginx {string.Join(' ', args)} did not finish within 90 s");
        }

        process.WaitForExit();
        lock (output)
        {
            return new ConfigTestResult(process.ExitCode, output.ToString());
        }
    }

    public long MasterRssBytes() => Posix.RssBytes(MasterPid);

    public string MappedFiles(int pid) => Posix.MappedFiles(pid);

    public Uri Endpoint(int port) => new($"http://127.0.0.1:{port}");

    public void Dispose()
    {
        Stop(TimeSpan.FromSeconds(10));
        _master?.Dispose();
    }

    private ProcessStartInfo NginxStartInfo()
    {
        var psi = new ProcessStartInfo(TestEnvironment.NginxBin)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            WorkingDirectory = Directory,
        };
        psi.ArgumentList.Add("-p");
        psi.ArgumentList.Add(Directory + "/");
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(ConfigPath);
        psi.ArgumentList.Add("-e");
        psi.ArgumentList.Add(ErrorLogPath);
        return psi;
    }

    private void AppendConsole(string? line) => Append(_console, line);

    private static void Append(StringBuilder sb, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (sb)
        {
            sb.AppendLine(line);
        }
    }
}
